"""Refusals in each provider's own error shape, so the official clients raise their usual exceptions.

OpenAI: `{"error": {"message", "type", "param", "code"}}`; Anthropic: `{"type": "error", "error": {"type",
"message"}}`. Refusals a retry cannot fix carry `x-should-retry: false`, which both official clients obey,
so a budget or a kill-switch refusal is not retried two more times with backoff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fastapi.responses import JSONResponse

Flavor = Literal["openai", "anthropic"]

# reason -> (status, OpenAI type, Anthropic type, retryable)
_KINDS: dict[str, tuple[int, str, str, bool]] = {
    "invalid_api_key": (401, "invalid_request_error", "authentication_error", False),
    "model_not_allowed": (403, "invalid_request_error", "permission_error", False),
    "provider_not_allowed": (403, "invalid_request_error", "permission_error", False),
    "blocked_by_rule": (403, "invalid_request_error", "permission_error", False),
    "invalid_request": (400, "invalid_request_error", "invalid_request_error", False),
    "request_too_large": (413, "invalid_request_error", "request_too_large", False),
    "no_provider_connection": (400, "invalid_request_error", "invalid_request_error", False),
    "rate_limit_exceeded": (429, "requests", "rate_limit_error", True),
    "tokens_rate_limit_exceeded": (429, "tokens", "rate_limit_error", True),
    "budget_exceeded": (429, "insufficient_quota", "rate_limit_error", False),
    "runaway_loop_blocked": (429, "requests", "rate_limit_error", False),
    "upstream_unreachable": (502, "server_error", "api_error", True),
    "upstream_timeout": (504, "server_error", "timeout_error", True),
    "service_unavailable": (503, "server_error", "api_error", True),
}


@dataclass(slots=True)
class Refusal(Exception):
    """Why the gateway answers a call itself instead of forwarding it."""

    reason: str
    message: str
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return _KINDS[self.reason][0]

    def response(self, flavor: Flavor, extra_headers: dict[str, str] | None = None) -> JSONResponse:
        status, openai_type, anthropic_type, retryable = _KINDS[self.reason]
        headers = {**self.headers, **(extra_headers or {})}
        headers["x-tokentra-refusal"] = self.reason
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        if not retryable:
            headers["x-should-retry"] = "false"
        if flavor == "anthropic":
            body: dict[str, object] = {"type": "error", "error": {"type": anthropic_type, "message": self.message}}
        else:
            body = {"error": {"message": self.message, "type": openai_type, "param": None, "code": self.reason}}
        return JSONResponse(body, status_code=status, headers=headers)
