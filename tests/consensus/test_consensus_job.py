"""The `consensus` worker job: off without keys, skips organizations at their AI cap, and every call it
makes is a usage row of the internal organization equal to the call stored in the run."""

from __future__ import annotations

import pytest
from consensus_fixtures import add_recommendation, position, rec_row, role_of, runs, set_cap, synthesis

from tokentra_core.db import connect
from tokentra_core.settings import Settings
from tokentra_dev.testing.llm_servers import Answer
from tokentra_worker.consensus import review_pending
from tokentra_worker.jobs import JOBS, JobContext


def test_with_llm_off_the_job_does_nothing_and_says_why(dsn, org, monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    rec = add_recommendation(dsn, org.id)
    before = rec_row(dsn, rec)
    ctx = JobContext(dsn=dsn, settings=Settings(), worker="test")
    said = JOBS["consensus"].run(ctx)
    assert said.startswith("LLM review is off") and "OPENAI_API_KEY" in said
    assert runs(dsn, rec) == [] and rec_row(dsn, rec) == before


async def test_an_organization_at_its_cap_is_skipped(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    set_cap(dsn, org.id, "0")
    summary = await review_pending(dsn, settings, org=org.id)
    assert (summary.candidates, summary.skipped_capped, summary.reviews) == (1, 1, [])
    assert servers.seen == [] and runs(dsn, rec) == []


async def test_tokens_and_cost_stored_equal_the_calls_made(servers, settings, org, dsn):
    recs = [add_recommendation(dsn, org.id, feature=f"f{i}") for i in range(3)]
    anthropic = {"n": 0}

    def script(seen):
        if seen.provider == "anthropic":
            anthropic["n"] += 1
            if anthropic["n"] % 2:  # every other one fails over to OpenAI: calls that cost nothing, yet calls
                return Answer.error(500)
        return Answer.json(synthesis() if role_of(seen) == "synthesizer" else position())

    servers.script = script
    summary = await review_pending(dsn, settings, org=org.id)
    assert len(summary.reviews) == 3
    with connect(dsn) as conn:
        stored = conn.execute(
            "select c.request_id, c.provider, c.model, c.input_tokens, c.output_tokens, c.cached_tokens,"
            " c.cost_usd, c.ok from public.consensus_calls c where c.org_id = %s", (org.id,)).fetchall()
        usage = {r["request_id"]: r for r in conn.execute(
            "select request_id, provider, model, input_tokens, output_tokens, cached_tokens, cost_usd, status"
            " from public.usage_records where org_id = private.internal_org_id() and end_user_id = %s",
            (org.id,)).fetchall()}
        totals = conn.execute("select sum(calls)::int as calls, sum(input_tokens)::int as input_tokens,"
                              " sum(cost_usd) as cost from public.consensus_runs where org_id = %s",
                              (org.id,)).fetchone()
    # one stored call per request the servers saw, one usage row per stored call, the same tokens
    assert len(stored) == len(servers.seen) == totals["calls"] == len(usage)
    assert any(not c["ok"] for c in stored)
    for c in stored:
        u = usage[c["request_id"]]
        assert (u["provider"], u["model"], u["input_tokens"], u["output_tokens"], u["cached_tokens"]) == \
            (c["provider"], c["model"], c["input_tokens"], c["output_tokens"], c["cached_tokens"])
        # our SQL price table and genai-prices agree on the cost
        assert float(u["cost_usd"] or 0) == pytest.approx(float(c["cost_usd"]), rel=1e-6, abs=1e-12)
    assert totals["input_tokens"] == sum(c["input_tokens"] for c in stored)
    assert float(totals["cost"]) == pytest.approx(sum(r.cost_usd for r in summary.reviews), rel=1e-9)
    assert all(rec_row(dsn, r)["consensus_run_id"] is not None for r in recs)
