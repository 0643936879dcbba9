"""The main job runs end to end: traffic through the SDK and the ingest function, then the report; with
and without LLM provider keys (the keys pointing at the scripted provider servers: only env vars differ)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tokentra_core.db import connect
from tokentra_dev.traffic import month_of_traffic, spike_window

# Whatever the machine has set, each test decides which LLM variables the demo sees.
LLM_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "TOKENTRA_LLM_STRATEGY",
            "TOKENTRA_LLM_INGEST_URL")


def run_demo(days: int, columns: int = 120, **llm_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in LLM_VARS}
    out = subprocess.run([sys.executable, "-m", "tokentra_cli.cli", "demo", "--days", str(days)],
                         capture_output=True, text=True, timeout=600,
                         env={**env, **llm_env, "COLUMNS": str(columns)})
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_demo_sends_traffic_and_reports_spend(dsn):
    """With two days of traffic: the spend report, then what the intelligence jobs make of it."""
    text = run_demo(2).stdout
    sent = int(re.search(r"SDK delivered ([\d,]+) events", text)[1].replace(",", ""))
    total = re.search(r"([\d,]+) requests, \$([\d,.]+) spent \((\d+) unpriced\)", text)
    assert sent > 1000 and int(total[1].replace(",", "")) == sent
    assert float(total[2].replace(",", "")) > 0 and total[3] == "0"
    for heading in ("Spend by model", "Spend by team", "Spend by feature", "Top end users", "Daily spend"):
        assert heading in text
    # the key is printed once for the operator, and never its hash or anything else about it
    assert len(re.findall(r"tt_live_[A-Za-z0-9_-]{43}", text)) == 1
    check_intelligence(text, dsn)
    check_management(text, dsn)
    check_routing(text, dsn)
    check_reconciliation(text, dsn)


def check_routing(text: str, dsn: str) -> None:
    """Routing ran on part of the traffic and the savings it prints are the usage rows'."""
    org = re.search(r"Demo org\s+([0-9a-f-]{36})", text)[1]
    assert "Routing: on for part of the traffic" in text
    with connect(dsn) as conn:
        arms = {r["routing_arm"]: r for r in conn.execute(
            "select * from private.routing_savings(%s, now() - interval '1 day')", (org,))}
    assert {"treatment", "control"} <= set(arms)
    assert arms["treatment"]["savings_usd"] > 0 and arms["control"]["savings_usd"] == 0
    assert re.search(r"treatment\s+│\s+" + f"{arms['treatment']['requests']:,}", text)


def check_reconciliation(text: str, dsn: str) -> None:
    """A local server billed the month with gaps planted; the section's totals are the reconciliation's rows
    and the planted kinds of gap are named."""
    org = re.search(r"Demo org\s+([0-9a-f-]{36})", text)[1]
    printed = re.search(r"tracked \$([\d,.-]+), billed \$([\d,.-]+), gap \$([\d,.-]+), of which unexplained", text)
    with connect(dsn) as conn:
        sums = conn.execute("select sum(tracked_cost_usd) as t, sum(billed_cost_usd) as b from "
                            "private.reconciliation_daily where org_id = %s", (org,)).fetchone()
    tracked, billed = (float(printed[i].replace(",", "")) for i in (1, 2))
    assert abs(tracked - float(sums["t"])) < 0.0001 and abs(billed - float(sums["b"])) < 0.0001
    assert billed > tracked  # the planted untracked traffic, fees and price rise
    for cause in ("untracked_traffic", "price_change", "tool_fees"):
        assert re.search(rf"{cause}\s+│\s+\$", text), cause


def check_management(text: str, dsn: str) -> None:
    """The list commands' view: the owner (an existing user joins each new demo organization) and the
    teams, every one of them a row created from the SDK's tags."""
    org = re.search(r"Demo org\s+([0-9a-f-]{36})", text)[1]
    assert "member demo-owner@example.com (owner)" in text
    listed = re.search(r"teams, all created from the SDK's tags: (.+)", text)[1].split(", ")
    with connect(dsn) as conn:
        tagged = {r["team"] for r in conn.execute(
            "select distinct team from public.usage_records where org_id = %s and team is not null", (org,))}
    assert tagged and set(listed) == tagged


def _dollars(s: str) -> float:
    return float(s.replace(",", ""))


