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
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tokentra_functions.user_auth import UserClaims, as_user

__all__ = ["DIMENSIONS", "Filters", "csv_response", "json_response", "run_json", "wants_csv"]

# The rollups' dimensions, as the SQL functions name them (private.usage_dimensions()).
DIMENSIONS = ("org_id", "team", "project", "provider", "model", "feature", "api_key_id", "status")
Name = Annotated[str, Field(min_length=1, max_length=200)]


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
        row = await cur.fetchone()
    return row["result"]


def json_response(text: str) -> Response:
    return Response(content=text, media_type="application/json")


def parse_exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def csv_response(columns: Sequence[str], rows: Iterable[dict[str, Any]], filename: str) -> Response:
    """Rows as CSV with a header line; decimals written exactly as Postgres computed them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
