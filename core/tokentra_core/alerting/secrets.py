"""Channel credentials at rest: envelope encryption as for provider credentials (tokentra_core.secrets):
a fresh AES-256-GCM data key per credential, wrapped by the master key (TOKENTRA_SECRET_KEY). Both are
bound to the organization, rule and channel, so a ciphertext copied to another row does not decrypt."""

from __future__ import annotations

import json
from uuid import UUID

from tokentra_core.secrets import open_envelope, seal_envelope

__all__ = ["open_credential", "seal_credential"]


def _aad(org_id: UUID, rule_id: UUID, channel_id: UUID) -> bytes:
    return f"alert-channel:{org_id}:{rule_id}:{channel_id}".encode()


def seal_credential(
    org_id: UUID, rule_id: UUID, channel_id: UUID, credential: dict[str, str]
) -> tuple[bytes, bytes]:
    """(ciphertext, wrapped data key) of a channel's credential fields."""
    return seal_envelope(json.dumps(credential).encode(), _aad(org_id, rule_id, channel_id))


def open_credential(
    org_id: UUID, rule_id: UUID, channel_id: UUID, ciphertext: bytes, wrapped: bytes
) -> dict[str, str]:
    return json.loads(open_envelope(ciphertext, wrapped, _aad(org_id, rule_id, channel_id)))
