"""Provider credentials at rest: Supabase Vault where present, else envelope encryption.

Envelope: each secret gets its own AES-256-GCM data key; the data key is stored wrapped by the master
key (TOKENTRA_SECRET_KEY, base64 of 32 bytes). Both are bound to the organization id as associated
data, so a ciphertext copied to another organization's row does not decrypt.
"""

from __future__ import annotations

import base64
import os
from uuid import UUID

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokentra_core.settings import Settings, get_settings


def master_key(settings: Settings | None = None) -> bytes:
    """The master key; in development one is generated once per machine (never a shared default)."""
    settings = settings or get_settings()
    if settings.secret_key:
        key = base64.b64decode(settings.secret_key)
        if len(key) != 32:
            raise ValueError("TOKENTRA_SECRET_KEY must be base64 of 32 bytes")
        return key
    if settings.environment != "development":
        raise RuntimeError("TOKENTRA_SECRET_KEY must be set outside development")
    path = settings.home / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
    return base64.b64decode(path.read_text())


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)


def _has_vault(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regproc('vault.create_secret') is not null as v").fetchone()["v"]


def store_provider_secret(conn: psycopg.Connection, org_id: UUID, provider: str, secret: str,
                          name: str = "default") -> UUID:
    """Save a provider credential for an organization; returns the connection id."""
    hint = secret[-4:]
    if _has_vault(conn):
        vault_id = conn.execute("select vault.create_secret(%s, %s) as id",
                                (secret, f"tokentra:{org_id}:{provider}:{name}")).fetchone()["id"]
        row = conn.execute(
            "insert into public.provider_connections (org_id, provider, name, key_hint, vault_secret_id) "
            "values (%s, %s, %s, %s, %s) returning id", (org_id, provider, name, hint, vault_id)).fetchone()
        return row["id"]
    aad = str(org_id).encode()
    data_key = AESGCM.generate_key(bit_length=256)
    row = conn.execute(
        "insert into public.provider_connections (org_id, provider, name, key_hint, ciphertext, wrapped_key) "
        "values (%s, %s, %s, %s, %s, %s) returning id",
        (org_id, provider, name, hint, _seal(data_key, secret.encode(), aad), _seal(master_key(), data_key, aad)),
    ).fetchone()
    return row["id"]


def read_provider_secret(conn: psycopg.Connection, connection_id: UUID) -> str:
    """Decrypt a provider credential (service only: users cannot read the columns involved)."""
    row = conn.execute("select org_id, vault_secret_id, ciphertext, wrapped_key from public.provider_connections "
                       "where id = %s", (connection_id,)).fetchone()
    if row is None:
        raise KeyError(connection_id)
    if row["vault_secret_id"]:
        return conn.execute("select decrypted_secret from vault.decrypted_secrets where id = %s",
                            (row["vault_secret_id"],)).fetchone()["decrypted_secret"]
    aad = str(row["org_id"]).encode()
    data_key = _open(master_key(), bytes(row["wrapped_key"]), aad)
    return _open(data_key, bytes(row["ciphertext"]), aad).decode()
