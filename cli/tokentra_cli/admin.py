"""Operator actions run as the service: organizations, users, memberships, API keys.

Each is one SQL statement or function; the CLI and the tests call these, never SQL of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, EmailStr

from tokentra_cli.errors import CliError
from tokentra_core.db import Conn, one
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
    created: bool = True  # False: the user existed and only the membership was added


class OrgRow(BaseModel):
    id: UUID
    name: str
    slug: str | None = None
    plan: str | None = None
    members: int
    active_keys: int
    created_at: datetime


class Membership(BaseModel):
    user_id: UUID
    email: str | None
    org_id: UUID | None
    org_name: str | None
    role: str | None


class KeyRow(BaseModel):
    id: UUID
    org_id: UUID
    name: str
    prefix: str
    mode: str | None = None
    project_id: UUID | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AnalystRow(BaseModel):
    role: str
    org_id: UUID
    org_name: str
    statement_timeout_seconds: float
    created_at: datetime


class ApiKey(BaseModel):
    id: UUID
    key: str
    prefix: str
    org_id: UUID
    project_id: UUID | None = None


def create_org(conn: Conn, name: str) -> Organization:
    row = one(conn.execute(
        "insert into public.organizations (name) values (%s) returning id, name", (name,)
    ))
    conn.execute("insert into public.billing_profiles (org_id) values (%s)", (row["id"],))
    return Organization(**row)


def _supabase_admin_create_user(email: str) -> UUID:
    """On a real Supabase project users live in GoTrue: create them through its admin API."""
    from supabase import create_client

    settings = get_settings()
    if not (settings.supabase_url and settings.supabase_service_role_key):
        raise ValueError("SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY are both needed to create users on a project")
    client = create_client(settings.supabase_url, settings.supabase_service_role_key)
    created = client.auth.admin.create_user({"email": email, "email_confirm": True})
    return UUID(str(created.user.id))


def checked_email(email: str) -> str:
    """The address normalized, or ValueError saying in words why it is not one we accept."""
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{email!r} is not an email address TokenTRA accepts: {exc} Use a real address, "
                         "e.g. ana@example.com") from None


def create_user(conn: Conn, email: str, org_id: UUID | None, role: str | None) -> User:
    """Create the user, or find the one with that email; then add the membership (a second organization
    for an existing user). ValueError, in words, for a bad role or email, an unknown organization or a
    membership that already exists."""
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    email = checked_email(email)
    if org_id is not None and not conn.execute(
            "select 1 from public.organizations where id = %s", (org_id,)).fetchone():
        raise ValueError(f"no organization {org_id}: `tokentra orgs list` shows them")
    # auth.users is in the database on Supabase too: an existing address is found the same way.
    found = conn.execute("select id from auth.users where lower(email) = lower(%s)", (email,)).fetchone()
    if found is not None:
        user_id = found["id"]
        if org_id is None:
            raise ValueError(f"user {email} already exists; give --org ORG_ID to add them to an organization")
    else:
        settings = get_settings()
        if settings.supabase_url and settings.supabase_service_role_key:
            user_id = _supabase_admin_create_user(email)
        else:
            user_id = one(conn.execute(
                "insert into auth.users (email) values (%s) returning id", (email,)
            ))["id"]
    if org_id is not None:
        member = conn.execute(
            "select role from public.organization_members where org_id = %s and user_id = %s", (org_id, user_id)
        ).fetchone()
        if member is not None:
            raise ValueError(f"{email} is already a member of organization {org_id} (role {member['role']}); "
                             "nothing to add")
        conn.execute(
            "insert into public.organization_members (org_id, user_id, role) values (%s, %s, %s)",
            (org_id, user_id, role or "member"),
        )
    return User(id=user_id, email=email, org_id=org_id, role=(role or "member") if org_id else None,
                created=found is None)


def list_orgs(conn: Conn) -> list[OrgRow]:
    rows = conn.execute(
        "select o.id, o.name, o.slug, o.plan, o.created_at, "
        "(select count(*) from public.organization_members m where m.org_id = o.id) as members, "
        "(select count(*) from public.api_keys k where k.org_id = o.id and k.revoked_at is null) as active_keys "
        "from public.organizations o order by o.created_at, o.name"
    ).fetchall()
    return [OrgRow(**r) for r in rows]


def list_users(conn: Conn, org_id: UUID | None = None) -> list[Membership]:
    """One row per membership (users of no organization once, without one)."""
    rows = conn.execute(
        "select u.id as user_id, u.email, m.org_id, o.name as org_name, m.role from auth.users u "
        "left join public.organization_members m on m.user_id = u.id "
        "left join public.organizations o on o.id = m.org_id "
        "where %(org)s::uuid is null or m.org_id = %(org)s order by u.email, o.name",
        {"org": org_id},
    ).fetchall()
    return [Membership(**r) for r in rows]


def list_keys(conn: Conn, org_id: UUID | None = None, revoked: bool = False) -> list[KeyRow]:
    """API keys (never the key or its hash), newest first; revoked ones only when asked."""
    rows = conn.execute(
        "select id, org_id, name, prefix, mode, project_id, created_at, last_used_at, revoked_at "
        "from public.api_keys where (%(org)s::uuid is null or org_id = %(org)s) "
        "and (%(revoked)s or revoked_at is null) order by created_at desc",
        {"org": org_id, "revoked": revoked},
    ).fetchall()
    return [KeyRow(**r) for r in rows]


def list_analysts(conn: Conn, org_id: UUID | None = None) -> list[AnalystRow]:
    rows = conn.execute(
        "select a.role_name as role, a.org_id, o.name as org_name, "
        "extract(epoch from a.statement_timeout)::float8 as statement_timeout_seconds, a.created_at "
        "from private.analyst_roles a join public.organizations o on o.id = a.org_id "
        "where %(org)s::uuid is null or a.org_id = %(org)s order by o.name, a.created_at",
        {"org": org_id},
    ).fetchall()
    return [AnalystRow(**r) for r in rows]


class ScopeRow(BaseModel):
    id: UUID
    org_id: UUID
    name: str
    created_at: datetime


# Fixed statements per kind: the table name never comes from input.
_SCOPE_SQL = {
    "teams": ("insert into public.teams (org_id, name) values (%s, %s) returning id, org_id, name, created_at",
              "select id, org_id, name, created_at from public.teams where %(org)s::uuid is null or org_id = %(org)s "
              "order by org_id, name"),
    "projects": ("insert into public.projects (org_id, name) values (%s, %s) returning id, org_id, name, created_at",
                 "select id, org_id, name, created_at from public.projects where %(org)s::uuid is null "
                 "or org_id = %(org)s order by org_id, name"),
}


def create_scope(conn: Conn, kind: str, org_id: UUID, name: str) -> ScopeRow:
    """A team or project by name (as the SDK's tags would carry it); CliError in words if it exists."""
    name = name.strip()
    if not name:
        raise CliError("the name must not be blank")
    if not conn.execute("select 1 from public.organizations where id = %s", (org_id,)).fetchone():
        raise CliError(f"no organization {org_id}: `tokentra orgs list` shows them")
    try:
        with conn.transaction():
            row = one(conn.execute(_SCOPE_SQL[kind][0], (org_id, name)))
    except psycopg.errors.UniqueViolation:
        raise CliError(f"{kind[:-1]} {name!r} already exists in organization {org_id}; nothing to add") from None
    return ScopeRow(**row)


def list_scopes(conn: Conn, kind: str, org_id: UUID | None = None) -> list[ScopeRow]:
    return [ScopeRow(**r) for r in conn.execute(_SCOPE_SQL[kind][1], {"org": org_id}).fetchall()]


def as_json_rows(rows: list[Any]) -> str:
    """A JSON array of the rows, for --json."""
    return "[" + ",".join(r.model_dump_json() for r in rows) + "]"


def create_key(conn: Conn, org_id: UUID, project_id: UUID | None = None, test: bool = False,
               name: str = "default") -> ApiKey:
    row = one(conn.execute(
        "select id, key, prefix from private.new_api_key(%s, %s, %s, %s)", (org_id, project_id, name, test)
    ))
    return ApiKey(**row, org_id=org_id, project_id=project_id)


def revoke_key(conn: Conn, key_id: UUID) -> bool:
    cur = conn.execute(
        "update public.api_keys set revoked_at = now() where id = %s and revoked_at is null", (key_id,)
    )
    return cur.rowcount == 1
