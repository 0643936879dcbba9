"""Reconciliation end to end: a generated month whose truth is known (tracked calls through the real ingest,
the providers' bill on the local admin-report servers), the real sync job, the reconciliation step, and then
every planted gap named with its amount; the endpoint's validation and tenancy; the drift alert through the
alerts job and its outbox; the re-price that closes a price gap. Seeds vary per run: the rules are for the
pattern, not for one month."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from org_fixtures import Org, api, make_org
from tokentra_core.db import connect
from tokentra_core.secrets import store_provider_connection
from tokentra_core.settings import get_settings
from tokentra_dev.recon_world import World, generate, ingest, world_prices
from tokentra_dev.testing.provider_admin_servers import (
    ANTHROPIC_ADMIN_KEY,
    OPENAI_ADMIN_KEY,
    ProviderAdminServer,
)
from tokentra_functions.reconciliation import ReconciliationResponse
from tokentra_worker.gap_causes import run_gap_causes
from tokentra_worker.jobs import JobContext
from tokentra_worker.provider_sync import run_provider_sync

SEED = int(os.environ.get("TOKENTRA_RECON_SEED") or random.SystemRandom().randrange(10**6))


def _connect(dsn: str, org: Org, server: ProviderAdminServer) -> None:
    with connect(dsn, autocommit=True) as conn:
        store_provider_connection(conn, org.id, "openai", "sk-inference-openai-0000", admin_key=OPENAI_ADMIN_KEY,
                                  base_url=server.openai_base_url)
        store_provider_connection(conn, org.id, "anthropic", "sk-ant-inference-0000", admin_key=ANTHROPIC_ADMIN_KEY,
                                  base_url=server.anthropic_base_url)


@pytest.fixture(scope="module")
def reconciled(dsn: str, functions_url: str) -> Iterator[tuple[Org, World]]:
    """A fresh organization whose generated month is tracked, billed, synced and reconciled (once for this
    module: the tests below read it, the last one re-prices it)."""
    now = datetime.now(UTC)
    world = generate(SEED, now, world_prices(dsn, now.date() - timedelta(days=5)), days=8, scale=0.5)
    org = make_org(dsn)
    with ProviderAdminServer(world.ledger) as server:
        _connect(dsn, org, server)
        ingest(world.calls, functions_url, org.key)
        run_provider_sync(dsn, now=now, orgs=[org.id])
    run_gap_causes(dsn, orgs=[org.id])
    yield org, world


def _attributed(dsn: str, org_id: str) -> dict[tuple[str, str, str | None, Any], Decimal]:
    with connect(dsn) as conn:
        rows = conn.execute("select cause, provider, canonical_model, day, amount_usd "
                            "from private.reconciliation_causes where org_id = %s", (org_id,)).fetchall()
    return {(r["cause"], r["provider"], r["canonical_model"], r["day"]): r["amount_usd"] for r in rows}


def _assert_named_by_cause(planted: dict[tuple[str, str, str | None, Any], Decimal],
                           got: dict[tuple[str, str, str | None, Any], Decimal]) -> None:
    """Every planted cause is named, with nearly all of its amount on the right model and day: alone on its
    model, and apart where two causes share a model and days (timing beside a batch discount or a price
    change, untracked traffic beside a batch discount), each held to its own amount."""
    causes_of: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for cause, provider, model, _ in planted:
        causes_of[(provider, model)].add(cause)
    per: dict[tuple[str, bool], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for key, amount in planted.items():
        cause, provider, model, _ = key
        totals = per[(cause, len(causes_of[(provider, model)]) > 1)]
        same = got.get(key, Decimal(0))
        totals[0] += abs(amount)
        totals[1] += min(abs(amount), abs(same)) if same * amount > 0 else Decimal(0)
    for (cause, shared), (total, matched) in per.items():
        if total >= Decimal("0.05"):
            assert matched >= Decimal("0.8") * total, (SEED, cause, "beside other causes" if shared else "alone",
                                                       total, matched)


def test_every_planted_gap_is_named_with_its_amount(reconciled: tuple[Org, World], dsn: str) -> None:
    org, world = reconciled
    got = _attributed(dsn, org.id)
    planted = world.planted_by()
    assert planted, f"seed {SEED}: the world planted nothing"
    per_cause: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for key, amount in planted.items():
        per_cause[key[0]][0] += abs(amount)
        same = got.get(key, Decimal(0))
        per_cause[key[0]][1] += min(abs(amount), abs(same)) if same * amount > 0 else Decimal(0)
    _assert_named_by_cause(planted, got)
    total = sum(t for t, _ in per_cause.values())
    matched = sum(m for _, m in per_cause.values())
    assert matched >= Decimal("0.9") * total, (SEED, total, matched)

    with connect(dsn) as conn:
        sums = conn.execute(
            "select sum(d.billed_cost_usd) as billed, sum(d.tracked_cost_usd) as tracked, "
            "(select coalesce(sum(abs(amount_usd)), 0) from private.reconciliation_causes "
            " where org_id = %(o)s and cause = 'unexplained') as unexplained, "
            "(select count(*) from private.reconciliation_daily x where x.org_id = %(o)s and x.gap_usd <> "
            " (select coalesce(sum(c.amount_usd), 0) from private.reconciliation_causes c where c.org_id = x.org_id "
            "   and c.day = x.day and c.provider = x.provider "
            "   and c.canonical_model is not distinct from x.canonical_model)) as unbalanced "
            "from private.reconciliation_daily d where d.org_id = %(o)s", {"o": org.id}).fetchone()
    # both sides came through whole: what the servers billed is what the sync stored
    assert abs(sums["billed"] - world.billed_usd) < Decimal("0.000001"), (SEED, sums["billed"], world.billed_usd)
    assert sums["unbalanced"] == 0
    assert sums["unexplained"] <= Decimal("0.01") * sums["billed"], (SEED, sums)
    # untracked traffic is named by the key it came through
    with connect(dsn) as conn:
        named = {(r["provider"], r["canonical_model"], r["day"]): {n["id"] for n in r["details"].get("names", [])}
                 for r in conn.execute("select provider, canonical_model, day, details "
                                       "from private.reconciliation_causes "
                                       "where org_id = %s and cause = 'untracked_traffic'", (org.id,)).fetchall()}
    shadow: dict[tuple[str, str | None, Any], set[str]] = defaultdict(set)
    for p in world.planted:
        cell = (p.provider, p.canonical_model, p.day)
        if p.cause == "untracked_traffic" and planted[(p.cause, *cell)] >= Decimal("0.01"):
            shadow[cell].add(p.what)
    for cell, keys in shadow.items():
        assert named.get(cell, set()) & keys, (SEED, cell, named.get(cell), keys)


def test_the_endpoint_reads_only_your_organizations(reconciled: tuple[Org, World], functions_url: str) -> None:
    org, world = reconciled
    params = {"org_id": org.id, "start_date": world.first_day.isoformat(), "end_date": world.last_day.isoformat()}
    r = api(functions_url, "GET", "/reconciliation", org.auth("viewer"), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    ReconciliationResponse.model_validate(body)  # the answer is what the OpenAPI document says
    assert body["data"] and {c["cause"] for c in body["meta"]["causes"]} >= {"untracked_traffic", "unexplained"}
    assert len(body["meta"]["series"]) == (world.last_day - world.first_day).days + 1
    for row in body["data"]:
        assert abs(sum(row["causes"].values()) - row["gap"]) < 1e-6
    by_model = api(functions_url, "GET", "/reconciliation", org.auth("member"),
                   params={**params, "group_by": "provider,model"}).json()["data"]
    assert all("date" not in row for row in by_model)
    assert abs(sum(row["gap"] for row in by_model) - body["meta"]["totals"]["gap"]) < 1e-6

    # another organization's admin, an outsider, and no token at all
    other = make_org(get_settings().dsn)
    assert api(functions_url, "GET", "/reconciliation", other.auth("admin"), params=params).status_code == 403
    assert api(functions_url, "GET", "/reconciliation", org.auth("outsider"), params=params).status_code == 403
    assert api(functions_url, "GET", "/reconciliation", {}, params=params).status_code == 401
    mine = api(functions_url, "GET", "/reconciliation", other.auth("admin"),
               params={k: v for k, v in params.items() if k != "org_id"})
    assert mine.status_code == 200 and mine.json()["data"] == []

    # bad input names its field
    for bad, field in (({"end_date": "2026-13-01"}, "end_date"), ({"group_by": "day,colour"}, "group_by"),
                       ({"start_date": "2026-11-20", "end_date": "2026-11-01"}, "end_date"),
                       ({"provider": "mistral"}, "provider"), ({"surprise": "1"}, "surprise")):
        r = api(functions_url, "GET", "/reconciliation", org.auth("viewer"), params={**params, **bad})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (bad, r.text)


def test_drift_fires_an_alert_through_the_outbox(reconciled: tuple[Org, World], dsn: str) -> None:
    org, world = reconciled
    from tokentra_worker.alerts import run_alerts

    with connect(dsn, autocommit=True) as conn:
        rule = conn.execute(
            "insert into public.alert_rules (org_id, name, type, condition, channels) values "
            "(%s, 'bill drift', 'reconciliation_drift', %s, %s) returning id",
            (org.id, '{"threshold_pct": 0.01, "min_gap_usd": 0.01, "window_days": 31}',
             '[{"id": "6f1d1d7e-0000-4000-8000-000000000001", "type": "email", "to": ["ops@example.com"]}]'),
        ).fetchone()["id"]
    run_alerts(JobContext(dsn=dsn, settings=get_settings(), worker="test-recon"))
    with connect(dsn) as conn:
        events = conn.execute("select title, details from public.alert_events where rule_id = %s", (rule,)).fetchall()
        queued = conn.execute("select kind from private.alert_deliveries where rule_id = %s", (rule,)).fetchall()
    assert len(events) == 1 and events[0]["details"]["kind"] == "reconciliation_drift"
    assert Decimal(str(events[0]["details"]["billed_usd"])) > 0
    assert [q["kind"] for q in queued] == ["trigger"]


def test_reprice_from_the_bill_closes_the_price_gap(reconciled: tuple[Org, World], functions_url: str,
                                                    dsn: str) -> None:
    org, world = reconciled
    price = [p for p in world.planted if p.cause == "price_change"]
    if not price:
        pytest.skip(f"seed {SEED} planted no price change")
    provider, model = price[0].provider, price[0].canonical_model
    body = {"org_id": org.id, "provider": provider, "canonical_model": model,
            "start_date": world.first_day.isoformat(), "end_date": world.last_day.isoformat()}
    assert api(functions_url, "POST", "/reconciliation/reprice", org.auth("member"), json=body).status_code == 403
    before = sum(abs(v) for k, v in _attributed(dsn, org.id).items() if k[0] == "price_change" and k[2] == model)
    r = api(functions_url, "POST", "/reconciliation/reprice", org.auth("admin"), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["data"]["repriced"] > 0
    after = sum(abs(v) for k, v in _attributed(dsn, org.id).items() if k[0] == "price_change" and k[2] == model)
    assert before > 0 and after <= Decimal("0.01") * before, (SEED, before, after)
    # nothing left to re-price: the model's gap is no longer ours
    again = api(functions_url, "POST", "/reconciliation/reprice", org.auth("admin"), json=body)
    assert again.status_code == 422 and again.json()["field"] == "canonical_model"
