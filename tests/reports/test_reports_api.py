"""GET /functions/v1/reports and /reports/{id} on the real server, as real users (RLS decides), with bad
parameters refused by name; channels marked for reports through the alerts API, and a report delivered to
one of them (a signed webhook) through the real outbox."""

from __future__ import annotations

import base64
import os
import uuid

import httpx
from report_fixtures import Week

from org_fixtures import Org
from tokentra_core.db import connect
from tokentra_worker.alerting.delivery import deliver_due
from tokentra_worker.jobs import JobContext
from tokentra_worker.reports import run_weekly_reports


def _get(url: str, path: str, org: Org, role: str | None = "member", **params) -> httpx.Response:
    headers = org.auth(role) if role else {}
    return httpx.get(f"{url}{path}", headers=headers, params=params, timeout=30)


def _report(dsn: str, settings, week: Week) -> None:
    run_weekly_reports(JobContext(dsn, settings, "test"), orgs=[week.org_id], week=week.start)


def test_members_read_their_reports_and_nobody_else(reports_url, dsn, org, week, llm_off):
    _report(dsn, llm_off, week)
    with connect(dsn, autocommit=True) as conn:  # an older week too, to page through
        conn.execute("insert into public.reports (org_id, period_start, period_end, headline, narrative, method,"
                     " grounded, fallback_reason, evidence) values (%s, '2020-01-06T00:00Z', '2020-01-13T00:00Z',"
                     " 'old', 'old', 'template', true, 'llm_off', '{}')", (org.id,))
    for role in ("owner", "admin", "member"):  # their roles read usage, anomalies, budgets, recommendations
        page = _get(reports_url, "/reports", org, role, org_id=org.id)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["meta"] == {"limit": 20, "offset": 0, "total": 2}
        assert [r["period_start"][:10] for r in body["data"]] == [str(week.start), "2020-01-06"]
        assert "evidence" not in body["data"][0] and body["data"][0]["method"] == "template"
    second = _get(reports_url, "/reports", org, limit=1, offset=1, org_id=org.id).json()
    assert [r["headline"] for r in second["data"]] == ["old"] and second["meta"]["offset"] == 1

    newest = body["data"][0]
    for role in ("owner", "admin"):
        one = _get(reports_url, f"/reports/{newest['id']}", org, role)
        assert one.status_code == 200 and one.json()["data"]["evidence"]["spend"]["this_week_usd"] > 0
        assert one.json()["data"]["headline"] == newest["headline"]
        assert "anomalies" in one.json()["data"]["evidence"]

    # a viewer's role reads no anomalies, budgets or recommendations, which a report restates: refused,
    # by name, for the organization and for all of theirs, and the report itself is not found
    for params in ({"org_id": org.id}, {}):
        refused = _get(reports_url, "/reports", org, "viewer", **params)
        assert refused.status_code == 403 and "anomalies.read" in refused.json()["message"], refused.text
    assert _get(reports_url, f"/reports/{newest['id']}", org, "viewer").status_code == 404

    # an outsider: refused for the organization, sees no report, and cannot open one
    assert _get(reports_url, "/reports", org, "outsider", org_id=org.id).status_code == 403
    assert _get(reports_url, f"/reports/{newest['id']}", org, "outsider").status_code == 404
    assert _get(reports_url, f"/reports/{uuid.uuid4()}", org).status_code == 404
    assert _get(reports_url, "/reports", org, None).status_code == 401


def test_bad_parameters_are_refused_by_name(reports_url, org):
    for params, field in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"offset": -1}, "offset"),
                          ({"org_id": "nope"}, "org_id"), ({"page": 2}, "page"), ({"limit": "x"}, "limit")):
        r = _get(reports_url, "/reports", org, **params)
        assert r.status_code == 422 and field in r.text, (params, r.text)
    r = _get(reports_url, "/reports/not-a-uuid", org)
    assert r.status_code == 422 and "report_id" in r.text


def test_reports_go_to_channels_marked_for_them(reports_url, dsn, org, week, llm_off, receiver, delivery_settings):
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    channels = [{"type": "webhook", "url": receiver.url("/weekly"), "secret": secret, "reports": True},
                {"type": "webhook", "url": receiver.url("/alerts-only"), "secret": secret}]
    rule = httpx.post(f"{reports_url}/alerts", headers=org.auth("admin"), timeout=30, json={
        "org_id": org.id, "name": "spend", "type": "spend_spike", "channels": channels})
    assert rule.status_code == 201, rule.text
    assert [c["reports"] for c in rule.json()["data"]["channels"]] == [True, False]
    # PagerDuty pages people: a report flag there is refused, naming the field
    refused = httpx.post(f"{reports_url}/alerts", headers=org.auth("admin"), timeout=30, json={
        "org_id": org.id, "name": "pd", "type": "spend_spike",
        "channels": [{"type": "pagerduty", "routing_key": "abc123", "reports": True}]})
    assert refused.status_code == 422 and "channels.0" in refused.text and "reports" in refused.text, refused.text

    _report(dsn, llm_off, week)
    stats = deliver_due(dsn, delivery_settings, "test-reports", time_budget=10, org_id=org.id)
    assert stats.delivered == 2  # the owners' and admins' email, and the marked webhook
    [hook] = receiver.received("/weekly")
    assert receiver.received("/alerts-only") == [] and hook.signed_by(secret)
    body = hook.json
    assert body["type"] == "report.weekly" and body["data"]["organization_id"] == org.id
    with connect(dsn) as conn:
        stored = conn.execute("select headline, evidence from public.reports where org_id = %s", (org.id,)).fetchone()
    assert body["data"]["headline"] == stored["headline"] and body["data"]["evidence"] == stored["evidence"]
