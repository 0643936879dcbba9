"""Every function on one server, as `tokentra serve` runs them at /functions/v1/<name>."""

from __future__ import annotations

from tokentra_functions._app import PREFIX, function_app
from tokentra_functions.admin import router as admin_router
from tokentra_functions.alerts import router as alerts_router
from tokentra_functions.anomalies import router as anomalies_router
from tokentra_functions.assistant import router as assistant_router
from tokentra_functions.budget_enforcement import router as budget_enforcement_router
from tokentra_functions.budgets import router as budgets_router
from tokentra_functions.cache import router as cache_router
from tokentra_functions.consensus import router as consensus_router
from tokentra_functions.costs import router as costs_router
from tokentra_functions.dashboard import router as dashboard_router
from tokentra_functions.dashboard_static import mount_dashboard
from tokentra_functions.dev_login import router as dev_login_router
from tokentra_functions.feedback import router as feedback_router
from tokentra_functions.forecast import router as forecast_router
from tokentra_functions.gateway.admin import router as virtual_keys_router
from tokentra_functions.gateway.routes import router as gateway_router
from tokentra_functions.gateway.routes import serve_directly as serve_gateway_directly
from tokentra_functions.ingest import router as ingest_router
from tokentra_functions.llm_status import router as llm_status_router
from tokentra_functions.me import router as me_router
from tokentra_functions.otel import router as otel_router
from tokentra_functions.prices import router as prices_router
from tokentra_functions.realtime_sse import router as realtime_router
from tokentra_functions.recommendations import router as recommendations_router
from tokentra_functions.reconciliation import router as reconciliation_router
from tokentra_functions.reports import router as reports_router
from tokentra_functions.routing import router as routing_router
from tokentra_functions.scopes import router as scopes_router
from tokentra_functions.traces import router as traces_router
from tokentra_functions.usage_timeseries import router as usage_timeseries_router

# Routers are tried in this order, route by route: the SDK's per-call routing endpoint comes first.
app = function_app(routing_router, me_router, admin_router, dev_login_router, realtime_router,
                   ingest_router, otel_router, budgets_router, budget_enforcement_router, cache_router, alerts_router,
                   costs_router, dashboard_router, usage_timeseries_router, anomalies_router,
                   forecast_router, recommendations_router, reports_router, consensus_router, feedback_router,
                   llm_status_router, gateway_router, virtual_keys_router, prices_router, traces_router,
                   scopes_router, reconciliation_router, assistant_router)
serve_gateway_directly(app, PREFIX)  # the provider calls skip the router's walk over every route above
# The analytics functions (costs, dashboard, usage) authenticate users by JWT: their 401 handler.
# The built dashboard at /dashboard/ (not part of any single function's deployment).
mount_dashboard(app)
