"""`tokentra users login`: local development sign-in for the dashboard and for scripts.

Where no Supabase Auth server runs, a one-time link (the code's hash kept in
private.dev_sign_in_codes) or a JWT printed for scripts stands in for Auth's sign-in; both are refused
on a real project (tokentra_core.dev_auth)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from psycopg.rows import dict_row

from tokentra_core.db import Conn
from tokentra_core.dev_auth import local_sign_in_refusal, mint_user_jwt
from tokentra_core.settings import Settings

__all__ = ["SignInRefused", "login_link", "login_token"]


class SignInRefused(Exception):
    """Local sign-in is off here, or the email names no user."""


def _user(conn: Conn, email: str, settings: Settings) -> UUID:
    if refusal := local_sign_in_refusal(settings):
        raise SignInRefused(f"local sign-in is off: {refusal}")
    row = conn.cursor(row_factory=dict_row).execute(
        "select id from auth.users where lower(email) = lower(%s)", (email,)).fetchone()
    if row is None:
        raise SignInRefused(f"no user {email}: create one with `tokentra users create {email} --org ORG_ID "
                            "--role member`")
    return UUID(str(row["id"]))


def login_link(conn: Conn, email: str, settings: Settings, ttl: timedelta) -> str:
    """A one-time link that signs the user in to the local dashboard."""
    user_id = _user(conn, email, settings)
    issued = conn.cursor(row_factory=dict_row).execute(
        "select private.issue_dev_sign_in_code(%s, %s) as code", (user_id, ttl)).fetchone()
    if issued is None:  # a select of one expression always answers one row
        raise RuntimeError("private.issue_dev_sign_in_code answered no row")
    code = issued["code"]
    return f"http://{settings.functions_host}:{settings.functions_port}/dashboard/#/signin?code={code}"


def login_token(conn: Conn, email: str, settings: Settings, ttl: timedelta) -> str:
    """A user JWT for scripts (Authorization: Bearer ...), as Supabase Auth would issue."""
    user_id = _user(conn, email, settings)
    return mint_user_jwt(settings, user_id, email, int(ttl.total_seconds()))
