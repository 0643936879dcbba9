"""What the analytics functions share: the filter model, JSON passed through exactly, CSV export.

The SQL functions answer jsonb whose numbers are Postgres numerics; passing that text through keeps
every decimal, which is what lets a client compare totals with raw aggregates to the last digit
(parse with `json.loads(text, parse_float=Decimal)`). Floats would not.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tokentra_core.db import one_async
from tokentra_functions._inputs import Text
from tokentra_functions.user_auth import UserClaims, as_user

__all__ = ["DIMENSIONS", "Fill", "Filters", "csv_response", "json_response", "run_envelope", "run_json",
           "wants_csv"]

# The rollups' dimensions, as the SQL functions name them (private.usage_dimensions()).
DIMENSIONS = ("org_id", "team", "project", "provider", "model", "feature", "api_key_id", "status", "canonical_model")
Name = Annotated[Text, Field(min_length=1, max_length=200)]


class Filters(BaseModel):
    """Narrow any query to one value of a dimension."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    org_id: UUID | None = Field(
        default=None, description="One organization (default: every one you can read)."
    )
    team: Name | None = None
    project: Name | None = None
    feature: Name | None = None
    model: Name | None = None
    provider: Name | None = None
    api_key_id: UUID | None = None
    status: Literal["success", "error", "timeout", "rate_limited", "cancelled"] | None = None
    canonical_model: Name | None = Field(
        default=None, description="One model identity (the model a price resolves to), whatever snapshot was sent."
    )

    def sql_args(self) -> dict[str, Any]:
        """The filters as the SQL functions' named arguments."""
        return {
            "org": self.org_id,
            "team": self.team,
            "project": self.project,
            "feature": self.feature,
            "model": self.model,
            "provider": self.provider,
            "api_key": self.api_key_id,
            "status": self.status,
            "canonical_model": self.canonical_model,
        }


def wants_csv(request: Request) -> bool:
    """CSV when the client asks for it first (`Accept: text/csv`); JSON otherwise."""
    accept = request.headers.get("accept", "")
    return accept.split(",")[0].split(";")[0].strip().lower() == "text/csv"


async def run_json(pool, user: UserClaims, function: str, args: dict[str, Any]) -> str:
    """Call one of the analytics SQL functions as the user; return its jsonb as text.

    `function` is one of this package's constant names, never a client's; arguments are parameters."""
    named = ", ".join(f"{name} => %({name})s" for name in args)
    async with as_user(pool, user) as conn:
        cur = await conn.execute(f"select public.{function}({named})::text as result", args)
        row = await one_async(cur)
    return row["result"]


class Fill(BaseModel):
    """Zero-fill a series answer (private.zero_filled): every `step` of [start, end), for every series
    (each distinct value of `dims`), the missing points being `zero`."""

    bucket_key: str
    start: datetime
    end: datetime
    step: timedelta
    dims: list[str]
    zero: dict[str, Any]


async def run_envelope(
    pool, user: UserClaims, function: str, args: dict[str, Any], *, whole: bool = False,
    meta: dict[str, Any] | None = None, fill: Fill | None = None,
) -> str | None:
    """Call an analytics SQL function as the user and answer `{"data": ..., "meta": ...}` as JSON text.

    Functions answering `{"data", "meta"}` keep theirs (meta merged with `meta`); `whole` puts the
    function's entire answer under data. Built in SQL, so numerics stay exact. None when the function
    answered null (nothing the user may read)."""
    named = ", ".join(f"{name} => %({name})s" for name in args)
    call = f"public.{function}({named})"
    params: dict[str, Any] = {**args, "_meta": json.dumps(meta or {})}
    if fill is not None:
        call = (f"private.zero_filled({call}, %(_key)s, %(_start)s, %(_end)s, %(_step)s, %(_dims)s::text[], "
                "%(_zero)s::jsonb)")
        params.update(_key=fill.bucket_key, _start=fill.start, _end=fill.end, _step=fill.step, _dims=fill.dims,
                      _zero=json.dumps(fill.zero))
    data, own_meta = ("r.j", "null::jsonb") if whole else ("r.j -> 'data'", "r.j -> 'meta'")
    # Identifiers come from this package's constants (function names) and the two literals above; every
    # value is a parameter.
    query = (f"select case when r.j is null then null else jsonb_build_object('data', {data}, 'meta', "  # noqa: S608
             f"coalesce({own_meta}, '{{}}'::jsonb) || %(_meta)s::jsonb) end::text as result "
             f"from (select {call} as j) r")
    async with as_user(pool, user) as conn:
        cur = await conn.execute(query, params)
        row = await one_async(cur)
    return row["result"]


def json_response(text: str) -> Response:
    return Response(content=text, media_type="application/json")


def parse_exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


# A text cell starting with one of these is read as a formula by spreadsheets (CSV injection); OWASP's
# rule: prefix it with a single quote. Numbers are never text here, so they stay numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(columns: Sequence[str], rows: Iterable[dict[str, Any]], filename: str) -> Response:
    """Rows as CSV with a header line; decimals written exactly as Postgres computed them."""
    out = io.StringIO()
    # RFC 4180 line ends: with "\n" alone, a cell holding a bare "\r" would go out unquoted and split the row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
