"""Database refusals as API answers: the field and the reason for bad input, 403 where RLS says no.

Constraints are named as sentences and triggers raise with a COLUMN, so the field comes from the
database itself; the messages of our triggers already start with "<field>: ".
"""

from __future__ import annotations

import psycopg
from fastapi.responses import JSONResponse

__all__ = ["db_error", "invalid"]

# Constraint name -> (field, reason) for the checks a client can trip.
CONSTRAINTS = {
    "amount_is_positive": ("amount", "must be greater than 0"),
    "thresholds_are_between_1_and_1000": ("alert_thresholds", "each threshold must be between 1 and 1000"),
    "period_is_known": ("period", "must be daily, weekly or monthly"),
    "week_start_is_a_weekday": ("week_start", "must be 0 (Sunday) to 6 (Saturday)"),
    "scope_type_is_known": ("scope_type", "unknown scope type"),
    "scope_id_is_given_unless_organization": (
        "scope_id",
        "required for every scope but organization, and absent for organization",
    ),
    "name_is_not_blank": ("name", "must not be blank"),
    "currency_is_usd": ("currency", "budgets are kept in USD"),
    "type_is_known": ("type", "unknown alert rule type"),
    "channels_is_an_array": ("channels", "must be an array"),
}


def invalid(field: str, reason: str) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_request", "message": f"{field}: {reason}", "field": field, "reason": reason,
         "errors": [{"field": field, "reason": reason}]},
        status_code=422,
    )


def db_error(exc: psycopg.Error) -> JSONResponse | None:
    """The answer for a refusal a client caused, or None for anything else (let it raise)."""
    diag = exc.diag
    if exc.sqlstate == "42501":
        return JSONResponse(
            {"error": "forbidden", "message": "your role does not allow this in that organization"},
            status_code=403,
        )
    if exc.sqlstate == "23505":
        return JSONResponse(
            {"error": "conflict", "message": diag.message_primary or "already exists"}, status_code=409
        )
    if exc.sqlstate and exc.sqlstate[:2] in ("22", "23"):
        if diag.constraint_name in CONSTRAINTS:
            return invalid(*CONSTRAINTS[diag.constraint_name])
        message = diag.message_primary or "invalid value"
        field = diag.column_name or (message.split(":", 1)[0] if ": " in message else "body")
        reason = message.split(": ", 1)[1] if message.startswith(f"{field}: ") else message
        return invalid(field, reason)
    return None