def check_intelligence(text: str, dsn: str) -> None:
    """The recommendations, anomalies and forecast sections appear, and what they print is true."""
    org = re.search(r"Demo org\s+([0-9a-f-]{36})", text)[1]
    with connect(dsn) as conn:
        # the routing section, later in the run, applies the biggest routing recommendation on purpose
        recs = conn.execute("select category, estimated_monthly_savings::float8 as s from public.recommendations "
                            "where org_id = %s and status in ('open', 'applied')", (org,)).fetchall()
        forecast = conn.execute("select forecast::float8 as f, lower_80::float8 as l80, upper_80::float8 as u80, "
                                "lower_95::float8 as l95, upper_95::float8 as u95, spent_to_date::float8 as s "
                                "from public.spend_forecasts where org_id = %s and budget_id is null",
                                (org,)).fetchone()
    found = re.search(r"Recommendations: (\d+) found, \$([\d,.]+) a month in estimated savings", text)
    if found:
        assert int(found[1]) == len(recs) > 0
        assert all(r["s"] > 0 for r in recs)
        assert abs(_dollars(found[2]) - sum(r["s"] for r in recs)) < 0.01
        for r in recs:
            assert r["category"] in text
    else:
        assert "Recommendations: none found" in text and not recs
    # Two days hold no day 24: the demo says why there is no spike rather than inventing one.
    assert "Anomalies: none found (only 2 days of traffic, and the planted spike is on day 24)" in text
    month_end = re.search(r"Month-end forecast \(\w+ \d{4}\): \$([\d,.]+)\s+80% interval \$([\d,.]+)–\$([\d,.]+), "
                          r"95% interval \$([\d,.]+)–\$([\d,.]+)\s+spent so far \$([\d,.]+)", text)
    assert month_end, "the month-end forecast is printed"
    f, l80, u80, l95, u95, spent = (_dollars(v) for v in month_end.groups())
    assert forecast and abs(f - forecast["f"]) < 0.01 and abs(spent - forecast["s"]) < 0.01
    assert l95 <= l80 <= f <= u80 <= u95 and f >= spent >= 0
    assert "short-history fallback" in text and "Daily spend and forecast" in text
    # No key: LLM review says it is off and how to turn it on; two days hold no spike to explain.
    assert "LLM review is off" in text and "OPENAI_API_KEY" in text
    assert "Anomaly explanation: none (no anomaly was open when the explanations job ran)." in text


# The smallest traffic holding the planted spike (day 24, see traffic.SPIKE_DAY) and the days of
# history before it that the hourly anomaly baseline needs.
SPIKE_DAYS = 25


def _flat(text: str) -> str:
    return " ".join(text.split())


def _explanation(dsn: str, org: str, text: str) -> dict:
    """The printed explanation of the planted spike (the whole organization's cost), and the stored one it
    must be: the incident is the planted hours, 03:00-06:00 UTC on a Thursday (the traffic, and so what the
    detector finds in it, is the same whatever the day and hour the demo runs at)."""
    head = re.search(r"Explanation of the cost spike of the organization, (Thu \d{2} \w{3}) (03):00–06:00 UTC "
                     r"\(source: (\w+), ", text)
    assert head, "the planted spike is explained"
    with connect(dsn) as conn:
        x = conn.execute(
            "select x.*, to_char(a.window_start at time zone 'UTC', 'Dy DD Mon') as day from public.explanations x"
            " join public.anomalies a on a.id = x.anomaly_id where x.org_id = %s and a.metric = 'cost'"
            " and a.kind = 'spike' and a.dimension = 'organization' and a.grain = 'hour'"
            " and extract(hour from a.window_start at time zone 'UTC') = %s", (org, int(head[2]))).fetchone()
    assert x and x["day"] == head[1] and x["source"] == head[3]
    assert _flat(x["headline"]) in _flat(text) and _flat(x["body"]) in _flat(text)
    change = x["evidence"]["usage"]["change"]
    assert f"+${change['cost_usd']:,.4f} ({change['cost_pct']:+g}%)" in text  # the evidence figures shown
    return x


