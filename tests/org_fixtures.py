"""Organizations for the tests of budgets, alerts and the worker: owner, admin, member and viewer users,
an outsider and an API key; signed-in calls carry Supabase user JWTs signed with the project's secret."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import jwt

from secret_registry import SECRETS_SEEN
from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_core.settings import get_settings


def user_token(user_id: uuid.UUID | str) -> str:
    claims = {
        "sub": str(user_id),
        "role": "authenticated",
        "aud": "authenticated",
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, get_settings().supabase_jwt_secret, algorithm="HS256")


@dataclass
class Org:
    id: str
    key: str
    key_id: str
    tokens: dict[str, str] = field(default_factory=dict)  # role -> JWT; "outsider" belongs to no org

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_org(dsn: str) -> Org:
    tag = uuid.uuid4().hex[:8]
    with connect(dsn, autocommit=True) as conn:
        o = admin.create_org(conn, f"budgets-{tag}")
        key = admin.create_key(conn, o.id)
        tokens = {}
        for role in ("owner", "admin", "member", "viewer"):
            user = admin.create_user(conn, f"{role}-{tag}@example.com", o.id, role)
            tokens[role] = user_token(user.id)
        tokens["outsider"] = user_token(admin.create_user(conn, f"outsider-{tag}@example.com", None, None).id)
    SECRETS_SEEN.append(key.key)
    return Org(str(o.id), key.key, str(key.id), tokens)


def add_usage(
    dsn: str, org_id: str, cost: Decimal | str | float | None, at: datetime | None = None, **cols
) -> None:
    """Store one priced (or, with cost None, unpriced) usage row as ingest would."""
    row = {
        "org_id": org_id,
        "occurred_at": at or datetime.now(UTC),
        "request_id": str(uuid.uuid4()),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": cost,
        "priced": cost is not None,
        **cols,
    }
    with connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"insert into public.usage_records ({', '.join(row)}) values ({', '.join(['%s'] * len(row))})",
            list(row.values()),
        )


def api(url: str, method: str, path: str, headers: dict[str, str], **kw) -> httpx.Response:
    return httpx.request(method, f"{url}{path}", headers=headers, timeout=30, **kw)
