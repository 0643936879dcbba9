"""Operator actions run as the service: organizations, users, memberships, API keys.

Each is one SQL statement or function; the CLI and the tests call these, never SQL of their own.
"""

from __future__ import annotations

from uuid import UUID

import psycopg
from pydantic import BaseModel, EmailStr

from tokentra_core.settings import get_settings

ROLES = ("owner", "admin", "member", "viewer", "billing")


class Organization(BaseModel):
    id: UUID
    name: str


class User(BaseModel):
    id: UUID
    email: EmailStr
    org_id: UUID | None = None
    role: str | None = None


class ApiKey(BaseModel):
    id: UUID
    key: str
    prefix: str
    org_id: UUID
    project_id: UUID | None = None


def create_org(conn: psycopg.Connection, name: str) -> Organization:
    row = conn.execute(
        "insert into public.organizations (name) values (%s) returning id, name", (name,)
    ).fetchone()
    conn.execute("insert into public.billing_profiles (org_id) values (%s)", (row["id"],))
    return Organization(**row)


def _supabase_admin_create_user(email: str) -> UUID:
    """On a real Supabase project users live in GoTrue: create them through its admin API."""
    from supabase import create_client

    settings = get_settings()
    client = create_client(settings.supabase_url, settings.supabase_service_role_key)
    created = client.auth.admin.create_user({"email": email, "email_confirm": True})
    return UUID(str(created.user.id))


def create_user(conn: psycopg.Connection, email: str, org_id: UUID | None, role: str | None) -> User:
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    settings = get_settings()
    if settings.supabase_url and settings.supabase_service_role_key:
        user_id = _supabase_admin_create_user(email)
    else:
        user_id = conn.execute(
            "insert into auth.users (email) values (%s) returning id", (email,)
        ).fetchone()["id"]
    if org_id is not None:
        conn.execute(
            "insert into public.organization_members (org_id, user_id, role) values (%s, %s, %s)",
            (org_id, user_id, role or "member"),
        )
    return User(id=user_id, email=email, org_id=org_id, role=role if org_id else None)


def create_key(conn: psycopg.Connection, org_id: UUID, project_id: UUID | None = None, test: bool = False,
               name: str = "default") -> ApiKey:
    row = conn.execute(
        "select id, key, prefix from private.new_api_key(%s, %s, %s, %s)", (org_id, project_id, name, test)
    ).fetchone()
    return ApiKey(**row, org_id=org_id, project_id=project_id)


def revoke_key(conn: psycopg.Connection, key_id: UUID) -> bool:
    cur = conn.execute(
        "update public.api_keys set revoked_at = now() where id = %s and revoked_at is null", (key_id,)
    )
    return cur.rowcount == 1