def test_demo_without_keys_says_llm_is_off_and_shows_the_template_explanation(dsn):
    """No provider key: the off message with how to turn it on, no review, and the spike explained by the
    template, labelled as such; no AI spend."""
    text = run_demo(SPIKE_DAYS, columns=250).stdout
    org = re.search(r"Demo org\s+([0-9a-f-]{36})", text)[1]
    assert "LLM review is off: no provider key is configured" in text
    for how in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "strategy.toml",
                "TOKENTRA_LLM_STRATEGY"):
        assert how in text
    pending = re.search(r"(\d+) recommendations qualify; the first would be \"(.+?)\" \(\$([\d,.]+) a month; "
                        r"triggers: ([a-z_, ]+)\)\. None is reviewed while LLM review is off\.", text)
    with connect(dsn) as conn:
        # Open or applied: the routing section, after the LLM one, applies a routing recommendation.
        recs = conn.execute("select title, estimated_monthly_savings::float8 as s from public.recommendations"
                            " where org_id = %s and status in ('open', 'applied') and estimated_monthly_savings >= 10"
                            " order by estimated_monthly_savings desc", (org,)).fetchall()
        runs = conn.execute("select count(*) as n from public.consensus_runs where org_id = %s", (org,)).fetchone()
    # Enterprise plan: every recommendation over the $10 floor qualifies, the biggest first.
    assert pending and int(pending[1]) == len(recs) > 0 and pending[2] == recs[0]["title"]
    assert "enterprise_plan" in pending[4].split(", ") and runs["n"] == 0
    x = _explanation(dsn, org, text)
    assert x["source"] == "template" and x["fallback_reason"] == "llm_off" and x["llm_calls"] == 0
    assert "a deterministic text built from the evidence; llm_off: no provider key" in text
    assert re.search(r"AI spend on the demo organization's behalf in \w+ \d{4}: \$0\.0000 in 0 calls, of its "
                     r"\$50\.00 monthly cap", text)


def _segments(text: str) -> list[str]:
    """The text after each "Round N" heading, up to the next one."""
    return re.split(r"Round \d+: consensus score", text)[1:]


def test_demo_with_keys_shows_the_consensus_record_and_an_llm_explanation(dsn):
    """Keys set (the real clients talk to the scripted provider servers): the biggest recommendation's review
    round by round as stored, its outcome and cost, the spike explained by the LLM, and the AI spend."""
    from secret_registry import SECRETS_SEEN
    from tokentra_dev.bench_consensus import role_of
    from tokentra_dev.testing.llm_scripts import panel_and_writer
    from tokentra_dev.testing.llm_servers import LLMServers

    with LLMServers(panel_and_writer()) as servers:
        env = servers.env()
        SECRETS_SEEN.extend([env["OPENAI_API_KEY"], env["ANTHROPIC_API_KEY"]])
        out = run_demo(SPIKE_DAYS, columns=250, **env)
        seen = list(servers.seen)
    text = out.stdout
    assert env["OPENAI_API_KEY"] not in text + out.stderr and env["ANTHROPIC_API_KEY"] not in text + out.stderr
    org = re.search(r"Demo org\s+([0-9a-f-]{36})", text)[1]
    assert "LLM review: on (openai, anthropic key configured)" in text
    with connect(dsn) as conn:
        biggest = conn.execute("select id, title from public.recommendations where org_id = %s"
                               " order by estimated_monthly_savings desc limit 1", (org,)).fetchone()
        record = conn.execute("select public.recommendation_consensus(%s) as r", (biggest["id"],)).fetchone()["r"]
        runs = conn.execute("select count(*) as n from public.consensus_runs where org_id = %s", (org,)).fetchone()
        spend = conn.execute("select spend_usd::float8 as usd, calls from public.ai_spend(%s)", (org,)).fetchone()
    run = record["runs"][0]
    assert runs["n"] == 1 and run["status"] == "completed" and "enterprise_plan" in run["triggers"]
    assert f'Consensus review of the biggest recommendation: "{biggest["title"]}"' in text
    segments = _segments(text)
    assert len(segments) == run["round_count"] == len(run["rounds"]) > 0
    for rnd, segment in zip(run["rounds"], segments, strict=True):
        assert segment.startswith(f" {rnd['score']:.2f} ")
        for p in rnd["positions"]:
            row = re.search(rf"│ {p['role']}\s+│ {re.escape(p['provider'] + ':' + p['model'])}\s+│ {p['verdict']}\s+│"
                            rf"\s+\$([\d,.]+) │\s+(\d+)% │", segment)
            assert row, f"round {rnd['round']}: the {p['role']}'s position is shown"
            assert row[1] == f"{p['adjusted_monthly_savings']:,.2f}" and int(row[2]) == round(100 * p["confidence"])
    final = re.search(r"Final verdict \((\w+):([\w.-]+)\): (\w+), confidence (\d+)%, final score ([\d.]+); adopts the "
                      r"(\w+)'s estimate of \$([\d,.]+) a month", text)
    assert final and (final[3], int(final[4]), final[6]) == (run["verdict"], round(100 * run["confidence"]),
                                                              run["savings_source"])
    assert final[7] == f"{run['adjusted_monthly_savings']:,.2f}" and _flat(run["description"]) in _flat(text)
    assert all(f"caveat: {c}" in text for c in run["caveats"]) and run["caveats"]
    assert all(f"dissent ({d['role']}): {d['summary']}" in text for d in run["dissent"])
    assert ("dissent: none" in text) == (not run["dissent"])
    cost = re.search(r"Review cost: (\d+) rounds, (\d+) calls, ([\d,]+) input \+ ([\d,]+) output tokens, "
                     r"\$([\d.]+)", text)
    assert cost and (int(cost[1]), int(cost[2])) == (run["round_count"], run["call_count"])
    assert (cost[3], cost[4], cost[5]) == (f"{run['input_tokens']:,}", f"{run['output_tokens']:,}",
                                           f"{run['cost_usd']:.4f}")
    # Every call of the review reached the providers, and is the one stored.
    assert sum(role_of(s) != "unknown" for s in seen) == run["call_count"] == len(run["calls"])
    x = _explanation(dsn, org, text)
    assert x["source"] == "llm" and x["rejected"] == [] and x["llm_calls"] == 1
    assert f"(source: llm, written by {x['provider']}:{x['model']} from the evidence" in text
    # Every call made on the demo's behalf is recorded as the internal organization's usage, and shown.
    assert spend["calls"] == len(seen) and spend["usd"] > 0
    assert re.search(rf"AI spend on the demo organization's behalf in \w+ \d{{4}}: \${spend['usd']:,.4f} in "
                     rf"{spend['calls']} calls, of its \$50\.00 monthly cap", text)


