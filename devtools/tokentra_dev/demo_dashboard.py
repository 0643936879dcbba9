"""The demo's last word: the dashboard, filled with the demo organization's data, and a way in."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from rich.console import Console

from tokentra_cli import admin
from tokentra_cli.sign_in import SignInRefused, login_link
from tokentra_core.db import connect
from tokentra_core.settings import Settings

console = Console()
OWNER = "demo-owner@example.com"


def show(org_id: UUID, functions_url: str, settings: Settings, serving: bool) -> None:
    """Make the demo organization's owner and print a one-time sign-in link, then the dashboard URL."""
    port = int(functions_url.split(":")[2].split("/")[0]) if serving else settings.functions_port
    where = settings.model_copy(update={"functions_port": port})
    with connect() as conn:
        # Every demo run makes a new organization; the same owner joins each (its URL names the newest):
        # `users create` of an existing email adds the membership.
        admin.create_user(conn, OWNER, org_id, "owner")
        conn.commit()
        try:
            link = login_link(conn, OWNER, where, timedelta(minutes=60))
            conn.commit()
        except SignInRefused as exc:
            link = f"(no local link: {exc})"
    base = f"http://{settings.functions_host}:{port}/dashboard/"
    console.print("\n[bold]Dashboard[/bold]")
    console.print(f"  owner of the demo organization: {OWNER}")
    console.print(f"  one-time sign-in link (60 minutes): {link}", soft_wrap=True)
    console.print(f"  another link: tokentra users login {OWNER}")
    if not serving:
        console.print("  the functions stop with the demo: run `tokentra serve` (or `tokentra demo --keep-serving`)")
    # soft_wrap: a URL broken across lines cannot be clicked or pasted.
    console.print(f"Open the dashboard: {base}#/overview?org={org_id}", soft_wrap=True)
