"""One attempt to deliver one alert (or weekly report) to one channel: Slack incoming webhook, Standard
Webhooks, email over SMTP, PagerDuty Events API v2 (alerts only). Each sender returns what happened; none
raises."""

from __future__ import annotations

import email.policy
import json
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from tokentra_core.alerting.http import post_json_pinned
from tokentra_core.alerting.ssrf import BlockedTarget
from tokentra_core.alerting.webhooks import signature_headers
from tokentra_core.settings import Settings

__all__ = ["Alert", "SendResult", "send"]

SEVERITY_MARK = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}


class Alert(BaseModel):
    """An alert event as channels render it; for kind "report", `event` holds the weekly report under
    "report"."""

    delivery_id: str
    kind: Literal["trigger", "resolve", "report"]
    event: dict[str, Any]
    organization: str

    @property
    def message_id(self) -> str:
        """Standard Webhooks webhook-id: stable across retries of this delivery."""
        return "msg_" + self.delivery_id.replace("-", "")

    @property
    def event_type(self) -> str:
        return {"trigger": "alert.triggered", "resolve": "alert.resolved"}.get(self.kind, "report.weekly")

    @property
    def report(self) -> dict[str, Any]:
        return self.event["report"]

    def payload(self) -> dict[str, Any]:
        e = self.event
        if self.kind == "report":
            r = self.report
            return {
                "id": r["id"],
                "organization_id": r["org_id"],
                "organization": self.organization,
                "period_start": r["period_start"],
                "period_end": r["period_end"],
                "headline": r["headline"],
                "narrative": r["narrative"],
                "method": r["method"],
                "grounded": r["grounded"],
                "evidence": r["evidence"],
                "created_at": r["created_at"],
            }
        return {
            "id": e["id"],
            "organization_id": e["org_id"],
            "organization": self.organization,
            "rule_id": e.get("rule_id"),
            "rule": e.get("rule_name"),
            "budget_id": e.get("budget_id"),
            "severity": e["severity"],
            "title": e["title"],
            "status": e["status"],
            "details": e.get("details"),
            "created_at": e["created_at"],
            "resolved_at": e.get("resolved_at"),
        }


class SendResult(BaseModel):
    # delivered; retry (transient: try again later); failed (retrying cannot help); gone (410: disable)
    outcome: Literal["delivered", "retry", "failed", "gone"]
    status_code: int | None = None
    error: str | None = None


def _http_result(response: httpx.Response) -> SendResult:
    if 200 <= response.status_code < 300:
        return SendResult(outcome="delivered", status_code=response.status_code)
    if response.status_code == 410:
        return SendResult(outcome="gone", status_code=410, error="410 Gone: the endpoint asked to be removed")
    why = "redirect not followed" if 300 <= response.status_code < 400 else response.text[:200]
    return SendResult(
        outcome="retry", status_code=response.status_code, error=f"HTTP {response.status_code}: {why}"
    )


def _post(
    url: str, body: dict[str, Any], settings: Settings, signed: tuple[str, str] | None = None
) -> SendResult:
    """POST body as JSON; `signed` = (secret, webhook-id) adds the Standard Webhooks headers."""
    raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    headers = signature_headers(signed[0], signed[1], raw) if signed else {}
    try:
        return _http_result(post_json_pinned(url, raw, headers, settings))
    except BlockedTarget as exc:
        return SendResult(outcome="failed", error=f"blocked: {exc}")
    except httpx.HTTPError as exc:
        # A Slack URL is a credential: keep it (and its path) out of stored errors and logs.
        text = str(exc).replace(url, "<url>").replace(urlsplit(url).path or "<url>", "<path>")
        return SendResult(outcome="retry", error=f"{type(exc).__name__}: {text[:200]}")


def send_webhook(alert: Alert, channel: dict, credential: dict, settings: Settings) -> SendResult:
    body = {"type": alert.event_type, "timestamp": datetime.now(UTC).isoformat(), "data": alert.payload()}
    return _post(channel["url"], body, settings, signed=(credential["secret"], alert.message_id))


def _report_slack(alert: Alert) -> dict[str, Any]:
    r = alert.report
    return {
        "text": f"Weekly report for {alert.organization}: {r['headline']}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{r['headline']}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": r["narrative"][:2900]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _report_footer(alert)}]},
        ],
    }


def _report_footer(alert: Alert) -> str:
    r = alert.report
    how = (f"written by {r['model']}, every figure checked against the week's data" if r["method"] == "llm"
           else "built from the week's figures")
    return f"{alert.organization} · week of {str(r['period_start'])[:10]} (UTC) · {how}"


