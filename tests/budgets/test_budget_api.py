"""/functions/v1/budgets over real HTTP: the budget fields, roles through RLS, bad input refused with
the field and the reason, status and spend following ingestion."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from org_fixtures import add_usage, api
from tokentra_core.db import connect


def data(r: httpx.Response):
    """The answer's `data`, after checking the one envelope every endpoint answers with."""
    body = r.json()
    assert set(body) == {"data", "meta"}, body
    return body["data"]


def create(url, org, role="admin", **fields) -> httpx.Response:
    body = {"org_id": org.id, "name": "monthly cap", "amount": "100.00", "period": "monthly", **fields}
    return api(url, "POST", "/budgets", org.auth(role), json=body)


def test_admin_creates_a_budget_with_seed_field_names_and_reads_status(functions_url, org):
    r = create(functions_url, org, alert_thresholds=[90, 50, 75, 100, 50])
    assert r.status_code == 201, r.text
    b = data(r)
    for name in (
        "name",
        "amount",
        "period",
        "scope_type",
        "scope_id",
        "alert_thresholds",
        "hard_limit",
        "status",
        "current_spend",
        "projected_spend",
        "period_start",
        "period_end",
    ):
        assert name in b
    assert b["alert_thresholds"] == [50, 75, 90, 100]  # sorted, distinct
    assert (b["status"], b["current_spend"], b["scope_type"]) == ("ok", 0, "organization")
    # money is a JSON number, as /costs writes it
    assert all(type(b[k]) in (int, float) for k in ("amount", "current_spend", "remaining", "projected_spend"))
    got = api(functions_url, "GET", f"/budgets/{b['id']}", org.auth("member"))
    assert got.status_code == 200 and data(got)["id"] == b["id"]


def test_roles_admins_write_members_read_viewers_and_outsiders_see_nothing(functions_url, org):
    b = data(create(functions_url, org))
    assert create(functions_url, org, role="member").status_code == 403
    assert (
        api(functions_url, "PATCH", f"/budgets/{b['id']}", org.auth("member"), json={"amount": 5}).status_code
        == 403
    )
    assert api(functions_url, "DELETE", f"/budgets/{b['id']}", org.auth("member")).status_code == 403
    listed = data(api(functions_url, "GET", f"/budgets?org_id={org.id}", org.auth("member")))
    assert [x["id"] for x in listed] == [b["id"]]
    # a viewer may not read budgets: told so (403), not handed an empty list
    for path in ("/budgets", f"/budgets?org_id={org.id}"):
        refused = api(functions_url, "GET", path, org.auth("viewer"))
        assert refused.status_code == 403 and "budgets.read" in refused.json()["message"], refused.text
    assert api(functions_url, "GET", f"/budgets?org_id={org.id}", org.auth("outsider")).status_code == 403
    assert api(functions_url, "GET", f"/budgets/{b['id']}", org.auth("outsider")).status_code == 404
    assert create(functions_url, org, role="outsider").status_code == 403
    assert api(functions_url, "GET", "/budgets", {}).status_code == 401
    assert api(functions_url, "GET", "/budgets", {"Authorization": "Bearer not-a-jwt"}).status_code == 401


