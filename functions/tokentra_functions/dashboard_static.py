"""The built dashboard (dashboard/dist) at /dashboard/ on the server `tokentra serve` runs, with the
runtime config.json that tells it which backend it talks to.

The wheel does not carry the built app: it is a static site built with npm (`./scripts/setup` builds
it in a checkout) and may live on any static host; TOKENTRA_DASHBOARD_DIR points the server at a build
elsewhere. Without a build, /dashboard/ says how to make one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from tokentra_core.dev_auth import local_sign_in_refusal
from tokentra_core.settings import Settings, get_settings

__all__ = ["dashboard_config", "mount_dashboard"]

NOT_BUILT = """<!doctype html><meta charset="utf-8"><title>TokenTRA dashboard</title>
<p>The dashboard is not built. In the checkout run <code>./scripts/setup</code>, or
<code>cd dashboard &amp;&amp; npm ci &amp;&amp; npm run build</code>, then reload.</p>"""


# Vite names every built asset after its content's hash: a name never changes content, so browsers may keep
# it for a year without asking again. index.html names the current assets and must be revalidated each time.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class DashboardFiles(StaticFiles):
    """The built app, with caching headers: hashed assets immutable, everything else revalidated."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            hashed = path.startswith("assets/")
            response.headers["Cache-Control"] = IMMUTABLE if hashed else REVALIDATE
        return response


def dashboard_config(settings: Settings) -> dict[str, Any]:
    """What the app reads at start: Supabase Auth and Realtime on a project, else the local stack."""
    if local_sign_in_refusal(settings) is None or not settings.supabase_url:
        # Functions on the page's own origin; realtime through the development SSE transport.
        return {"mode": "local"}
    return {
        "mode": "supabase",
        "supabaseUrl": settings.supabase_url,
        "supabaseAnonKey": settings.supabase_anon_key,
        "functionsUrl": f"{settings.supabase_url.rstrip('/')}/functions/v1",
    }


def mount_dashboard(app: FastAPI) -> None:
    settings = get_settings()
    dist = settings.dashboard_dir

    @app.get("/dashboard", include_in_schema=False)
    async def _slash() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/dashboard/config.json", include_in_schema=False)
    async def _config() -> JSONResponse:
        return JSONResponse(dashboard_config(get_settings()), headers={"Cache-Control": "no-store"})

    if (dist / "index.html").is_file():
        app.mount("/dashboard", DashboardFiles(directory=dist, html=True), name="dashboard")
    else:
        @app.get("/dashboard/", include_in_schema=False)
        async def _not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT, status_code=503)
