"""One-line answers for the failures an operator can fix: what failed, why, and what to do next.

The CLI's commands raise; the root command group turns these exceptions into a single `error:` line
(never a traceback), so a wrong password or an unreachable database reads as a sentence.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError
from typer.core import TyperGroup

__all__ = ["CliError", "OneLineErrors", "connection_failure", "describe", "is_connection_failure", "public_dsn"]


class CliError(Exception):
    """A failure already phrased for the operator (what, why, what to do)."""


def public_dsn(dsn: str) -> str:
    """The database URL as it may be printed: user, host, port and database, never the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<not a connection URL>"
    user = str(params["user"]) if params.get("user") else None
    host = params.get("host", "localhost")
    port = params.get("port", "5432")
    db = params.get("dbname", user or "postgres")
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{db}"


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n")[0].split())
    return re.sub(r"^connection failed: ", "", text)


def connection_failure(exc: psycopg.Error, dsn: str, local: bool) -> CliError:
    """Why connecting failed, and the next step, as one line."""
    where = public_dsn(dsn)
    text = str(exc)
    if isinstance(exc, psycopg.ProgrammingError) or where == "<not a connection URL>":
        return CliError(f"DATABASE_URL is not a Postgres connection URL ({_first_line(exc)}): set it to "
                        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or unset it to use the local database")
    start = "run `tokentra db start`" if local else "check DATABASE_URL's host and port, and that Postgres runs there"
    if "password authentication failed" in text or "no password supplied" in text:
        reason, step = "the password was refused", "check the password in DATABASE_URL"
    elif "Connection refused" in text:
        reason, step = "nothing listens there (connection refused)", start
    elif "failed to resolve host" in text or "could not translate host name" in text:
        reason, step = "the host name does not resolve", "check the host in DATABASE_URL"
    elif "timeout expired" in text or "timed out" in text:
        reason, step = "no answer in time", start
    elif re.search(r'database ".*" does not exist', text):
        reason, step = _first_line(exc).split("FATAL:")[-1].strip(), "check the database name in DATABASE_URL"
    elif re.search(r'role ".*" does not exist', text):
        reason, step = _first_line(exc).split("FATAL:")[-1].strip(), "check the user in DATABASE_URL"
    else:
        reason, step = _first_line(exc), start
    return CliError(f"cannot connect to the database at {where}: {reason}; {step}")


def describe(exc: BaseException) -> str | None:
    """The one line for an exception a command let through, or None for a bug (keep its traceback)."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, ValidationError):
        parts = []
        for e in exc.errors():
            field = ".".join(str(p) for p in e["loc"]) or "value"
            parts.append(f"{field}: {e['msg']}")
        return "invalid input: " + "; ".join(parts)
    if isinstance(exc, psycopg.Error):
        diag = exc.diag
        message = diag.message_primary or _first_line(exc)
        detail = f" ({diag.message_detail})" if diag.message_detail else ""
        return f"the database refused this: {message}{detail}"
    return None


def is_connection_failure(exc: BaseException) -> bool:
    """psycopg raises these without a SQLSTATE when it never reached a server (bad URL, refused, auth)."""
    return isinstance(exc, psycopg.OperationalError | psycopg.ProgrammingError | psycopg.InterfaceError) and (
        getattr(exc, "sqlstate", None) is None
    )


class OneLineErrors(TyperGroup):
    """The root command group: a failure an operator can fix ends the command with one `error:` line on
    stderr and exit status 1, whichever command raised it; bugs keep their traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            line = self._line(exc)
            if line is None:
                raise
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(1) from None

    @staticmethod
    def _line(exc: Exception) -> str | None:
        if is_connection_failure(exc):
            from tokentra_core.settings import get_settings

            settings = get_settings()
            return str(connection_failure(exc, settings.dsn, settings.uses_local_db))  # type: ignore[arg-type]
        return describe(exc)