def test_admin_updates_and_deletes(functions_url, org):
    b = data(create(functions_url, org))
    r = api(
        functions_url,
        "PATCH",
        f"/budgets/{b['id']}",
        org.auth("admin"),
        json={"amount": "250.50", "hard_limit": True, "period": "weekly", "week_start": 0},
    )
    assert r.status_code == 200, r.text
    assert (data(r)["amount"], data(r)["hard_limit"], data(r)["period"]) == (250.5, True, "weekly")
    assert api(functions_url, "DELETE", f"/budgets/{b['id']}", org.auth("admin")).status_code == 204
    assert api(functions_url, "GET", f"/budgets/{b['id']}", org.auth("admin")).status_code == 404


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"alert_thresholds": [0, 50]}, "alert_thresholds.0"),
        ({"alert_thresholds": [50, 1001]}, "alert_thresholds.1"),
        ({"period": "yearly"}, "period"),
        ({"scope_type": "galaxy", "scope_id": "x"}, "scope_type"),
        ({"scope_type": "team", "scope_id": "no-such-team"}, "scope_id"),
        ({"scope_type": "project", "scope_id": str(uuid.uuid4())}, "scope_id"),
        ({"scope_type": "api_key", "scope_id": str(uuid.uuid4())}, "scope_id"),
        ({"scope_type": "model", "scope_id": "no-such-model-xyz"}, "scope_id"),
        ({"scope_type": "team"}, "scope_id"),
        ({"scope_type": "organization", "scope_id": "x"}, "scope_id"),
        ({"week_start": 7}, "week_start"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_budgets_are_refused_with_field_and_reason(functions_url, org, fields, field):
    r = create(functions_url, org, **fields)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message"].startswith(f"{field}:"), body
    assert body.get("field", field) == field and len(body["message"]) > len(field) + 3


def test_scope_ids_resolve_within_the_organization_and_names_become_ids(functions_url, org, dsn):
    with connect(dsn, autocommit=True) as conn:
        team = conn.execute(
            "insert into public.teams (org_id, name) values (%s, 'growth') returning id", (org.id,)
        ).fetchone()["id"]
    r = create(functions_url, org, scope_type="team", scope_id="growth")
    assert r.status_code == 201, r.text
    assert data(r)["scope_id"] == str(team)
    # another organization's team is unknown here
    other = create(functions_url, org, scope_type="api_key", scope_id=org.key_id)
    assert other.status_code == 201
    assert create(functions_url, org, scope_type="model", scope_id="gpt-4o").status_code == 201


def test_current_spend_and_status_follow_ingestion_within_seconds(functions_url, org):
    b = data(create(functions_url, org, amount="1.00", period="daily"))
    event = {
        "request_id": str(uuid.uuid4()),
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 100_000,
        "output_tokens": 50_000,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    r = httpx.post(
        f"{functions_url}/ingest",
        json={"events": [event]},
        headers={"Authorization": f"Bearer {org.key}"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1
    # gpt-4o: 100k input at $2.50/M + 50k output at $10/M = $0.75
    assert r.headers["X-TokenTRA-Budget-Status"] == "warning"
    assert r.headers["X-TokenTRA-Budget-Id"] == b["id"]
    got = data(api(functions_url, "GET", f"/budgets/{b['id']}", org.auth("admin")))
    assert Decimal(str(got["current_spend"])) == Decimal("0.75")
    assert (got["status"], got["crossed_thresholds"]) == ("warning", [50, 75])
    assert Decimal(str(got["projected_spend"])) >= Decimal("0.75")


def test_status_exceeded_and_remaining(functions_url, org, dsn):
    b = data(create(functions_url, org, amount="10.00", period="daily"))
    add_usage(dsn, org.id, "12.5")
    got = data(api(functions_url, "GET", f"/budgets/{b['id']}", org.auth("member")))
    assert (got["status"], got["remaining"], got["crossed_thresholds"]) == (
        "exceeded",
        0,
        [50, 75, 90, 100],
    )


def test_every_bad_field_is_named_not_only_the_first(functions_url, org):
    r = create(functions_url, org, amount="-5", period="yearly", week_start=9, colour="blue")
    assert r.status_code == 422, r.text
    body = r.json()
    fields = {e["field"] for e in body["errors"]}
    assert {"amount", "period", "week_start", "colour"} <= fields, body
    assert all(f"{f}:" in body["message"] for f in fields)
    assert body["field"] == body["errors"][0]["field"]  # the first, for clients that read one


def test_a_team_seen_only_in_usage_tags_is_a_budget_scope_by_its_name(functions_url, org):
    # The SDK's tags never create a teams row; the budget names the team as the tags do.
    team, project = f"search-{uuid.uuid4().hex[:6]}", f"web-{uuid.uuid4().hex[:6]}"
    event = {"request_id": str(uuid.uuid4()), "provider": "openai", "model": "gpt-4o", "input_tokens": 1000,
             "output_tokens": 100, "timestamp": datetime.now(UTC).isoformat(),
             "metadata": {"team": team, "project": project}}
    r = httpx.post(f"{functions_url}/ingest", json={"events": [event]},
                   headers={"Authorization": f"Bearer {org.key}"}, timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    by_team = create(functions_url, org, scope_type="team", scope_id=team)
    assert by_team.status_code == 201, by_team.text
    got = data(by_team)
    uuid.UUID(got["scope_id"])  # stored against the team row created for the name
    assert got["current_spend"] > 0  # and it counts the spend tagged with the name
    assert create(functions_url, org, scope_type="project", scope_id=project).status_code == 201
    # a name never seen stays refused, so a typo cannot become a scope that never matches
    typo = create(functions_url, org, scope_type="team", scope_id=team + "x")
    assert typo.status_code == 422 and typo.json()["field"] == "scope_id"


def test_teams_no_usage_has_named_are_created_by_the_api_then_budgeted_by_name(functions_url, org):
    name = f"platform-{uuid.uuid4().hex[:6]}"
    # not seen in usage: a budget naming it is refused until the team exists
    assert create(functions_url, org, scope_type="team", scope_id=name).status_code == 422
    assert api(functions_url, "POST", "/teams", org.auth("member"), json={"org_id": org.id, "name": name}
               ).status_code == 403
    made = api(functions_url, "POST", "/teams", org.auth("admin"), json={"org_id": org.id, "name": name})
    assert made.status_code == 201, made.text
    team = data(made)
    again = api(functions_url, "POST", "/teams", org.auth("admin"), json={"org_id": org.id, "name": name})
    assert again.status_code == 409 and "name:" in again.json()["message"]
    listed = data(api(functions_url, "GET", f"/teams?org_id={org.id}", org.auth("member")))
    assert team["id"] in [t["id"] for t in listed]
    assert api(functions_url, "GET", f"/teams?org_id={org.id}", org.auth("viewer")).status_code == 403
    budget = create(functions_url, org, scope_type="team", scope_id=name)
    assert budget.status_code == 201 and data(budget)["scope_id"] == team["id"]
    # projects the same way, optionally under a team
    project = api(functions_url, "POST", "/projects", org.auth("admin"),
                  json={"org_id": org.id, "name": name, "team_id": team["id"]})
    assert project.status_code == 201 and data(project)["team_id"] == team["id"], project.text
    bad = api(functions_url, "POST", "/projects", org.auth("admin"), json={"org_id": "x", "name": "", "extra": 1})
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} >= {"org_id", "name", "extra"}
