"""What every function shares: the app factory, the connection pool, error bodies.

Each function module builds its own app with `function_app(router)` so it deploys alone; `functions.app`
mounts them all for `tokentra serve`.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Generic, TypeVar

import psycopg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from tokentra_core.db import AsyncConn
from tokentra_core.settings import get_settings
from tokentra_functions._guard import RequestGuard

PREFIX = "/functions/v1"
log = logging.getLogger("tokentra.functions")
# Run on every new pooled connection before it is first lent (register with on_connect): work a
# connection does once, such as planning a function's statements, then never lands on a request.
_ON_CONNECT: list[Callable[[AsyncConn], Awaitable[None]]] = []


def on_connect(hook: Callable[[AsyncConn], Awaitable[None]]) -> Callable[[AsyncConn], Awaitable[None]]:
    _ON_CONNECT.append(hook)
    return hook


async def _configure(conn: AsyncConn) -> None:
    for hook in _ON_CONNECT:
        await hook(conn)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    settings.check_production()
    # prepare_threshold=None: Supabase's transaction pooler cannot hold server-side prepared statements.
    pool = AsyncConnectionPool(
        settings.dsn, min_size=2, max_size=20, open=False, configure=_configure,
        kwargs={"prepare_threshold": None, "row_factory": dict_row},
    )
    await pool.open(wait=True, timeout=30)
    app.state.pool = pool
    app.state.on_close = []  # functions register what must finish before the pool closes (usage writers)
    # Everything imported and built so far lives as long as the process: moved out of the collector's
    # reach, a full collection no longer walks it (one took 74 ms inside a gateway call here).
    gc.freeze()
    try:
        yield
    finally:
        for hook in app.state.on_close:
            await hook()
        await pool.close()


async def _pool(request: Request) -> AsyncConnectionPool[AsyncConn]:
    return request.app.state.pool


@asynccontextmanager
async def autocommit(pool: AsyncConnectionPool[AsyncConn]) -> AsyncIterator[AsyncConn]:
    """A pooled connection on which each statement commits alone: no BEGIN and COMMIT round trips around
    single statements (`conn.transaction()` still groups several). It goes back to the pool as it came."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            try:
                await conn.set_autocommit(False)
            except psycopg.Error:
                await conn.close()  # a broken connection is dropped by the pool, never lent in autocommit


Pool = Annotated[AsyncConnectionPool[AsyncConn], Depends(_pool)]


async def read_limited(chunks: AsyncIterator[bytes], declared_length: str | None, limit: int) -> bytes | None:
    """A request body from its chunks, or None when it is larger than limit: refused from its declared
    Content-Length before a byte is read, else as soon as the chunks pass the limit, so an oversized body
    is never held in memory whole."""
    if declared_length and declared_length.isdigit() and int(declared_length) > limit:
        return None
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def read_limited_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None when it is larger than limit (read_limited)."""
    return await read_limited(request.stream(), request.headers.get("content-length"), limit)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """Every successful JSON answer: the result under `data`, facts about it under `meta`."""

    data: T
    meta: dict[str, Any] = Field(default_factory=dict)


def envelope(data: Any, meta: dict[str, Any] | None = None, status: int = 200) -> JSONResponse:
    """`{"data": ..., "meta": ...}` of already JSON-ready values (models dumped with mode="json")."""
    return JSONResponse({"data": data, "meta": meta or {}}, status_code=status)


def invalid_fields(errors: Sequence[Mapping[str, Any]], prefix: str = "") -> JSONResponse:
    """422 naming every bad field, not only the first: `errors` lists them all; `field`, `reason` and
    `message` describe the first and the whole, for clients that read one."""
    listed = []
    for e in errors or [{"loc": (), "msg": "invalid request"}]:
        field = prefix + ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        # pydantic prefixes the reasons our validators give with "Value error, ": noise to a client.
        reason = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        listed.append({"field": field or "body", "reason": reason})
    return JSONResponse(
        {
            "error": "invalid_request",
            "message": "; ".join(f"{e['field']}: {e['reason']}" for e in listed),
            "field": listed[0]["field"],
            "reason": listed[0]["reason"],
            "errors": listed,
        },
        status_code=422,
    )


def json_body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """`openapi_extra` declaring a JSON request body of `model` (definitions inlined) for a handler that reads
    the body itself, after authenticating: the document shows it, the behaviour stays the handler's."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": required, "content": {"application/json": {"schema": inline(schema)}}}}


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for RequestValidationError only
        raise exc
    return invalid_fields(list(exc.errors()))


def function_app(*routers: APIRouter, title: str = "TokenTRA functions") -> FastAPI:
    app = FastAPI(title=title, version="0.1.0", lifespan=_lifespan, openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=f"{PREFIX}/docs", redoc_url=None)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    # Outermost but for Starlette's own: request ids, 431, and a JSON 500 that keeps the connection.
    app.add_middleware(RequestGuard)
    from tokentra_functions.user_auth import install  # user_auth imports this module; a top-level import would cycle

    install(app)  # every function answers a bad user JWT with the same 401 body
    for router in routers:
        app.include_router(router, prefix=PREFIX)
    return app
