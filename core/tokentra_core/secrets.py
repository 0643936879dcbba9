"""Provider credentials at rest: Supabase Vault where present, else envelope encryption.

Envelope: each secret gets its own AES-256-GCM data key; the data key is stored wrapped by the master
key (TOKENTRA_SECRET_KEY, base64 of 32 bytes). Both are bound to the organization id as associated
data, so a ciphertext copied to another organization's row does not decrypt.
"""

from __future__ import annotations

import base64
import os
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokentra_core.db import Conn, one
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


def seal_envelope(plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, wrapped data key): a fresh data key for this secret, wrapped by the master key, both
    bound to `aad` so a ciphertext copied to another row does not decrypt."""
    data_key = AESGCM.generate_key(bit_length=256)
    return _seal(data_key, plaintext, aad), _seal(master_key(), data_key, aad)


def open_envelope(ciphertext: bytes, wrapped_key: bytes, aad: bytes) -> bytes:
    """The plaintext `seal_envelope` sealed with the same `aad`."""
    return _open(_open(master_key(), wrapped_key, aad), ciphertext, aad)


def _has_vault(conn: Conn) -> bool:
    return one(conn.execute("select to_regproc('vault.create_secret') is not null as v"))["v"]


def store_provider_secret(conn: Conn, org_id: UUID, provider: str, secret: str,
                          name: str = "default") -> UUID:
    """Save a provider credential for an organization; returns the connection id."""
    hint = secret[-4:]
    if _has_vault(conn):
        vault_id = one(conn.execute("select vault.create_secret(%s, %s) as id",
                                (secret, f"tokentra:{org_id}:{provider}:{name}")))["id"]
        row = one(conn.execute(
            "insert into public.provider_connections (org_id, provider, name, key_hint, vault_secret_id) "
            "values (%s, %s, %s, %s, %s) returning id", (org_id, provider, name, hint, vault_id)))
        return row["id"]
    ciphertext, wrapped_key = seal_envelope(secret.encode(), str(org_id).encode())
    row = one(conn.execute(
        "insert into public.provider_connections (org_id, provider, name, key_hint, ciphertext, wrapped_key) "
        "values (%s, %s, %s, %s, %s, %s) returning id",
        (org_id, provider, name, hint, ciphertext, wrapped_key),
    ))
    return row["id"]


def read_provider_secret(conn: Conn, connection_id: UUID) -> str:
    """Decrypt a provider credential (service only: users cannot read the columns involved)."""
    row = conn.execute("select org_id, vault_secret_id, ciphertext, wrapped_key from public.provider_connections "
                       "where id = %s", (connection_id,)).fetchone()
    if row is None:
        raise KeyError(connection_id)
    if row["vault_secret_id"]:
        return one(conn.execute("select decrypted_secret from vault.decrypted_secrets where id = %s",
                            (row["vault_secret_id"],)))["decrypted_secret"]
    return unseal_provider_secret(row["org_id"], bytes(row["ciphertext"]), bytes(row["wrapped_key"]))


# ---------------------------------------------------------------- connections with base URL and admin key
class ConnectionExists(Exception):
    """A connection of that organization, provider and name exists (and replace was not asked)."""


def unseal_provider_secret(org_id: UUID, ciphertext: bytes, wrapped_key: bytes) -> str:
    """Open an envelope-encrypted secret of an organization (the gateway reads it without a sync connection)."""
    aad = str(org_id).encode()
    return open_envelope(ciphertext, wrapped_key, aad).decode()


def _sealed(conn: Conn, org_id: UUID, secret: str, label: str) -> dict[str, object]:
    """The columns that hold a secret: a Vault secret id where Vault exists, else ciphertext and wrapped key."""
    if _has_vault(conn):
        vault_id = one(conn.execute("select vault.create_secret(%s, %s) as id", (secret, label)))["id"]
        return {"vault_secret_id": vault_id, "ciphertext": None, "wrapped_key": None}
    aad = str(org_id).encode()
    ciphertext, wrapped_key = seal_envelope(secret.encode(), aad)
    return {"vault_secret_id": None, "ciphertext": ciphertext, "wrapped_key": wrapped_key}


def store_provider_connection(conn: Conn, org_id: UUID, provider: str, api_key: str, *,
                              admin_key: str | None = None, base_url: str | None = None, name: str = "default",
                              replace: bool = False) -> UUID:
    """Save a connection with its API key, optional admin key and base URL; returns its id. With replace,
    an existing connection of that name gets the new keys and URL (its old Vault secrets are deleted)."""
    existing = conn.execute("select id, vault_secret_id from public.provider_connections "
                            "where org_id = %s and provider = %s and name = %s", (org_id, provider, name)).fetchone()
    if existing is not None and not replace:
        raise ConnectionExists(name)
    api = _sealed(conn, org_id, api_key, f"tokentra:{org_id}:{provider}:{name}")
    if existing is None:
        connection_id = one(conn.execute(
            "insert into public.provider_connections (org_id, provider, name, key_hint, base_url, vault_secret_id, "
            "ciphertext, wrapped_key) values (%s, %s, %s, %s, %s, %s, %s, %s) returning id",
            (org_id, provider, name, api_key[-4:], base_url, api["vault_secret_id"], api["ciphertext"],
             api["wrapped_key"])))["id"]
    else:
        connection_id = existing["id"]
        conn.execute("update public.provider_connections set key_hint = %s, base_url = %s, vault_secret_id = %s, "
                     "ciphertext = %s, wrapped_key = %s where id = %s",
                     (api_key[-4:], base_url, api["vault_secret_id"], api["ciphertext"], api["wrapped_key"],
                      connection_id))
        if existing["vault_secret_id"] is not None:
            conn.execute("delete from vault.secrets where id = %s", (existing["vault_secret_id"],))
        conn.execute("delete from private.provider_admin_keys where connection_id = %s", (connection_id,))
    if admin_key is not None:
        sealed = _sealed(conn, org_id, admin_key, f"tokentra:{org_id}:{provider}:{name}:admin")
        conn.execute("insert into private.provider_admin_keys (connection_id, org_id, key_hint, vault_secret_id, "
                     "ciphertext, wrapped_key) values (%s, %s, %s, %s, %s, %s)",
                     (connection_id, org_id, admin_key[-4:], sealed["vault_secret_id"], sealed["ciphertext"],
                      sealed["wrapped_key"]))
    return connection_id


def read_admin_key(conn: Conn, connection_id: UUID) -> str | None:
    """Decrypt a connection's admin key (service only); None when it has none."""
    row = conn.execute("select org_id, vault_secret_id, ciphertext, wrapped_key from private.provider_admin_keys "
                       "where connection_id = %s", (connection_id,)).fetchone()
    if row is None:
        return None
    if row["vault_secret_id"]:
        return one(conn.execute("select decrypted_secret from vault.decrypted_secrets where id = %s",
                            (row["vault_secret_id"],)))["decrypted_secret"]
    return unseal_provider_secret(row["org_id"], bytes(row["ciphertext"]), bytes(row["wrapped_key"]))


def list_provider_connections(conn: Conn, org_id: UUID) -> list[dict[str, object]]:
    """An organization's connections with key hints, never the keys."""
    return conn.execute(
        "select c.id, c.org_id, c.provider, c.name, c.base_url, c.key_hint, a.key_hint as admin_key_hint, c.enabled, "
        "c.created_at from public.provider_connections c left join private.provider_admin_keys a "
        "on a.connection_id = c.id where c.org_id = %s order by c.provider, c.name", (org_id,)).fetchall()
