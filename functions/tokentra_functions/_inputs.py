"""Input types every function shares: text Postgres can store, times and days it can hold, JSON it accepts.

Each refuses what would otherwise fail in the database (a 500) with the field and a reason: a NUL
character (Postgres text cannot hold one), a time offset Postgres cannot represent or a date whose
arithmetic overflows, NaN or infinity in JSON (jsonb has neither), JSON nested past any sensible depth.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field

__all__ = ["Day", "JsonObject", "Moment", "Text", "check_json", "no_nul"]

NO_NUL = "^[^\\x00]*$"  # also in the OpenAPI document, so generated clients and fuzzers know
EARLIEST, LATEST = 1970, 9000  # years: room for any query arithmetic, far from Python's and Postgres' limits
MAX_JSON_DEPTH = 32


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _moment(value: datetime) -> datetime:
    if not EARLIEST <= value.year <= LATEST:
        raise ValueError(f"must be between the years {EARLIEST} and {LATEST}")
    # A time without an offset is read as UTC, as Supabase's APIs do; with one, it is converted to UTC
    # here (Postgres refuses offsets of 16 hours or more, which Python accepts).
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"must be between the years {EARLIEST} and {LATEST}") from None


def _day(value: date) -> date:
    if not EARLIEST <= value.year <= LATEST:
        raise ValueError(f"must be between the years {EARLIEST} and {LATEST}")
    return value


def check_json(value: Any, path: str = "", depth: int = 0) -> Any:
    """value itself when jsonb can store it; else ValueError naming the first offending path."""
    where = path or "value"
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where}: must not contain NUL characters")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: must be a finite number (not NaN or infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in str(key):
                raise ValueError(f"{where}: keys must not contain NUL characters")
            check_json(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_json(item, f"{path}[{i}]", depth + 1)
    return value


Text = Annotated[str, AfterValidator(no_nul), Field(json_schema_extra={"pattern": NO_NUL})]
Moment = Annotated[datetime, AfterValidator(_moment)]
Day = Annotated[date, AfterValidator(_day)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json)]
