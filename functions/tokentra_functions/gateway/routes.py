"""The gateway's endpoints under /functions/v1/gateway: OpenAI- and Anthropic-compatible, so the official
clients work with only their base URL and key changed (`base_url=.../gateway/openai/v1`,
`base_url=.../gateway/anthropic`), and the Prometheus metrics.

Policy runs inline, in this order, each refusal in the provider's error shape: the virtual key and the
model it may call; its block rules (the runaway kill-switch) and rate limits; the routing decision; the
budget reservation of the chosen model's maximum cost. Then the upstream call and, after the answer, the
usage through the ingest path.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from tokentra_core.db import AsyncConn
from tokentra_core.settings import get_settings
from tokentra_functions._app import Pool, read_limited, read_limited_body
from tokentra_functions._guard import RequestGuard
from tokentra_functions.gateway import cache as gateway_cache
from tokentra_functions.gateway import metrics
from tokentra_functions.gateway.admission import Admission
from tokentra_functions.gateway.errors import Flavor, Refusal
from tokentra_functions.gateway.policy import admit, budget_attribution, decide, presented_key, upstream_for
from tokentra_functions.gateway.provider_client import ProviderClient, UpstreamError
from tokentra_functions.gateway.proxy import Call, now_utc, pass_back, upstream_headers
from tokentra_functions.gateway.recorder import UsageRecorder
from tokentra_functions.gateway.wire import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, request_facts
from tokentra_functions.key_changes import key_changes

log = logging.getLogger("tokentra.gateway")


@asynccontextmanager
async def _provider_client(app: FastAPI) -> AsyncIterator[None]:
    """One pooled provider client per server process for every upstream call, made when the server starts.

    Redirects are not followed and the proxy environment is ignored (provider_client.py says why).
    Answers are asked for uncompressed (accept-encoding: identity, proxy.py) since the gateway reads each
    one's usage; one gzip- or deflate-compressed anyway is decoded before it is read and passed on
    (content-encoding is not among the headers passed back). No cookies: the client serves every
    organization, so a cookie one provider answer sets must not travel with another organization's calls."""
    settings = get_settings()
    client = ProviderClient(max_connections=settings.gateway_max_connections,
                            connect_timeout=settings.gateway_connect_timeout_seconds,
                            read_timeout=settings.gateway_timeout_seconds)
    app.state.gateway_client = client
    try:
        yield
    finally:
        # After the server has stopped taking calls; streams still being read to their usage end here.
        await client.close()


router = APIRouter(prefix="/gateway", tags=["gateway"], lifespan=_provider_client)


# ---------------------------------------------------------------- documented bodies
# The bodies are the providers' own and pass through untouched; these models document the fields the
# gateway reads, and accept every other one.
class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(description="The model asked; a virtual key may restrict which.")
    stream: bool = Field(default=False, description="Server-sent events; usage is recorded either way.")


class ChatCompletionBody(_Body):
    messages: list[dict[str, Any]]
    max_completion_tokens: int | None = Field(default=None, description="Sets the budget reservation's output.")
    max_tokens: int | None = None


class ResponsesBody(_Body):
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = None


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str] | list[int] | list[list[int]]


class MessagesBody(_Body):
    messages: list[dict[str, Any]]
    max_tokens: int
    system: str | list[dict[str, Any]] | None = None


class CountTokensBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[dict[str, Any]]


def _doc(body: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": body.model_json_schema(
        ref_template="#/components/schemas/{model}")}}}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Invalid, revoked or expired virtual key (provider error shape)"},
    403: {"description": "Model or provider not allowed for this key"},
    429: {"description": "Rate limit, budget exceeded or runaway-loop kill-switch (Retry-After when waiting helps)"},
    502: {"description": "No provider answered"},
}


# ---------------------------------------------------------------- shared state
# Each takes the app's state (request.app.state, or scope["app"].state on the direct path).
def _client(state: Any) -> ProviderClient:
    client: ProviderClient = state.gateway_client
    return client


def admission(state: Any) -> Admission:
    """The process's in-memory admission state (keys, counters, prices, budget leases)."""
    adm = getattr(state, "gateway_admission", None)
    if adm is None:
        adm = state.gateway_admission = Admission(state.pool, key_changes(state))
        _on_close(state, adm.close)
    return adm


def recorder(state: Any) -> UsageRecorder:
    rec = getattr(state, "gateway_recorder", None)
    if rec is None:
        # Made after the admission state, so on shutdown it drains (carving its calls out of their
        # leases) before the leases' unused parts are handed back.
        rec = state.gateway_recorder = UsageRecorder(admission(state))
        _on_close(state, rec.close)
    return rec


