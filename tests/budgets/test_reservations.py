"""Strict reservations (POST /budget/reserve), their commit by the reporting event, the TTL sweep, and
eventual checks (POST /budget/check), over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from org_fixtures import add_usage
from tokentra_core.db import connect

# gpt-4o: $2.50 per million input tokens, $10 per million output: 16,000 in + 1,000 out = $0.05 exactly.
CALL = {"provider": "openai", "model": "gpt-4o", "input_tokens": 16_000, "max_tokens": 1_000}


def hard_budget(dsn: str, org_id: str, amount: str = "1.00", **cols) -> str:
    row = {"org_id": org_id, "name": "hard", "amount": amount, "period": "daily", "hard_limit": True, **cols}
    with connect(dsn, autocommit=True) as conn:
        return str(
            conn.execute(
                f"insert into public.budgets ({', '.join(row)}) values "
                f"({', '.join(['%s'] * len(row))}) returning id",
                list(row.values()),
            ).fetchone()["id"]
        )


def post(url: str, key: str, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def holds(dsn: str, budget_id: str) -> Decimal:
    with connect(dsn) as conn:
        return conn.execute(
            "select coalesce(sum(amount_usd), 0) as s from private.budget_holds where budget_id = %s",
            (budget_id,),
        ).fetchone()["s"]


def test_a_one_dollar_hard_budget_admits_at_most_twenty_of_100_concurrent_five_cent_calls(
    functions_url, org, dsn
):
    b = hard_budget(dsn, org.id)
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: post(functions_url, org.key, "/budget/reserve", CALL), range(100)))
    assert all(r.status_code == 200 for r in answers), {r.status_code for r in answers}
    bodies = [r.json() for r in answers]
    admitted = [x for x in bodies if x["allowed"]]
    assert len(admitted) == 20
    assert all(Decimal(x["amount"]) == Decimal("0.05") for x in bodies)
    assert all(x["budget_id"] == b for x in bodies)
    assert len({x["reservation_id"] for x in admitted}) == 20
    assert holds(dsn, b) == Decimal("1.00")  # committed (0) + reserved never exceeds the limit


def test_the_reporting_event_commits_its_reservation_once(functions_url, org, dsn):
    b = hard_budget(dsn, org.id)
    res = post(functions_url, org.key, "/budget/reserve", CALL).json()
    assert res["allowed"] and Decimal(res["remaining"]) == Decimal("0.95")
    event = {
        "request_id": str(uuid.uuid4()),
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 16_000,
        "output_tokens": 200,
        "timestamp": datetime.now(UTC).isoformat(),
        "reservation_id": res["reservation_id"],
    }
    for _ in range(3):  # the SDK retrying the same event
        r = post(functions_url, org.key, "/ingest", {"events": [event]})
        assert r.status_code == 200
    with connect(dsn) as conn:
        row = conn.execute(
            "select status, actual_cost_usd, request_id from private.budget_reservations where id = %s",
            (res["reservation_id"],),
        ).fetchone()
    assert (row["status"], row["request_id"]) == ("committed", event["request_id"])
    assert row["actual_cost_usd"] == Decimal("0.042")  # 16k in at $2.50/M + 200 out at $10/M
    assert holds(dsn, b) == 0
    # the actual cost now counts through the rollups: $1 - $0.042 is left, not $0.95
    again = post(functions_url, org.key, "/budget/reserve", CALL).json()
    assert Decimal(again["remaining"]) == Decimal("1.00") - Decimal("0.042") - Decimal("0.05")


def test_a_process_killed_between_reserve_and_report_leaves_a_reservation_the_sweep_releases(
    functions_url, org, dsn
):
    b = hard_budget(dsn, org.id, amount="0.10")
    script = (
        "import httpx, os, signal, sys; "
        "r = httpx.post(sys.argv[1] + '/budget/reserve', json={'provider': 'openai', 'model': 'gpt-4o', "
        "'input_tokens': 16000, 'max_tokens': 1000}, headers={'Authorization': 'Bearer ' + sys.argv[2]}); "
        "print(r.json()['reservation_id'], flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, functions_url, org.key],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert out.returncode == -9
    rid = out.stdout.strip()
    assert holds(dsn, b) == Decimal("0.05")
    with connect(dsn, autocommit=True) as conn:
        # Time passes: the TTL runs out (back-dated rather than slept through).
        conn.execute(
            "update private.budget_reservations set expires_at = now() - interval '1 second' where id = %s",
            (rid,),
        )
        conn.execute(
            "update private.budget_holds set expires_at = now() - interval '1 second' "
            "where reservation_id = %s",
            (rid,),
        )
        swept = conn.execute("select private.sweep_budget_reservations() as n").fetchone()["n"]
        row = conn.execute("select status from private.budget_reservations where id = %s", (rid,)).fetchone()
    assert swept >= 1 and row["status"] == "expired"
    assert holds(dsn, b) == 0


def test_reserve_without_max_tokens_holds_the_models_output_limit(functions_url, org, dsn):
    hard_budget(dsn, org.id, amount="1000")
    r = post(
        functions_url,
        org.key,
        "/budget/reserve",
        {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1000},
    ).json()
    small = post(
        functions_url,
        org.key,
        "/budget/reserve",
        {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 1000, "max_tokens": 10},
    ).json()
    assert Decimal(r["amount"]) > 100 * Decimal(small["amount"])


def test_unknown_models_are_reserved_at_the_conservative_price(functions_url, org, dsn):
    hard_budget(dsn, org.id, amount="1000")
    r = post(
        functions_url,
        org.key,
        "/budget/reserve",
        {"provider": "openai", "model": "not-a-model-yet", "input_tokens": 1_000_000, "max_tokens": 1},
    ).json()
    with connect(dsn) as conn:
        dearest = conn.execute("select input_mtok from private.conservative_mtok('openai')").fetchone()[
            "input_mtok"
        ]
    assert Decimal(r["amount"]) >= dearest > 0


def test_no_covering_hard_budget_allows_without_a_reservation(functions_url, org, dsn):
    hard_budget(dsn, org.id, scope_type="feature", scope_id="search")
    r = post(functions_url, org.key, "/budget/reserve", {**CALL, "feature": "chat"}).json()
    assert (r["allowed"], r["reservation_id"], r["budget_id"]) == (True, None, None)
    r = post(functions_url, org.key, "/budget/reserve", {**CALL, "feature": "search"}).json()
    assert r["allowed"] and r["reservation_id"]


def test_eventual_check_answers_per_attribution(functions_url, org, dsn):
    team_budget = hard_budget(dsn, org.id, amount="1.00", scope_type="feature", scope_id="search")
    soft = hard_budget(dsn, org.id, amount="0.50", hard_limit=False, scope_type="feature", scope_id="chat")
    add_usage(dsn, org.id, "1.20", feature="search")
    add_usage(dsn, org.id, "0.90", feature="chat")
    r = post(functions_url, org.key, "/budget/check", {"feature": "search"}).json()
    assert (r["allowed"], r["budget_id"], Decimal(r["remaining"]), r["status"]) == (
        False,
        team_budget,
        0,
        "exceeded",
    )
    r = post(functions_url, org.key, "/budget/check", {"feature": "chat", "model": "gpt-4o"}).json()
    assert (r["allowed"], r["budget_id"]) == (True, soft)  # soft budgets warn, never block
    r = post(functions_url, org.key, "/budget/check", {}).json()
    assert (r["allowed"], r["budget_id"], r["remaining"]) == (True, None, None)


def test_enforcement_endpoints_refuse_bad_keys_and_bad_bodies(functions_url, org):
    assert post(functions_url, "tt_live_" + "x" * 43, "/budget/reserve", CALL).status_code == 401
    r = post(functions_url, org.key, "/budget/reserve", {**CALL, "input_tokens": -1})
    assert r.status_code == 422 and r.json()["message"].startswith("input_tokens:")
    r = post(functions_url, org.key, "/budget/reserve", {"model": "gpt-4o"})
    assert r.status_code == 422 and r.json()["message"].startswith("provider:")
