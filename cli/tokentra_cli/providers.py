"""`tokentra providers add|list|remove`: an organization's provider connections (API key, optional admin
key for the providers' usage and cost reports, optional base URL). Keys are sealed before they are stored
(Vault where present, else envelope encryption) and never printed again; a key given as `-` is read from
standard input, so it stays out of shell history."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal
from uuid import UUID

import typer
from pydantic import BaseModel, Field, ValidationError, field_validator
from rich.console import Console
from rich.table import Table

from tokentra_core.db import connect
from tokentra_core.secrets import ConnectionExists, list_provider_connections, store_provider_connection

app = typer.Typer(help="Provider connections: the organization's own provider keys.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


class ConnectionIn(BaseModel):
    provider: Literal["openai", "anthropic"]
    api_key: str = Field(min_length=8, max_length=4096)
    admin_key: str | None = Field(default=None, min_length=8, max_length=4096)
    base_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[^/@\s]+(/\S*)?$")
    name: str = Field(default="default", min_length=1, max_length=100)

    @field_validator("api_key", "admin_key")
    @classmethod
    def _no_whitespace(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or any(c.isspace() for c in v.strip())):
            raise ValueError("must not contain whitespace")
        return v.strip() if v is not None else None


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def _read_stdin_keys(*values: str | None) -> list[str | None]:
    """Keys given as `-` come from standard input, one line each, in the order of the options."""
    wanted = sum(1 for v in values if v == "-")
    lines = sys.stdin.read().splitlines() if wanted else []
    lines = [line.strip() for line in lines if line.strip()]
    if len(lines) < wanted:
        _fail(f"expected {wanted} key(s) on standard input (one per line), got {len(lines)}")
    out: list[str | None] = []
    for v in values:
        out.append(lines.pop(0) if v == "-" else v)
    return out


@app.command("add")
def add(
    org: Annotated[UUID, typer.Option(help="Organization id.")],
    provider: Annotated[str, typer.Option(help="openai or anthropic.")],
    api_key: Annotated[str, typer.Option("--api-key", help="The provider API key, or - to read it from stdin.")],
    admin_key: Annotated[str | None, typer.Option(
        "--admin-key", help="An admin key for the provider's usage and cost reports, or - for stdin.")] = None,
    base_url: Annotated[str | None, typer.Option(
        "--base-url", help="Where the provider's API is (OpenAI: the /v1 root; Anthropic: the host).")] = None,
    name: Annotated[str, typer.Option(help="Connection name (calls go through 'default').")] = "default",
    replace: Annotated[bool, typer.Option(help="Replace the keys of an existing connection of this name.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a provider connection; its keys are sealed and never shown again (only the last four characters)."""
    api_key_value, admin_key_value = _read_stdin_keys(api_key, admin_key)
    try:
        spec = ConnectionIn.model_validate({
            "provider": provider.lower(), "api_key": api_key_value or "", "admin_key": admin_key_value,
            "base_url": base_url.rstrip("/") if base_url else None, "name": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]).replace("_", "-")
        _fail(f"--{field}: {first['msg']}")
        return
    with connect() as conn:
        if conn.execute("select 1 from public.organizations where id = %s", (org,)).fetchone() is None:
            _fail(f"--org: no organization {org}")
        try:
            connection_id = store_provider_connection(
                conn, org, spec.provider, spec.api_key, admin_key=spec.admin_key, base_url=spec.base_url,
                name=spec.name, replace=replace)
        except ConnectionExists:
            _fail(f"--name: {spec.provider} connection {spec.name!r} exists; --replace to change its keys")
            return
        conn.commit()
        row = next(r for r in list_provider_connections(conn, org) if r["id"] == connection_id)
    if as_json:
        print(json.dumps(row, default=str))
    else:
        console.print(f"connection {connection_id}: {spec.provider} {spec.name} key …{row['key_hint']}"
                      + (f", admin key …{row['admin_key_hint']}" if row["admin_key_hint"] else "")
                      + (f", {spec.base_url}" if spec.base_url else ""))


@app.command("list")
def list_(org: Annotated[UUID, typer.Option(help="Organization id.")], as_json: JsonFlag = False) -> None:
    """The organization's connections: provider, name, base URL, key hints (never the keys) and, for those
    with an admin key, how far the providers' usage and cost reports are synced or why they are not."""
    with connect() as conn:
        rows = list_provider_connections(conn, org)
        status = conn.execute("select * from private.provider_sync_status(%s)", (org,)).fetchall()
    sync: dict[Any, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
    for s in status:
        sync.setdefault(s["connection_id"], []).append(
            {k: v for k, v in s.items() if k not in ("connection_id", "provider", "connection_name")})
    for r in rows:
        r["sync"] = sync[r["id"]]
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("id", "provider", "name", "base url", "key", "admin key", "enabled", "bill synced")
    for r in rows:
        table.add_row(str(r["id"]), str(r["provider"]), str(r["name"]), str(r["base_url"] or "(public)"),
                      f"…{r['key_hint']}",
                      f"…{r['admin_key_hint']}" if r["admin_key_hint"] else "-", "yes" if r["enabled"] else "no",
                      _sync_summary(sync[r["id"]]))
    console.print(table)


def _sync_summary(reports: list[dict[str, Any]]) -> str:
    """One cell for a connection's reports: the first failure, else how far all of them reach."""
    if not reports:
        return "-"
    failing = [s for s in reports if s["last_error"]]
    if failing:
        return f"failing: {failing[0]['last_error'][:80]}"
    if any(s["synced_through"] is None for s in reports):
        return "not yet"
    through = min(s["synced_through"] for s in reports)
    reading = " (reading)" if any(s["in_progress"] for s in reports) else ""
    return f"through {through:%Y-%m-%d %H:%M} UTC{reading}"


@app.command("remove")
def remove(connection_id: UUID, as_json: JsonFlag = False) -> None:
    """Remove a connection and its keys (Vault secrets included)."""
    with connect() as conn:
        row = conn.execute("delete from public.provider_connections where id = %s returning id, org_id, provider, name",
                           (connection_id,)).fetchone()
        conn.commit()
    if row is None:
        _fail(f"no provider connection {connection_id}")
        return
    if as_json:
        print(json.dumps({"removed": str(row["id"]), "provider": row["provider"], "name": row["name"]}))
    else:
        console.print(f"removed {row['provider']} connection {row['name']} ({row['id']})")
