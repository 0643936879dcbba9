"""`tokentra virtual-keys create|list|rotate|revoke|unblock`: the keys applications hold for the gateway.

Each command calls one SQL function (private.new_virtual_key, public.list_virtual_keys, ...); the key is
printed once at creation and rotation, and only its hash is stored."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated
from uuid import UUID

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from tokentra_core.db import Conn, connect, one
from tokentra_functions.gateway.admin import MAX_TPM

app = typer.Typer(help="Virtual keys: what applications hold to call providers through the gateway.",
                  no_args_is_help=True)
console = Console()
err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
DURATION = re.compile(r"^(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def parse_expiry(value: str, now: datetime | None = None) -> datetime:
    """An ISO-8601 time (UTC when it names no zone) or a duration from now: 90m, 12h, 30d, 2w."""
    now = now or datetime.now(UTC)
    match = DURATION.match(value.strip())
    if match:
        amount, unit = int(match[1]), match[2]
        return now + timedelta(**{UNITS[unit]: amount})
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be an ISO-8601 time or a duration such as 30d, 12h, 90m") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _list(option: str, value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        _fail(f"{option}: give at least one name, comma-separated")
    return items


@app.command("create")
def create(
    org: Annotated[UUID, typer.Option(help="Organization id.")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "gateway",
    team: Annotated[str | None, typer.Option(help="Team its calls are attributed to.")] = None,
    project: Annotated[str | None, typer.Option(help="Project its calls are attributed to.")] = None,
    end_user: Annotated[str | None, typer.Option("--end-user", help="End user its calls are attributed to.")] = None,
    budget: Annotated[str | None, typer.Option(help="A budget of the key's own, USD per period.")] = None,
    period: Annotated[str, typer.Option(help="daily, weekly or monthly.")] = "monthly",
    hard_limit: Annotated[bool, typer.Option(
        "--hard-limit/--soft-limit", help="Hard: refuse calls that could pass the budget. Soft: alert only.")] = True,
    rpm: Annotated[int | None, typer.Option(help="Requests per minute.", min=1, max=10_000_000)] = None,
    tpm: Annotated[int | None, typer.Option(help="Tokens per minute.", min=1, max=MAX_TPM)] = None,
    models: Annotated[str | None, typer.Option(help="Allowed models, comma-separated (default: all).")] = None,
    providers: Annotated[str | None, typer.Option(help="Allowed providers: openai,anthropic (default: both).")] = None,
    expires: Annotated[str | None, typer.Option(help="ISO-8601 time or a duration (30d, 12h).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a virtual key (printed once; only its hash is stored)."""
    amount = None
    if budget is not None:
        try:
            amount = Decimal(budget)
        except InvalidOperation:
            _fail("--budget: must be an amount of USD such as 25 or 12.50")
    expires_at = None
    if expires is not None:
        try:
            expires_at = parse_expiry(expires)
        except ValueError as exc:
            _fail(f"--expires: {exc}")
    provider_list = _list("--providers", providers)
    try:
        with connect() as conn:
            row = one(conn.execute(
                "select * from private.new_virtual_key(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (org, name, team, project, end_user, amount, period, hard_limit, rpm, tpm, _list("--models", models),
                 [p.lower() for p in provider_list] if provider_list else None, expires_at)))
            conn.commit()
    except psycopg.Error as exc:
        message = exc.diag.message_primary or str(exc)
        if exc.sqlstate == "23503":
            message = f"org: no organization {org}"
        _fail("--" + message.replace("budget_", "").replace("_", "-") if ": " in message else message)
        return
    out = {"id": str(row["id"]), "key": row["key"], "prefix": row["prefix"],
           "budget_id": str(row["budget_id"]) if row["budget_id"] else None,
           "expires_at": expires_at.isoformat() if expires_at else None}
    if as_json:
        print(json.dumps(out))
    else:
        print(f"virtual key {row['id']}: {row['key']}\n(shown once; store it now)")


@app.command("list")
def list_(org: Annotated[UUID, typer.Option(help="Organization id.")], as_json: JsonFlag = False) -> None:
    """The organization's virtual keys with their policy, budget and any block (never the keys)."""
    with connect() as conn:
        rows = conn.execute("select * from public.list_virtual_keys(%s)", (org,)).fetchall()
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("id", "name", "prefix", "attribution", "budget", "limits", "models", "state")
    for r in rows:
        state = ("revoked" if r["revoked_at"] else "expired" if r["expires_at"] and r["expires_at"] < datetime.now(UTC)
                 else f"blocked ({r['block_reason']})" if r["blocked_until"] else "active")
        table.add_row(str(r["id"]), r["name"], r["prefix"],
                      " ".join(f"{k}={r[k]}" for k in ("team", "project", "end_user_id") if r[k]) or "-",
                      f"${r['budget_amount']}/{r['budget_period']}{' hard' if r['hard_limit'] else ''}"
                      if r["budget_amount"] else "-",
                      " ".join(f"{k}={r[k]}" for k in ("rpm", "tpm") if r[k]) or "-",
                      ",".join(r["allowed_models"] or []) or "all", state)
    console.print(table)


def _org_of(conn: Conn, key_id: UUID) -> UUID:
    row = one(conn.execute("select k.org_id from public.api_keys k join private.virtual_keys v on v.key_id = k.id "
                       "where k.id = %s", (key_id,)))
    if row is None:
        _fail(f"no virtual key {key_id}")
    return row["org_id"]


@app.command("rotate")
def rotate(key_id: UUID, as_json: JsonFlag = False) -> None:
    """A new secret for the same key (its policy, budget and history stay); the old one stops working."""
    with connect() as conn:
        try:
            row = one(conn.execute("select * from private.rotate_virtual_key(%s, %s)",
                               (_org_of(conn, key_id), key_id)))
        except psycopg.Error as exc:
            _fail(exc.diag.message_primary or str(exc))
            return
        conn.commit()
    if as_json:
        print(json.dumps({"id": str(row["id"]), "key": row["key"], "prefix": row["prefix"]}))
    else:
        print(f"virtual key {row['id']}: {row['key']}\n(shown once; the old secret no longer works)")


@app.command("revoke")
def revoke(key_id: UUID, as_json: JsonFlag = False) -> None:
    """Revoke a virtual key; calls with it are refused at once."""
    with connect() as conn:
        revoked = one(conn.execute("select public.revoke_virtual_key(%s, %s) as r",
                               (_org_of(conn, key_id), key_id)))["r"]
        conn.commit()
    if not revoked:
        _fail(f"virtual key {key_id} is already revoked")
    print(json.dumps({"revoked": str(key_id)}) if as_json else f"revoked {key_id}")


@app.command("unblock")
def unblock(key_id: UUID, as_json: JsonFlag = False) -> None:
    """Lift a block rule's stop (the runaway-loop kill-switch) from a key."""
    with connect() as conn:
        row = one(conn.execute("delete from private.gateway_key_blocks where key_id = %s returning reason",
                           (key_id,)))
        conn.commit()
    if row is None:
        _fail(f"virtual key {key_id} is not blocked")
    print(json.dumps({"unblocked": str(key_id), "reason": row["reason"]}) if as_json
          else f"unblocked {key_id} ({row['reason']})")