def _hours(events: list[dict]) -> list[tuple]:
    """The events with their time as an offset from the traffic's first hour: what the detectors see."""
    first = min(datetime.fromisoformat(e["timestamp"]) for e in events).replace(minute=0, second=0, microsecond=0)
    return [(datetime.fromisoformat(e["timestamp"]) - first, e["metadata"]["feature"], e["model"],
             e["input_tokens"], e["output_tokens"], e["status"]) for e in events]


@functools.cache
def _reference() -> list[tuple]:
    """The hours up to the spike's end of the traffic generated on Thu 03 Dec 2026 at 22:26 UTC."""
    return _hours([e for e in month_of_traffic(days=SPIKE_DAYS, end=datetime(2026, 12, 3, 22, 26, tzinfo=UTC))
                   if datetime.fromisoformat(e["timestamp"]) < datetime(2026, 11, 26, 6, tzinfo=UTC)])


# Every hour of the day, on every day of the week.
@pytest.mark.parametrize("hour", range(24))
def test_the_planted_spike_and_its_history_are_the_same_whatever_the_day_and_hour(hour: int):
    """The demo runs at any day and hour: the spike is three whole hours inside the traffic (it once split
    across two dates), and the hours up to it are the same, only moved by whole weeks (the detector once
    opened the incident at 03:00, 04:00 or 05:00 depending on the hour the traffic was generated at)."""
    end = datetime(2026, 11, 23 + hour % 7, hour, 59, 59, tzinfo=UTC)
    start, stop = spike_window(SPIKE_DAYS, end)
    assert (start.hour, start.strftime("%a"), stop - start) == (3, "Thu", timedelta(hours=3))
    assert stop <= end.replace(minute=0, second=0)
    events = list(month_of_traffic(days=SPIKE_DAYS, end=end))
    first = min(datetime.fromisoformat(e["timestamp"]) for e in events)
    assert first.strftime("%a %H") == "Mon 00" and first <= end - timedelta(days=SPIKE_DAYS)
    assert max(datetime.fromisoformat(e["timestamp"]) for e in events) < end.replace(minute=0, second=0)
    until_spike = [e for e in events if datetime.fromisoformat(e["timestamp"]) < stop]
    assert _hours(until_spike) == _reference()
    summarize = [datetime.fromisoformat(e["timestamp"]) for e in events if e["metadata"]["feature"] == "summarize"]
    during = sum(start <= t < stop for t in summarize)
    day_before = sum(start - timedelta(days=1) <= t < stop - timedelta(days=1) for t in summarize)
    assert during > 3 * max(day_before, 1), (during, day_before)
