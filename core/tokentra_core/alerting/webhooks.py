"""Standard Webhooks (https://www.standardwebhooks.com): the headers we sign with, and the check a
receiver runs (used by the tests' and the demo's local receivers)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

__all__ = ["SECRET_SHAPE", "sign", "signature_headers", "verify"]

# whsec_ + base64 of 24 to 64 bytes, as the specification's libraries generate them.
SECRET_SHAPE = re.compile(r"^whsec_[A-Za-z0-9+/]{32,88}={0,2}$")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">` with the secret's key."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """webhook-id (the same on every retry), webhook-timestamp (this attempt) and webhook-signature."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """A receiver's check: a v1 signature matches and the timestamp is within tolerance seconds."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, ts = lower["webhook-id"], int(lower["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    expected = sign(secret, msg_id, ts, body)
    return any(hmac.compare_digest(expected, sig) for sig in lower.get("webhook-signature", "").split(" "))