def _on_close(state: Any, hook: Any) -> None:
    hooks = getattr(state, "on_close", None)
    if hooks is None:
        hooks = state.on_close = []
    hooks.insert(0, hook)  # the recorder drains before the pool closes


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers, read once into a dict (the server gives names in lower case; a repeated
    header's first value, as Starlette's Headers.get answers)."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


# ---------------------------------------------------------------- the call
def _attribution(key: Any, headers: dict[str, str]) -> dict[str, Any]:
    """The key's team, project and end user; the client may add a feature and (unless the key fixes it)
    an end user with headers."""
    attribution = {"team": key.team, "project": key.project, "user_id": key.end_user_id}
    feature = headers.get("x-tokentra-feature")
    if feature:
        attribution["feature"] = feature[:200]
    user = headers.get("x-tokentra-user")
    if user and not key.end_user_id:
        attribution["user_id"] = user[:200]
    return {k: v for k, v in attribution.items() if v}


async def _forward(state: Any, headers: dict[str, str], raw: bytes | None, provider: Flavor, endpoint: str,
                   path: str, started: float) -> Response:
    """The call, whose body `raw` is None when it was larger than the gateway takes (read_limited)."""
    started_at = now_utc()
    settings = get_settings()
    pool: AsyncConnectionPool[AsyncConn] = state.pool
    try:
        if raw is None:
            raise Refusal("request_too_large", f"A request carries at most {settings.gateway_max_body_bytes} bytes.")
        try:
            body = json.loads(raw)
        except ValueError:
            raise Refusal("invalid_request", "The body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise Refusal("invalid_request", "The body must be a JSON object.")
        facts = request_facts(endpoint, body, raw)
        if not facts.model:
            raise Refusal("invalid_request", "model: a model is required.")
        adm = admission(state)
        key = await admit(adm, presented_key(headers), facts.prompt_hash)
        if not key.allows(provider, facts.model):
            raise Refusal("model_not_allowed" if key.allowed_providers is None or provider in key.allowed_providers
                          else "provider_not_allowed",
                          f"This virtual key may not call {provider} model {facts.model}.")
        attribution = _attribution(key, headers)
        decision = await decide(pool, key, provider, headers, body, facts, attribution)
        # The semantic cache: a hit never reaches the budget or a provider.
        # Only organizations that turned the cache on look up, and keep the answers of their misses.
        cacheable = False
        if gateway_cache.applies(endpoint, facts.stream):
            cached = await gateway_cache.lookup(pool, key.org_id, decision.model, body)
            if cached is not None and cached.hit and cached.response is not None:
                return _from_cache(state, key, provider, endpoint, facts, decision.model, attribution, cached,
                                   started, started_at)
            cacheable = cached is not None
        upstream = await upstream_for(pool, key.org_id, provider)
        if key.store_prompts:
            attribution["prompt_preview"] = _preview(body)
        reservation = await adm.reserve(key.org_id, key.key_id, provider, decision.model, facts.input_tokens_bound,
                                        facts.max_output_tokens, budget_attribution(attribution))
    except Refusal as refusal:
        metrics.REFUSALS.labels(refusal.reason).inc()
        metrics.REQUESTS.labels(provider, endpoint, str(refusal.status)).inc()
        return refusal.response(provider)
    except (PoolTimeout, psycopg.OperationalError) as exc:
        # Policy cannot be checked without the database: refuse (never forward unchecked), retryably.
        log.warning("gateway policy unavailable: %s", type(exc).__name__)
        metrics.REFUSALS.labels("service_unavailable").inc()
        return Refusal("service_unavailable", "TokenTRA could not check this call's policy; retry shortly.",
                       retry_after=1).response(provider)
    metrics.child(metrics.OVERHEAD, provider).observe(time.perf_counter() - started)
    call = Call(pool=pool, client=_client(state), recorder=recorder(state), admission=adm, key=key,
                provider=provider,
                endpoint=endpoint, path=path, body=body, raw=raw, facts=facts, decision=decision, upstream=upstream,
                headers=upstream_headers(provider, upstream, headers), attribution=attribution,
                reservation=reservation, started=started, started_at=started_at, cache_store=cacheable)
    try:
        return await call.run()
    except BaseException:
        # Nothing will report this call: give its hold back now rather than at the TTL.
        adm.release(call.reservation)
        raise


def _from_cache(state: Any, key: Any, provider: Flavor, endpoint: str, facts: Any, model: str,
                attribution: dict[str, Any], cached: Any, started: float, started_at: Any) -> Response:
    """Answer from the cache and record the call as a hit: no tokens billed, what it saved in its signals."""
    request_id = str(uuid.uuid4())
    event = {
        "request_id": request_id, "provider": provider, "model": model, "endpoint": endpoint, "status": "success",
        "latency_ms": round((time.perf_counter() - started) * 1000), "prompt_hash": facts.prompt_hash,
        "system_prompt_hash": facts.system_prompt_hash, "task_type": facts.task_type, "source": "gateway",
        "metadata": {**attribution, "gateway": {"virtual_key": key.name, "decision": "semantic cache"}},
        "timestamp": started_at.isoformat(), "cache_hit": True, "cache_entry_id": cached.entry_id,
        "cache_saved_usd": float(cached.saved_usd),
    }
    recorder(state).submit(key.ingest_key, event)
    metrics.REQUESTS.labels(provider, endpoint, "200").inc()
    metrics.CACHE_HITS.labels(provider, cached.outcome).inc()
    metrics.CACHE_SAVED.labels(provider).inc(float(cached.saved_usd))
    return Response(content=json.dumps(cached.response, separators=(",", ":")), media_type="application/json",
                    headers={"x-tokentra-request-id": request_id, "x-tokentra-model": model,
                             "x-tokentra-cache": cached.outcome})


def _preview(body: dict[str, Any]) -> str:
    """The first characters of the prompt, kept only for organizations that opted in to prompt storage."""
    source = body.get("messages") or body.get("input") or ""
    return json.dumps(source, default=str)[:500]


async def _via_router(request: Request, provider: Flavor, endpoint: str, path: str) -> Response:
    """A provider call that came through FastAPI's router (the direct dispatch below takes most)."""
    started = time.perf_counter()
    raw = await read_limited_body(request, get_settings().gateway_max_body_bytes)
    return await _forward(request.app.state, _headers(request.scope), raw, provider, endpoint, path, started)


# ---------------------------------------------------------------- OpenAI-compatible
@router.post("/openai/v1/chat/completions", summary="OpenAI chat completions through the gateway",
             openapi_extra=_doc(ChatCompletionBody), responses=_ERRORS)
async def chat_completions(request: Request, pool: Pool) -> Response:
    return await _via_router(request, "openai", CHAT, "/chat/completions")


@router.post("/openai/v1/responses", summary="OpenAI Responses API through the gateway",
             openapi_extra=_doc(ResponsesBody), responses=_ERRORS)
async def responses(request: Request, pool: Pool) -> Response:
    return await _via_router(request, "openai", RESPONSES, "/responses")


@router.post("/openai/v1/embeddings", summary="OpenAI embeddings through the gateway",
             openapi_extra=_doc(EmbeddingsBody), responses=_ERRORS)
async def embeddings(request: Request, pool: Pool) -> Response:
    return await _via_router(request, "openai", EMBEDDINGS, "/embeddings")


@router.get("/openai/v1/models", summary="The provider's models this virtual key may call", responses=_ERRORS)
async def models(request: Request, pool: Pool) -> Response:
    return await _listing(request, pool, "openai", "/models", None)


@router.get("/openai/v1/models/{model}", summary="One model, if this virtual key may call it", responses=_ERRORS)
async def model(request: Request, pool: Pool, model: str) -> Response:
    return await _listing(request, pool, "openai", f"/models/{model}", model)


async def _listing(request: Request, pool: AsyncConnectionPool[AsyncConn], provider: Flavor, path: str, one: str | None
                   ) -> Response:
    try:
        key = await admit(admission(request.app.state), presented_key(_headers(request.scope)), None)
        if one is not None and not key.allows(provider, one):
            raise Refusal("model_not_allowed", f"This virtual key may not call {provider} model {one}.")
        upstream = await upstream_for(pool, key.org_id, provider)
    except Refusal as refusal:
        metrics.REFUSALS.labels(refusal.reason).inc()
        return refusal.response(provider)
    url = upstream.base_url + (path if provider == "openai" else "/v1" + path)
    try:
        async with await _client(request.app.state).request(
                "GET", url, upstream_headers(provider, upstream, _headers(request.scope))) as response:
            content = await response.read()
    except TimeoutError:
        return Refusal("upstream_timeout", f"The {provider} API did not answer (timeout).").response(provider)
    except UpstreamError:
        return Refusal("upstream_unreachable", f"The {provider} API did not answer (unreachable).").response(provider)
    if response.status == 200 and one is None and key.allowed_models is not None:
        payload = json.loads(content)
        payload["data"] = [m for m in payload.get("data", []) if m.get("id") in key.allowed_models]
        content = json.dumps(payload).encode()
    return Response(content=content, status_code=response.status, headers=pass_back(response))


# ---------------------------------------------------------------- Anthropic-compatible
@router.post("/anthropic/v1/messages", summary="Anthropic messages through the gateway",
             openapi_extra=_doc(MessagesBody), responses=_ERRORS)
async def messages(request: Request, pool: Pool) -> Response:
    return await _via_router(request, "anthropic", MESSAGES, "/messages")


@router.post("/anthropic/v1/messages/count_tokens", summary="Anthropic token counting (free: not recorded)",
             openapi_extra=_doc(CountTokensBody), responses=_ERRORS)
async def count_tokens(request: Request, pool: Pool) -> Response:
    raw = await request.body()
    try:
        try:
            body = json.loads(raw)
        except ValueError:
            raise Refusal("invalid_request", "The body is not valid JSON.") from None
        model_name = str(body.get("model") or "") if isinstance(body, dict) else ""
        key = await admit(admission(request.app.state), presented_key(_headers(request.scope)), None)
        if not key.allows("anthropic", model_name):
            raise Refusal("model_not_allowed", f"This virtual key may not call anthropic model {model_name}.")
        upstream = await upstream_for(pool, key.org_id, "anthropic")
    except Refusal as refusal:
        metrics.REFUSALS.labels(refusal.reason).inc()
        return refusal.response("anthropic")
    try:
        async with await _client(request.app.state).request(
                "POST", upstream.base_url + "/v1/messages/count_tokens",
                upstream_headers("anthropic", upstream, _headers(request.scope)), raw) as response:
            content = await response.read()
    except TimeoutError:
        return Refusal("upstream_timeout", "The anthropic API did not answer (timeout).").response("anthropic")
    except UpstreamError:
        return Refusal("upstream_unreachable", "The anthropic API did not answer (unreachable).").response("anthropic")
    return Response(content=content, status_code=response.status, headers=pass_back(response))


# ---------------------------------------------------------------- straight to the handlers
# The provider calls reach _forward before FastAPI's own layers: its per-request telemetry check, its error,
# telemetry and body-limit middleware, the router's walk over the routes of every function on the server,
# dependencies built per call and Starlette's Request. Together those cost more CPU per call than the
# gateway's whole policy. The routes stay declared above, for the OpenAPI document and for every
# method and path this dispatch does not take; RequestGuard (request id, JSON 500, access log) still wraps
# each call.
DIRECT: dict[Any, tuple[Flavor, str, str]] = {
    chat_completions: ("openai", CHAT, "/chat/completions"), responses: ("openai", RESPONSES, "/responses"),
    embeddings: ("openai", EMBEDDINGS, "/embeddings"), messages: ("anthropic", MESSAGES, "/messages")}


async def _body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body's chunks as the server hands them over."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class _Endpoint:
    """One provider endpoint as a bare ASGI app."""

    def __init__(self, route: APIRoute, provider: Flavor, endpoint: str, path: str) -> None:
        self.route, self.provider, self.endpoint, self.path = route, provider, endpoint, path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        scope["route"] = self.route  # as the router would set it: the access log names the route
        headers = _headers(scope)
        raw = await read_limited(_body_chunks(receive), headers.get("content-length"),
                                 get_settings().gateway_max_body_bytes)
        response = await _forward(scope["app"].state, headers, raw, self.provider, self.endpoint, self.path, started)
        await response(scope, receive, send)


class _Handler:
    """A declared handler taking (request, pool), called without the router (token counting)."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route
        request = Request(scope, receive, send)
        response = await self.route.endpoint(request, scope["app"].state.pool)
        await response(scope, receive, send)


class _GatewayFirst(FastAPI):
    """The app, taking the DIRECT endpoints' POSTs before anything else (serve_directly)."""

    gateway_direct: dict[str, ASGIApp]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.gateway_direct.get(scope["path"])
            if handler is not None:
                scope["app"] = self
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def serve_directly(app: FastAPI, prefix: str) -> None:
    """Dispatch the gateway's provider endpoints of `app` (which included `router` under `prefix`) directly:
    the app becomes a _GatewayFirst (same object, same routes, same OpenAPI document)."""
    direct: dict[str, ASGIApp] = {}
    for route in router.routes:
        if not isinstance(route, APIRoute) or route.methods != {"POST"}:
            continue
        if route.endpoint in DIRECT:
            direct[prefix + route.path] = RequestGuard(_Endpoint(route, *DIRECT[route.endpoint]))
        elif route.endpoint is count_tokens:
            direct[prefix + route.path] = RequestGuard(_Handler(route))
    if type(app) is FastAPI:
        app.__class__ = _GatewayFirst
    app.gateway_direct = direct  # type: ignore[attr-defined]


# ---------------------------------------------------------------- metrics
@router.get("/metrics", summary="Prometheus metrics of the gateway (text exposition format)",
            response_class=Response)
async def prometheus() -> Response:
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)


__all__ = ["router", "recorder", "admission", "serve_directly", "JSONResponse"]
