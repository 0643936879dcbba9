"""The demo's management section: what `tokentra orgs|users|keys|teams list` show for the demo organization.

The teams listed were never created by hand: the SDK's team tags became rows (the tag-scopes job, or the
team budget that named one first), which is what lets a budget name a team as the tags do.
"""

from __future__ import annotations

from uuid import UUID

from rich.console import Console

from tokentra_cli import admin
from tokentra_core.db import connect

console = Console()


def show(org_id: UUID) -> None:
    with connect() as conn:
        conn.execute("select private.adopt_tag_scopes()")  # what the minute job does, now rather than soon
        conn.commit()
        org = next(o for o in admin.list_orgs(conn) if o.id == org_id)
        members = admin.list_users(conn, org_id)
        keys = admin.list_keys(conn, org_id)
        teams = admin.list_scopes(conn, "teams", org_id)
        # One identity per model: snapshots the provider named and the bare name group together.
        models = conn.execute(
            "select model, canonical_model, count(*) as calls from public.usage_records where org_id = %s "
            "group by 1, 2 order by 3 desc limit 8", (org_id,)).fetchall()
    console.print("\n[bold]Management[/bold] (the same as `tokentra orgs list`, `users list --org ORG_ID`, "
                  "`keys list --org ORG_ID`, `teams list --org ORG_ID`; add --json for scripts)", soft_wrap=True)
    console.print(f"  organization {org.name}: {org.members} member(s), {org.active_keys} active key(s), "
                  f"plan {org.plan}")
    for m in members:
        console.print(f"  member {m.email} ({m.role})")
    for k in keys:
        used = f"last used {k.last_used_at:%H:%M:%S}" if k.last_used_at else "never used"
        console.print(f"  key {k.prefix}… ({k.name}), {used}")
    console.print(f"  teams, all created from the SDK's tags: {', '.join(t.name for t in teams) or 'none yet'}",
                  soft_wrap=True)
    console.print("  models as sent -> the model they are grouped and priced as (`tokentra prices show MODEL` says "
                  "how a name resolves; `tokentra prices set` gives an unpriced model its own price):", soft_wrap=True)
    for m in models:
        console.print(f"    {m['model']} -> {m['canonical_model']} ({m['calls']:,} calls)")
