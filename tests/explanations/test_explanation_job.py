"""The `explanations` job on the real database, with the real openai/anthropic clients talking to the
scripted servers and TokenTRA's own calls recorded through the real ingest function."""

from __future__ import annotations

from explain_fixtures import Spike, grounded, inventing

from tokentra_core.db import connect
from tokentra_core.grounding import unsupported_numbers
from tokentra_dev.testing.llm_servers import Answer
from tokentra_worker.explanations import run_explanations
from tokentra_worker.explanations.templates import anomaly_text, recommendation_text
from tokentra_worker.jobs import JOBS, JobContext


def _explanations(dsn: str, spike: Spike) -> dict[str, dict]:
    with connect(dsn) as conn:
        rows = conn.execute(
            "select x.*, public.anomaly_evidence(x.anomaly_id) as anomaly_now,"
            " public.recommendation_evidence(x.recommendation_id) as recommendation_now"
            " from public.explanations x where x.org_id = %s", (spike.org_id,)).fetchall()
    return {("anomaly" if r["anomaly_id"] else "recommendation"): r for r in rows}


def _internal_usage(dsn: str, org_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select request_id, model, cost_usd from public.usage_records"
            " where org_id = private.internal_org_id() and end_user_id = %s", (org_id,)).fetchall()


def _run(dsn, settings, spike: Spike) -> str:
    return run_explanations(JobContext(dsn, settings, "test"), orgs=[spike.org_id])


def test_grounded_explanations_are_stored_with_their_cost_and_evidence(dsn, servers, llm_on, spike):
    servers.script = grounded
    summary = _run(dsn, llm_on, spike)
    assert "2 explained, 2 by the LLM" in summary and "LLM on" in summary, summary
    x = _explanations(dsn, spike)
    a, r = x["anomaly"], x["recommendation"]
    assert a["source"] == r["source"] == "llm" and a["fallback_reason"] is None and a["rejected"] == []
    # the strategy's primaries: explain.anomaly on Anthropic, explain.recommendation on OpenAI
    assert (a["provider"], a["model"]) == ("anthropic", "claude-haiku-4-5")
    assert (r["provider"], r["model"]) == ("openai", "gpt-4.1-mini")
    assert a["headline"].startswith("Spend rose 400% to $1.00") and "gpt-4o added $0.70" in a["body"]
    # grounded on the evidence the SQL gives now, which is what the model was sent
    assert a["evidence"] == a["anomaly_now"] and r["evidence"] == r["recommendation_now"]
    assert a["evidence"]["usage"]["change"]["cost_usd"] == 0.8
    assert "series" not in r["evidence"]["facts"]
    for row in (a, r):
        assert row["llm_calls"] == 1 and row["input_tokens"] > 100 and row["output_tokens"] > 10
        assert float(row["cost_usd"]) > 0
    # every call is usage of the internal organization on behalf of this one, at the same cost
    used = _internal_usage(dsn, spike.org_id)
    assert sorted(u["model"] for u in used) == ["claude-haiku-4-5", "gpt-4.1-mini"]
    assert abs(sum(float(u["cost_usd"]) for u in used) - float(a["cost_usd"] + r["cost_usd"])) < 1e-6

    # current explanations are not written again: no further provider call
    seen = len(servers.seen)
    assert "0 explained" in _run(dsn, llm_on, spike)
    assert len(servers.seen) == seen


def test_an_invented_number_is_rejected_and_the_explanation_regenerated(dsn, servers, llm_on, spike):
    def script(seen):
        return grounded(seen) if "not in the evidence" in seen.prompt else inventing(seen)

    servers.script = script
    _run(dsn, llm_on, spike)
    a = _explanations(dsn, spike)["anomaly"]
    assert a["source"] == "llm" and a["llm_calls"] == 2 and a["headline"].startswith("Spend rose 400%")
    assert [(j["attempt"], j["unsupported"]) for j in a["rejected"]] == [(1, ["$999.99"])]
    # the second request told the model which number it invented
    retries = [s for s in servers.seen if "not in the evidence" in s.prompt]
    assert len(retries) == 2 and all("$999.99" in s.prompt for s in retries)
    assert len(_internal_usage(dsn, spike.org_id)) == 4  # both calls of both subjects are recorded


