"""Channel credentials at rest: envelope encryption as for provider credentials (tokentra_core.secrets):
a fresh AES-256-GCM data key per credential, wrapped by the master key (TOKENTRA_SECRET_KEY). Both are
bound to the organization, rule and channel, so a ciphertext copied to another row does not decrypt."""

from __future__ import annotations

import json
import os
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokentra_core.secrets import master_key

__all__ = ["open_credential", "seal_credential"]


def _aad(org_id: UUID, rule_id: UUID, channel_id: UUID) -> bytes:
    return f"alert-channel:{org_id}:{rule_id}:{channel_id}".encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)


def seal_credential(
    org_id: UUID, rule_id: UUID, channel_id: UUID, credential: dict[str, str]
) -> tuple[bytes, bytes]:
    """(ciphertext, wrapped data key) of a channel's credential fields."""
    aad = _aad(org_id, rule_id, channel_id)
    data_key = AESGCM.generate_key(bit_length=256)
    return _seal(data_key, json.dumps(credential).encode(), aad), _seal(master_key(), data_key, aad)


def open_credential(
    org_id: UUID, rule_id: UUID, channel_id: UUID, ciphertext: bytes, wrapped: bytes
) -> dict[str, str]:
    aad = _aad(org_id, rule_id, channel_id)
    return json.loads(_open(_open(master_key(), wrapped, aad), ciphertext, aad))
