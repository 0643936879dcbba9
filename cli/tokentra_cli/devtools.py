"""The one door from the shipped CLI to development-only code (the demo, the benchmarks).

`tokentra_dev` is installed by ./scripts/setup from the checkout and never ships in the wheel, so a plain
wheel install has `tokentra demo` and `tokentra bench ...` but they say where to get them instead of failing
with a traceback. Loading it by name keeps every other import of it out of shipped code, which the import
contracts check.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import typer


def dev_tool(module: str) -> ModuleType:
    """Import `tokentra_dev.<module>`, or exit with one line saying how to get it."""
    try:
        return importlib.import_module(f"tokentra_dev.{module}")
    except ModuleNotFoundError as err:
        if err.name not in ("tokentra_dev", f"tokentra_dev.{module}"):
            raise
        typer.echo(
            "this command needs the development tools, which the installed package does not ship: "
            "clone the repository and run ./scripts/setup, then use .venv/bin/tokentra",
            err=True,
        )
        raise typer.Exit(2) from None
