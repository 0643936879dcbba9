"""The gateway: OpenAI- and Anthropic-compatible endpoints with virtual keys and inline policy
(routes.py), and the admins' virtual-key API (admin.py). Each module also deploys alone: `app` here."""

from tokentra_functions._app import PREFIX, function_app
from tokentra_functions.gateway.admin import router as admin_router
from tokentra_functions.gateway.routes import router, serve_directly

__all__ = ["admin_router", "app", "router"]

app = function_app(router, admin_router, title="TokenTRA gateway")
serve_directly(app, PREFIX)
