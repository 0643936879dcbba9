"""An empty pass-through, the floor under the gateway's added latency: the same server stack as
`tokentra serve` (uvicorn with the protocol tokentra_functions._http.SPEC names, FastAPI) and the same
provider client as the gateway (one pooled ProviderClient), the body parsed once and forwarded to
TOKENTRA_PASSTHROUGH_UPSTREAM, the answer returned, no policy at all.

    TOKENTRA_PASSTHROUGH_UPSTREAM=http://127.0.0.1:PORT uvicorn tokentra_dev.testing.passthrough:app \
        --http "$(python -c 'from tokentra_functions._http import SPEC; print(SPEC)')"
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from tokentra_functions.gateway.provider_client import ProviderClient

UPSTREAM = os.environ.get("TOKENTRA_PASSTHROUGH_UPSTREAM", "http://127.0.0.1:8000")
_client: dict[str, ProviderClient] = {}


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    # As the gateway's client: a large pool, no total timeout.
    client = ProviderClient(max_connections=1000, connect_timeout=10, read_timeout=60)
    _client["c"] = client
    try:
        yield
    finally:
        await client.close()


app = FastAPI(lifespan=_lifespan)


@app.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    raw = await request.body()
    json.loads(raw)  # the gateway reads every body once
    headers = {"authorization": request.headers.get("authorization", ""), "content-type": "application/json",
               "accept-encoding": "identity"}
    async with await _client["c"].request("POST", UPSTREAM + "/v1/chat/completions", headers, raw) as upstream:
        content = await upstream.read()
    return Response(content=content, status_code=upstream.status, media_type=upstream.header("content-type"))
