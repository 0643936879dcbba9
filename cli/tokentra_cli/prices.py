"""`tokentra prices show` and `tokentra prices set`: what a model name resolves to, and an organization's own
price for a model (a fine-tune, a private deployment, a negotiated rate). Both call the SQL functions the
HTTP functions call (public.resolve_model_price, public.set_model_price) as the operator."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import psycopg
import typer

from tokentra_core.db import connect, one

__all__ = ["set_price", "show"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Price = Annotated[Decimal, typer.Option(min=0, help="USD per million tokens.")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _money(value: Any) -> str:
    return "-" if value is None else f"${Decimal(str(value)).normalize():f}"


def show(
    model: Annotated[str, typer.Argument(help="The model name as a client sends it.")],
    provider: Annotated[str | None, typer.Option(help="The provider as a client names it.")] = None,
    org: Annotated[UUID | None, typer.Option(help="Include this organization's own prices.")] = None,
    at: Annotated[datetime | None, typer.Option(help="The instant whose price to show (default: now).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """What a model name resolves to: canonical model, price source and the price in effect."""
    with connect() as conn:
        row = one(conn.execute(
            "select public.resolve_model_price(model => %s, provider => %s, org => %s, at => coalesce(%s, now())) "
            "as r", (model, provider, org, at),
        ))
    r = row["r"]
    if as_json:
        typer.echo(json.dumps(r))
        return
    price = r["price"] or {}
    source = {"organization": "the organization's own price", "genai-prices": "genai-prices"}.get(
        r["source"], "nothing: calls are stored unpriced (set one with `tokentra prices set`)")
    lines = [
        f"model            {r['model']}" + (f" (provider {r['provider']})" if r["provider"] else ""),
        f"canonical model  {r['canonical_model']}",
        f"priced by        {source}",
    ]
    if r["genai_prices_model"]:
        lines.append(f"genai-prices     {r['genai_prices_model']}")
    if r["organization_price_model"]:
        lines.append(f"own price entry  {r['organization_price_model']}")
    if price:
        lines.append(
            f"per 1M tokens    input {_money(price.get('input_mtok'))}, output {_money(price.get('output_mtok'))}, "
            f"cache read {_money(price.get('cache_read_mtok'))}, cache write {_money(price.get('cache_write_mtok'))}"
        )
        since = price.get("effective_from")
        lines.append(f"in effect from   {since if since not in (None, '-infinity') else 'always'}")
    for p in r["organization_prices"]:
        lines.append(f"  own set from {p['effective_from'] or 'always'}: input {_money(p['input_mtok'])}, "
                     f"output {_money(p['output_mtok'])}" + (f" ({p['note']})" if p.get("note") else ""))
    typer.echo("\n".join(lines))


def set_price(
    model: Annotated[str, typer.Argument(help="The model name your calls send, or a canonical model (gpt-4o) to "
                                              "override every name that resolves to it.")],
    org: Annotated[UUID, typer.Option(help="The organization the price is for.")],
    input_mtok: Annotated[Decimal, typer.Option("--input", min=0, help="USD per million input tokens.")],
    output_mtok: Annotated[Decimal, typer.Option("--output", min=0, help="USD per million output tokens.")],
    provider: Annotated[str | None, typer.Option(help="Only calls to this provider (default: any).")] = None,
    cache_read: Annotated[Decimal | None, typer.Option(min=0, help="USD per million cached input tokens.")] = None,
    cache_write: Annotated[Decimal | None, typer.Option(min=0, help="USD per million cache-write tokens.")] = None,
    effective_from: Annotated[datetime | None, typer.Option(
        "--from", help="From when it applies (default: all history, so past calls are re-priced).")] = None,
    note: Annotated[str | None, typer.Option(help="Why (shown with the price).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set an organization's own price for a model and re-price the stored calls it covers."""
    try:
        with connect() as conn:
            row = one(conn.execute(
                "select public.set_model_price(org => %s, model => %s, input_mtok => %s, output_mtok => %s, "
                "provider => %s, effective_from => %s, cache_read_mtok => %s, cache_write_mtok => %s, note => %s) as r",
                (org, model, input_mtok, output_mtok, provider, effective_from, cache_read, cache_write, note),
            ))
            conn.commit()
    except psycopg.errors.UniqueViolation as exc:
        _fail(f"{exc.diag.message_primary} (`tokentra prices set ... --from <later instant>`)")
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.InsufficientPrivilege) as exc:
        _fail(str(exc.diag.message_primary))
    r = row["r"]
    if as_json:
        typer.echo(json.dumps(r))
        return
    typer.echo(f"{r['model_id']} for organization {r['org_id']}"
               + (f" (provider {r['provider']})" if r["provider"] else "")
               + f": input {_money(r['input_mtok'])}, output {_money(r['output_mtok'])} per 1M tokens, from "
               f"{r['effective_from'] or 'the beginning'}; {r['repriced']} stored calls re-priced")


def from_bill(
    model: Annotated[str, typer.Argument(help="The canonical model whose gap the reconciliation found ours.")],
    org: Annotated[UUID, typer.Option(help="The organization.")],
    provider: Annotated[str, typer.Option(help="openai or anthropic.")],
    as_json: JsonFlag = False,
) -> None:
    """Set the organization's price for a model from what the provider billed (a missing or different price
    the reconciliation found), re-price the stored calls and reconcile again."""
    try:
        with connect() as conn:
            row = one(conn.execute(
                "select public.reprice_from_bill(org => %s, provider => %s, canonical_model => %s) as r",
                (org, provider, model)))
            conn.commit()
    except psycopg.errors.UniqueViolation as exc:
        _fail(str(exc.diag.message_primary))
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.InsufficientPrivilege) as exc:
        _fail(str(exc.diag.message_primary))
    r = row["r"]
    if as_json:
        typer.echo(json.dumps(r))
        return
    typer.echo(f"{r['model_id']} for organization {r['org_id']} (provider {r['provider']}): input "
               f"{_money(r['input_mtok'])}, output {_money(r['output_mtok'])} per 1M tokens as billed, from "
               f"{r['effective_from'] or 'the beginning'}; {r['repriced']} stored calls re-priced, reconciled again")