def test_invented_twice_stores_the_template(dsn, servers, llm_on, spike):
    servers.script = inventing
    summary = _run(dsn, llm_on, spike)
    assert "2 from templates (ungrounded 2); 4 ungrounded answers rejected" in summary, summary
    x = _explanations(dsn, spike)
    a, r = x["anomaly"], x["recommendation"]
    assert a["source"] == "template" and a["fallback_reason"] == "ungrounded" and a["llm_calls"] == 2
    assert [j["unsupported"] for j in a["rejected"]] == [["$999.99"], ["$999.99"]]
    assert float(a["cost_usd"]) > 0 and a["model"] == "claude-haiku-4-5"  # the spend is still accounted
    assert (a["headline"], a["body"]) == tuple(anomaly_text(a["evidence"]).model_dump().values())
    assert (r["headline"], r["body"]) == tuple(recommendation_text(r["evidence"]).model_dump().values())
    # the template holds itself to the same rule
    for row in (a, r):
        assert unsupported_numbers(f"{row['headline']} {row['body']}", row["evidence"]) == []
    assert "Cost of the organization rose from $0.20 to $1.00 (+400%)" in a["headline"]
    assert "+$0.30 came from volume" in a["body"] and "model gpt-4o (+$0.70, 87.5% of the change)" in a["body"]

    # an ungrounded template stays until the evidence changes: no new calls on the next run
    seen = len(servers.seen)
    _run(dsn, llm_on, spike)
    assert len(servers.seen) == seen


def test_llm_off_stores_templates_and_says_so_then_the_llm_takes_over(dsn, servers, llm_off, llm_on, spike):
    servers.script = grounded
    summary = _run(dsn, llm_off, spike)
    assert "2 from templates (llm_off 2)" in summary and "LLM off (no provider key configured" in summary, summary
    x = _explanations(dsn, spike)
    for row in x.values():
        assert row["source"] == "template" and row["fallback_reason"] == "llm_off" and row["llm_calls"] == 0
        assert "OPENAI_API_KEY" in row["note"] and row["model"] is None
    assert servers.seen == [] and _internal_usage(dsn, spike.org_id) == []

    # once a key is set, the next run replaces the templates
    _run(dsn, llm_on, spike)
    assert {row["source"] for row in _explanations(dsn, spike).values()} == {"llm"}


def test_the_ai_cap_stops_llm_calls(dsn, servers, llm_on, spike):
    servers.script = grounded
    with connect(dsn, autocommit=True) as conn:
        conn.execute("insert into public.billing_profiles (org_id, ai_monthly_cap_usd) values (%s, 0)"
                     " on conflict (org_id) do update set ai_monthly_cap_usd = 0", (spike.org_id,))
    _run(dsn, llm_on, spike)
    x = _explanations(dsn, spike)
    assert {(r["source"], r["fallback_reason"]) for r in x.values()} == {("template", "ai_cap_reached")}
    assert servers.seen == [] and _internal_usage(dsn, spike.org_id) == []


def test_failing_providers_end_in_the_template(dsn, servers, llm_on, spike):
    servers.script = lambda seen: Answer.error(500)
    _run(dsn, llm_on, spike)
    a = _explanations(dsn, spike)["anomaly"]
    assert a["source"] == "template" and a["fallback_reason"] == "llm_failed"
    assert a["llm_calls"] == 2 and a["cost_usd"] == 0  # primary and fallback, both refused


def test_the_job_is_registered():
    job = JOBS["explanations"]
    assert job.run is not None and job.schedule == "5-59/10 * * * *"


def test_changed_evidence_rewrites_a_template_at_once_and_an_llm_text_only_when_old(dsn, servers, llm_on, llm_off,
                                                                                    spike):
    servers.script = grounded
    _run(dsn, llm_off, spike)
    with connect(dsn, autocommit=True) as conn:  # one more $1 call in the window: the evidence moves
        conn.execute("insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd,"
                     " priced) values (%s, %s, gen_random_uuid()::text, 'openai', 'gpt-4o', 1, true)",
                     (spike.org_id, spike.window_start))
    _run(dsn, llm_off, spike)
    a = _explanations(dsn, spike)["anomaly"]
    assert a["source"] == "template" and a["evidence"] == a["anomaly_now"]
    assert a["evidence"]["usage"]["change"]["cost_usd"] == 1.8 and "$2.00 (+900%)" in a["headline"]

    _run(dsn, llm_on, spike)  # the LLM replaces the templates
    calls = len(servers.seen)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("insert into public.usage_records (org_id, occurred_at, request_id, provider, model, cost_usd,"
                     " priced) values (%s, %s, gen_random_uuid()::text, 'openai', 'gpt-4o', 1, true)",
                     (spike.org_id, spike.window_start))
    _run(dsn, llm_on, spike)  # an hour has not passed: the LLM text stands, on the evidence it cited
    a = _explanations(dsn, spike)["anomaly"]
    assert len(servers.seen) == calls and a["source"] == "llm" and a["evidence"] != a["anomaly_now"]
    _run(dsn, llm_on.model_copy(update={"explanations_refresh_minutes": 0}), spike)
    a = _explanations(dsn, spike)["anomaly"]
    assert len(servers.seen) == calls + 1 and a["evidence"] == a["anomaly_now"]
