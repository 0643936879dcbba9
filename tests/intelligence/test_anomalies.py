"""The anomalies job on the real database, and GET /functions/v1/anomalies under RLS."""

from __future__ import annotations

from datetime import timedelta

import httpx
from series import hour_now, load_hours, seasonal_costs

from org_fixtures import Org, api
from tokentra_core.db import connect
from tokentra_worker._anomaly_model import detect
from tokentra_worker.anomalies import run_anomalies

HOURS = 14 * 24


def test_detector_finds_a_spike_and_a_shift_and_nothing_in_noise():
    x = seasonal_costs(HOURS, seed=1)
    assert detect(x, 24, None, direction="up") == []
    spiked = x.copy()
    spiked[200:202] *= 5
    found = detect(spiked, 24, None, direction="up")
    assert [(i.start, i.kind) for i in found] == [(200, "spike")]
    shifted = x.copy()
    shifted[250:] *= 2.5
    found = detect(shifted, 24, None, direction="up")
    assert len(found) == 1 and 249 <= found[0].start <= 251 and found[0].kind == "level_shift"


def _anomalies(dsn: str, org_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select * from public.anomalies where org_id = %s order by window_start", (org_id,)
        ).fetchall()


def test_job_opens_one_incident_per_spike_then_closes_it(
    dsn: str, org: Org, other_org: Org, functions_url: str
):
    now = hour_now()
    costs = seasonal_costs(HOURS, level=3.0, seed=2)
    costs[-3:] *= 8  # the last three hours: spend on feature summarize jumps
    load_hours(dsn, org.id, costs, now, feature="summarize", team="search")
    load_hours(dsn, other_org.id, seasonal_costs(HOURS, seed=3), now, feature="summarize")
    run_anomalies(dsn, now=now, orgs=[org.id, other_org.id])
    run_anomalies(dsn, now=now, orgs=[org.id, other_org.id])  # a rerun updates, never duplicates
    rows = [r for r in _anomalies(dsn, org.id) if r["metric"] == "cost" and r["grain"] == "hour"]
    assert {(r["dimension"], r["dimension_value"]) for r in rows} == {
        ("organization", None),
        ("feature", "summarize"),
        ("team", "search"),
        ("model", "gpt-4o-mini"),
    }
    for r in rows:
        assert r["status"] == "open" and r["window_start"] == now - timedelta(hours=3)
        assert float(r["actual_value"]) > 4 * float(r["expected_value"])
        assert float(r["money_involved"]) > 30 and r["severity"] in ("medium", "high", "critical")
    assert not [r for r in _anomalies(dsn, other_org.id) if r["metric"] == "cost"]

    # Through the API, as an admin (members have no anomalies.read): only this organization's anomalies.
    r = api(
        functions_url,
        "GET",
        "/anomalies",
        org.auth("admin"),
        params={"metric": "cost", "status": "open", "dimension": "feature"},
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data) == 1 and data[0]["dimension_value"] == "summarize" and data[0]["window_end"]
    assert (
        api(functions_url, "GET", "/anomalies", other_org.auth("admin"), params={"metric": "cost"}).json()[
            "data"
        ]
        == []
    )
    assert httpx.get(f"{functions_url}/anomalies", timeout=10).status_code == 401

    # Two normal hours later the incident is closed, not re-opened.
    load_hours(
        dsn,
        org.id,
        seasonal_costs(HOURS + 2, level=3.0, seed=9)[-2:],
        now + timedelta(hours=2),
        feature="summarize",
        team="search",
    )
    run_anomalies(dsn, now=now + timedelta(hours=2), orgs=[org.id])
    rows = [r for r in _anomalies(dsn, org.id) if r["metric"] == "cost" and r["grain"] == "hour"]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"closed"}


def test_anomaly_rule_raises_one_alert_event(dsn: str, org: Org):
    now = hour_now()
    costs = seasonal_costs(HOURS, level=3.0, seed=4)
    costs[-2:] *= 10
    load_hours(dsn, org.id, costs, now)
    with connect(dsn, autocommit=True) as conn:
        conn.execute(
            "insert into public.alert_rules (org_id, name, type, condition) values "
            '(%s, \'cost anomalies\', \'anomaly\', \'{"metric": "cost", "dimension": "organization"}\')',
            (org.id,),
        )
    run_anomalies(dsn, now=now, orgs=[org.id])
    run_anomalies(dsn, now=now, orgs=[org.id])
    with connect(dsn) as conn:
        events = conn.execute("select * from public.alert_events where org_id = %s", (org.id,)).fetchall()
    assert len(events) == 1 and events[0]["details"]["kind"] == "anomaly" and events[0]["status"] == "open"


def test_daily_series_and_error_rate(dsn: str, org: Org):
    now = hour_now()
    midnight = now.replace(hour=0)
    hours = 28 * 24
    costs = seasonal_costs(hours, level=2.0, seed=6)
    costs[-24:] *= 6  # the whole of yesterday (UTC) cost six times the usual
    load_hours(dsn, org.id, costs, midnight, feature="batch")
    # Today so far: a third of the calls of feature "flaky" fail.
    load_hours(dsn, org.id, seasonal_costs(hours, seed=7), now, feature="flaky")
    load_hours(dsn, org.id, seasonal_costs(3, seed=8), now, feature="flaky", status="error")
    run_anomalies(dsn, now=now, orgs=[org.id])
    rows = _anomalies(dsn, org.id)
    daily = [r for r in rows if r["grain"] == "day" and r["metric"] == "cost" and r["dimension"] == "feature"]
    assert [(r["dimension_value"], r["window_start"]) for r in daily] == [
        ("batch", midnight - timedelta(days=1))
    ]
    errors = [
        r
        for r in rows
        if r["metric"] == "error_rate" and r["dimension_value"] == "flaky" and r["grain"] == "hour"
    ]
    assert errors and errors[0]["status"] == "open" and float(errors[0]["actual_value"]) > 0.3
