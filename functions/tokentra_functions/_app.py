"""What every function shares: the app factory, the connection pool, error bodies.

Each function module builds its own app with `function_app(router)` so it deploys alone; `functions.app`
mounts them all for `tokentra serve`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from tokentra_core.settings import get_settings

PREFIX = "/functions/v1"
log = logging.getLogger("tokentra.functions")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    settings.check_production()
    # prepare_threshold=None: Supabase's transaction pooler cannot hold server-side prepared statements.
    pool = AsyncConnectionPool(
        settings.dsn, min_size=2, max_size=20, open=False,
        kwargs={"prepare_threshold": None, "row_factory": dict_row},
    )
    await pool.open(wait=True, timeout=30)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


async def _pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


Pool = Annotated[AsyncConnectionPool, Depends(_pool)]


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = ".".join(str(p) for p in first["loc"] if p not in ("body", "query", "path"))
    return error(422, "invalid_request", f"{field or 'body'}: {first['msg']}")


def function_app(*routers: APIRouter, title: str = "TokenTRA functions") -> FastAPI:
    app = FastAPI(title=title, version="0.1.0", lifespan=_lifespan, openapi_url=f"{PREFIX}/openapi.json",
                  docs_url=f"{PREFIX}/docs", redoc_url=None)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    from tokentra_functions.user_auth import install  # user_auth imports this module; a top-level import would cycle

    install(app)  # every function answers a bad user JWT with the same 401 body
    for router in routers:
        app.include_router(router, prefix=PREFIX)
    return app
