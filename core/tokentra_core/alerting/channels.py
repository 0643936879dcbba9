"""Alert channels as clients send them, and as they are stored.

A channel's credential (a webhook's signing secret, a Slack incoming-webhook URL, a PagerDuty routing
key) is split off, encrypted into private.alert_channel_secrets and replaced by a hint; it is never
stored in the rule or returned. Saving a channel again without its credential keeps the stored one.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr, field_validator

from tokentra_core.alerting.secrets import seal_credential
from tokentra_core.alerting.ssrf import BlockedTarget, parse_networks, resolve_target
from tokentra_core.alerting.webhooks import SECRET_SHAPE
from tokentra_core.settings import Settings

__all__ = ["SAVE_SQL", "Channel", "ChannelError", "prepare_channels", "sealed_rows"]

Url = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https?://[^\x00]*$")]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: UUID | None = Field(
        default=None, description="Keep to update a channel (its credential stays if omitted)."
    )
    reports: bool = Field(
        default=False, description="Also send this channel the organization's weekly reports."
    )


class SlackChannel(_Base):
    type: Literal["slack"]
    url: SecretStr | None = Field(
        default=None, description="The incoming-webhook URL (a credential: stored encrypted)."
    )


class WebhookChannel(_Base):
    type: Literal["webhook"]
    url: Url
    secret: SecretStr | None = Field(
        default=None, description="Standard Webhooks signing secret, whsec_<base64>."
    )

    @field_validator("secret")
    @classmethod
    def _shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not SECRET_SHAPE.match(v.get_secret_value()):
            raise ValueError("must be whsec_ followed by base64 of 24 to 64 bytes")
        return v


class EmailChannel(_Base):
    type: Literal["email"]
    to: Annotated[list[EmailStr], Field(min_length=1, max_length=20)]


class PagerDutyChannel(_Base):
    type: Literal["pagerduty"]
    routing_key: SecretStr | None = Field(
        default=None, description="Events API v2 integration (routing) key."
    )

    @field_validator("reports")
    @classmethod
    def _no_reports(cls, v: bool) -> bool:
        if v:
            raise ValueError("a PagerDuty channel pages someone; send weekly reports to email, Slack or a webhook")
        return v

    @field_validator("routing_key")
    @classmethod
    def _shape(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not (1 <= len(v.get_secret_value()) <= 64 and v.get_secret_value().isalnum()):
            raise ValueError("must be 1 to 64 letters and digits")
        return v


Channel = Annotated[
    SlackChannel | WebhookChannel | EmailChannel | PagerDutyChannel, Field(discriminator="type")
]
# The field of each channel type that is a credential.
CREDENTIAL_FIELD = {"slack": "url", "webhook": "secret", "pagerduty": "routing_key"}


class ChannelError(ValueError):
    """A channel cannot be saved: `field` names it (channels.<i>.<field>), the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _hint(kind: str, credential: str) -> dict[str, Any]:
    if kind == "slack":
        return {"url_hint": credential.split("://", 1)[-1].split("/", 1)[0] + "/…" + credential[-4:]}
    if kind == "pagerduty":
        return {"routing_key_hint": "…" + credential[-4:]}
    return {"has_secret": True}


def prepare_channels(
    channels: list[Channel], existing: list[dict[str, Any]], settings: Settings
) -> tuple[list[dict[str, Any]], dict[UUID, dict[str, str]]]:
    """The channels to store and the credentials to encrypt ({channel id: {field: value}}).

    HTTP targets pass the SSRF check here (and again at send time). Raises ChannelError."""
    known = {str(c.get("id")): c for c in existing}
    allowed = parse_networks(settings.webhook_allowed_networks)
    stored, credentials = [], {}
    for i, channel in enumerate(channels):
        previous = known.get(str(channel.id)) if channel.id else None
        if previous is not None and previous.get("type") != channel.type:
            raise ChannelError(f"channels.{i}.type", "a channel keeps its type; add a new channel instead")
        channel_id = UUID(previous["id"]) if previous else uuid.uuid4()
        row = channel.model_dump(mode="json", exclude={"id", "secret", "url", "routing_key"})
        row["id"] = str(channel_id)
        field = CREDENTIAL_FIELD.get(channel.type)
        if channel.type == "webhook":
            row["url"] = channel.url
            _check_target(channel.url, allowed, f"channels.{i}.url")
        if field:
            secret: SecretStr | None = getattr(channel, field)
            if secret is None:
                if previous is None:
                    raise ChannelError(f"channels.{i}.{field}", f"required for a new {channel.type} channel")
                row.update({k: v for k, v in previous.items() if k.endswith("_hint") or k == "has_secret"})
            else:
                value = secret.get_secret_value()
                if channel.type == "slack":
                    _check_target(value, allowed, f"channels.{i}.url")
                credentials[channel_id] = {field: value}
                row.update(_hint(channel.type, value))
        stored.append(row)
    return stored, credentials


def _check_target(url: str, allowed: list, field: str) -> None:
    try:
        resolve_target(url, allowed)
    except BlockedTarget as exc:
        raise ChannelError(field, f"refused: {exc}") from None


SAVE_SQL = "select private.save_alert_channel_secret(%s, %s, %s, %s)"


def sealed_rows(org_id: UUID, rule_id: UUID, credentials: dict[UUID, dict[str, str]]) -> list[tuple]:
    """Parameters of SAVE_SQL for each credential, encrypted (SAVE_SQL works as the signed-in user too)."""
    rows = []
    for channel_id, credential in credentials.items():
        sealed, wrapped = seal_credential(org_id, rule_id, channel_id, credential)
        rows.append((rule_id, channel_id, sealed, wrapped))
    return rows