def send_slack(alert: Alert, channel: dict, credential: dict, settings: Settings) -> SendResult:
    if alert.kind == "report":
        return _post(credential["url"], _report_slack(alert), settings)
    e = alert.event
    mark = ":white_check_mark:" if alert.kind == "resolve" else SEVERITY_MARK.get(e["severity"], "")
    head = f"{mark} *{'Resolved: ' if alert.kind == 'resolve' else ''}{e['title']}*"
    context = f"{alert.organization} · {e.get('rule_name') or 'alert'} · {e['severity']} · {e['created_at']}"
    body = {
        "text": f"{'Resolved: ' if alert.kind == 'resolve' else ''}{e['title']}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": head}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }
    return _post(credential["url"], body, settings)


def send_pagerduty(alert: Alert, channel: dict, credential: dict, settings: Settings) -> SendResult:
    if alert.kind == "report":
        return SendResult(outcome="failed", error="PagerDuty channels take alerts, not reports")
    e = alert.event
    body: dict[str, Any] = {
        "routing_key": credential["routing_key"],
        "dedup_key": f"tokentra-{e['id']}",
        "event_action": "trigger" if alert.kind == "trigger" else "resolve",
    }
    if alert.kind == "trigger":
        body["client"] = "TokenTRA"
        body["payload"] = {
            "summary": e["title"][:1024],
            "source": f"tokentra:{alert.organization}"[:255],
            "severity": e["severity"],
            "component": (e.get("details") or {}).get("kind"),
            "timestamp": e["created_at"],
            "custom_details": alert.payload(),
        }
    return _post(settings.pagerduty_events_url, body, settings)


def _email(alert: Alert, channel: dict, settings: Settings) -> EmailMessage:
    # Headers up to 998 characters are legal; the default 78 folds a long subject at odd places.
    msg = EmailMessage(policy=email.policy.SMTP.clone(max_line_length=998))
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(channel["to"])
    msg["Message-ID"] = f"<{alert.message_id}@tokentra>"
    if alert.kind == "report":
        r = alert.report
        msg["Subject"] = f"[TokenTRA] Weekly report, {alert.organization}: week of {str(r['period_start'])[:10]}"
        msg.set_content(f"{r['headline']}\n\n{r['narrative']}\n\n-- \n{_report_footer(alert)}\n")
        return msg
    e = alert.event
    msg["Subject"] = f"[TokenTRA] {'resolved' if alert.kind == 'resolve' else e['severity']}: {e['title']}"
    details = "\n".join(f"  {k}: {v}" for k, v in (e.get("details") or {}).items())
    msg.set_content(
        f"{e['title']}\n\nOrganization: {alert.organization}\nRule: {e.get('rule_name')}\n"
        f"Severity: {e['severity']}\nStatus: {'resolved' if alert.kind == 'resolve' else e['status']}\n"
        f"Raised: {e['created_at']}\n\n{details}\n"
    )
    return msg


def send_email(alert: Alert, channel: dict, credential: dict, settings: Settings) -> SendResult:
    if not settings.smtp_host:
        return SendResult(outcome="failed", error="no SMTP server configured (TOKENTRA_SMTP_HOST)")
    if not channel.get("to"):
        return SendResult(outcome="failed", error="no recipient: the organization has no owner or admin with an "
                                                  "email address")
    msg = _email(alert, channel, settings)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.alert_http_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(msg)
    except smtplib.SMTPResponseException as exc:
        # 5xx is permanent (the address or message is refused), 4xx is worth another try.
        return SendResult(
            outcome="failed" if exc.smtp_code >= 500 else "retry",
            status_code=exc.smtp_code,
            error=f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:300],
        )
    except smtplib.SMTPRecipientsRefused as exc:
        return SendResult(outcome="failed", error=f"recipients refused: {sorted(exc.recipients)}"[:300])
    except (OSError, smtplib.SMTPException) as exc:
        return SendResult(outcome="retry", error=f"{type(exc).__name__}: {str(exc)[:200]}")
    return SendResult(outcome="delivered", status_code=250)


SENDERS = {"webhook": send_webhook, "slack": send_slack, "pagerduty": send_pagerduty, "email": send_email}


def send(alert: Alert, channel: dict, credential: dict | None, settings: Settings) -> SendResult:
    """Deliver alert to channel once. Never raises."""
    if channel.get("removed"):
        return SendResult(outcome="failed", error="the channel was removed from its rule")
    sender = SENDERS.get(channel.get("type", ""))
    if sender is None:
        return SendResult(outcome="failed", error=f"unknown channel type {channel.get('type')!r}")
    if channel.get("type") != "email" and not credential:
        return SendResult(outcome="failed", error="the channel's credential is missing")
    try:
        return sender(alert, channel, credential or {}, settings)
    except Exception as exc:  # a bug in a sender must not stop the other deliveries
        return SendResult(outcome="retry", error=f"{type(exc).__name__}: {str(exc)[:200]}")
