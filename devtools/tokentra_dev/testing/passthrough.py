"""An empty pass-through, the floor under the gateway's added latency: the same server stack as
`tokentra serve` (uvicorn with the protocol tokentra_functions._http.SPEC names, FastAPI) and the same
provider client as the gateway (one pooled aiohttp session), the body parsed once and forwarded to
TOKENTRA_PASSTHROUGH_UPSTREAM, the answer returned, no policy at all.

    TOKENTRA_PASSTHROUGH_UPSTREAM=http://127.0.0.1:PORT uvicorn tokentra_dev.testing.passthrough:app \
        --http "$(python -c 'from tokentra_functions._http import SPEC; print(SPEC)')"
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import Response

UPSTREAM = os.environ.get("TOKENTRA_PASSTHROUGH_UPSTREAM", "http://127.0.0.1:8000")
_session: dict[str, aiohttp.ClientSession] = {}


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    # As the gateway's session: no proxy environment, a large pool, no total timeout.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000, limit_per_host=0),
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
                                     trust_env=False) as session:
        _session["s"] = session
        yield


app = FastAPI(lifespan=_lifespan)


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    raw = await request.body()
    json.loads(raw)  # the gateway reads every body once
    async with _session["s"].post(UPSTREAM + "/v1/chat/completions", data=raw, allow_redirects=False,
                                  headers={"authorization": request.headers.get("authorization", ""),
                                           "content-type": "application/json",
                                           "accept-encoding": "identity"}) as upstream:
        content = await upstream.read()
    return Response(content=content, status_code=upstream.status,
                    media_type=upstream.headers.get("content-type"))
