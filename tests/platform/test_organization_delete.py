"""Deleting an organization removes its usage, claims and rollups, whatever their age."""

from __future__ import annotations

from tokentra_cli import admin
from tokentra_core.db import connect


def test_deleting_an_organization_removes_its_usage(dsn):
    with connect(dsn) as conn:
        org = admin.create_org(conn, "leaving")
        admin.create_key(conn, org.id)
        for i, age in enumerate(["3 days", "1 hour", "0 seconds"]):
            conn.execute("insert into private.usage_request_ids (org_id, request_id, occurred_at) "
                         "values (%s, %s, now() - %s::interval)", (org.id, f"r{i}", age))
            conn.execute("insert into public.usage_records (org_id, occurred_at, request_id, provider, model) "
                         "values (%s, now() - %s::interval, %s, 'openai', 'gpt-4o')", (org.id, age, f"r{i}"))
        conn.commit()
        conn.execute("delete from public.organizations where id = %s", (org.id,))
        conn.commit()
        left = conn.execute(
            "select (select count(*) from public.usage_records where org_id = %(o)s) as usage, "
            "(select count(*) from private.usage_request_ids where org_id = %(o)s) as claims, "
            "(select count(*) from private.usage_rollup_deltas where org_id = %(o)s) as deltas",
            {"o": org.id}).fetchone()
    assert left == {"usage": 0, "claims": 0, "deltas": 0}
