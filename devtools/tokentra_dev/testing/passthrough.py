"""An empty pass-through, the floor under the gateway's added latency: the same server stack as
`tokentra serve` (uvicorn with tokentra_functions._http, FastAPI) and the same pooled httpx client, the
body parsed once and forwarded to TOKENTRA_PASSTHROUGH_UPSTREAM, the answer returned, no policy at all.

    TOKENTRA_PASSTHROUGH_UPSTREAM=http://127.0.0.1:PORT uvicorn tokentra_dev.testing.passthrough:app \
        --http tokentra_functions._http:H11Protocol
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response

UPSTREAM = os.environ.get("TOKENTRA_PASSTHROUGH_UPSTREAM", "http://127.0.0.1:8000")
_client: dict[str, httpx.AsyncClient] = {}


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with httpx.AsyncClient(timeout=60, trust_env=False,
                                 limits=httpx.Limits(max_connections=1000, max_keepalive_connections=1000)) as client:
        _client["c"] = client
        yield


app = FastAPI(lifespan=_lifespan)


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    raw = await request.body()
    json.loads(raw)  # the gateway reads every body once
    upstream = await _client["c"].post(UPSTREAM + "/v1/chat/completions", content=raw,
                                       headers={"authorization": request.headers.get("authorization", ""),
                                                "content-type": "application/json"})
    return Response(content=upstream.content, status_code=upstream.status_code,
                    media_type=upstream.headers.get("content-type"))
