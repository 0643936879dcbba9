"""Every function on one server, as `tokentra serve` runs them at /functions/v1/<name>."""

from __future__ import annotations

from ._app import function_app
from .ingest import router as ingest_router
from .otel import router as otel_router

app = function_app(ingest_router, otel_router)
