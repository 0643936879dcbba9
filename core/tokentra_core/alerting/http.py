"""HTTP to alert targets: resolved and checked against SSRF first, connected to the checked address,
redirects never followed, no proxy from the environment (a proxy would connect by name again)."""

from __future__ import annotations

import httpx

from tokentra_core.alerting.ssrf import parse_networks, resolve_target
from tokentra_core.settings import Settings

__all__ = ["post_json_pinned"]

USER_AGENT = "TokenTRA-Alerts/0.1"


def post_json_pinned(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> httpx.Response:
    """POST body to url at the address the SSRF check approved. Raises BlockedTarget or httpx errors."""
    target = resolve_target(url, parse_networks(settings.webhook_allowed_networks))
    sent_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **headers,
        "Host": target.host_header,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(
        timeout=settings.alert_http_timeout_seconds, follow_redirects=False, trust_env=False
    ) as client:
        return client.post(target.pinned_url(), content=body, headers=sent_headers, extensions=extensions)
