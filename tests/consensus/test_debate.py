"""The consensus job end to end: the real openai/anthropic clients against scripted servers, the real
ingest function recording every call, the real database storing and applying each run."""

from __future__ import annotations

import json

from consensus_fixtures import (
    add_recommendation,
    agents,
    calls,
    position,
    rec_row,
    role_of,
    round_of,
    runs,
    set_cap,
    synthesis,
)

from tokentra_core.db import connect
from tokentra_dev.testing.llm_servers import Answer
from tokentra_worker.consensus import review_pending

AGREE = position("accept", 1400, topics=(("savings_estimate", "supports"), ("quality_risk", "challenges")))


def agreeing(seen):
    return Answer.json(synthesis() if role_of(seen) == "synthesizer" else AGREE)


async def test_agreement_in_round_one_is_applied(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    servers.script = agreeing
    summary = await review_pending(dsn, settings, org=org.id)
    assert [r.status for r in summary.reviews] == ["completed"]
    [run] = runs(dsn, rec)
    assert (run["status"], run["rounds"], run["verdict"], run["applied"]) == ("completed", 1, "accept", True)
    assert run["score"] >= 0.8 and run["triggers"] == ["high_savings"]
    # the three agents asked once each, in parallel, on different providers; the synthesis not escalated
    by_role = {role_of(s): s for s in servers.seen}
    assert len(servers.seen) == 4 and set(by_role) == {"analyst", "skeptic", "advocate", "synthesizer"}
    assert {by_role["analyst"].provider, by_role["skeptic"].provider} == {"openai", "anthropic"}
    assert by_role["synthesizer"].model == "gpt-4.1-mini"
    # the final savings figure is the adopted agent's, the recommendation takes confidence and caveats
    assert float(run["adjusted_monthly_savings"]) == 1400 and run["savings_source"] == "skeptic"
    row = rec_row(dsn, rec)
    assert (row["status"], float(row["confidence"]), float(row["detector_confidence"])) == ("open", 0.75, 0.8)
    assert row["caveats"] == ["compare quality on a sample first"] and str(row["consensus_run_id"]) == str(run["id"])
    # the agents got the evidence from SQL, without request ids or hashes
    prompt = by_role["analyst"].prompt
    assert '"estimated_monthly_savings_usd": 1500' in prompt and "high_savings" not in prompt
    assert "secret-looking-id-1" not in prompt and "prompt_hash" not in prompt
    # reviewed at its current figures: the next pass leaves it alone
    again = await review_pending(dsn, settings, org=org.id)
    assert again.candidates == 0 and len(servers.seen) == 4


async def test_disagreement_for_three_rounds_ends_in_synthesis_with_dissent(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    split = {"analyst": position("accept", 1500), "skeptic": position("reject", 0, 0.7, (("quality_risk",
             "challenges"),)), "advocate": position("modify", 700, 0.6, (("implementation_effort", "supports"),))}
    dissent = [{"role": "skeptic", "summary": "quality unproven"}]
    servers.script = lambda seen: Answer.json(
        synthesis("modify", "advocate", 0.55, dissent) if role_of(seen) == "synthesizer" else split[role_of(seen)])
    await review_pending(dsn, settings, org=org.id)
    [run] = runs(dsn, rec)
    assert (run["status"], run["rounds"], run["verdict"], run["applied"]) == ("completed", 3, "modify", True)
    assert run["score"] < 0.8 and run["dissent"] == dissent and float(run["adjusted_monthly_savings"]) == 700
    # each round saw the positions before it
    for n in (1, 2, 3):
        prompts = [s.prompt for s in agents(servers.seen) if round_of(s) == n]
        assert len(prompts) == 3
        assert all(("Positions so far" in p) == (n > 1) for p in prompts)
    round3 = next(s.prompt for s in agents(servers.seen) if round_of(s) == 3)
    previous = json.loads(round3.split("Positions so far:\n\n")[1].split("\n\nAnswer")[0])
    assert [r["round"] for r in previous] == [1, 2] and previous[1]["positions"]["skeptic"]["verdict"] == "reject"
    # no consensus: the synthesis ran on the escalation model
    [syn] = [s for s in servers.seen if role_of(s) == "synthesizer"]
    assert syn.model == "gpt-4.1"
    with connect(dsn) as conn:
        n_positions = conn.execute("select count(*) as n from public.consensus_positions where run_id = %s",
                                   (run["id"],)).fetchone()["n"]
    assert n_positions == 9
    assert rec_row(dsn, rec)["status"] == "open"


async def test_a_failing_provider_falls_back_and_is_recorded(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    servers.script = lambda seen: Answer.error(529) if seen.provider == "anthropic" else agreeing(seen)
    await review_pending(dsn, settings, org=org.id)
    [run] = runs(dsn, rec)
    assert run["status"] == "completed"
    stored = calls(dsn, run["id"])
    failed = [c for c in stored if not c["ok"]]
    assert [(c["task"], c["provider"]) for c in failed] == [("consensus.skeptic", "anthropic")]
    assert "529" in failed[0]["error"] and failed[0]["input_tokens"] == 0
    with connect(dsn) as conn:
        skeptic = conn.execute("select provider, fallback_used from public.consensus_positions"
                               " where run_id = %s and role = 'skeptic'", (run["id"],)).fetchone()
    assert (skeptic["provider"], skeptic["fallback_used"]) == ("openai", True)


async def test_malformed_answer_is_repaired(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    state = {"bad": 1}

    def script(seen):
        if role_of(seen) == "skeptic" and state["bad"]:
            state["bad"] -= 1
            return Answer.malformed('{"verdict": "maybe"')
        return agreeing(seen)

    servers.script = script
    await review_pending(dsn, settings, org=org.id)
    [run] = runs(dsn, rec)
    assert run["status"] == "completed" and run["applied"]
    stored = calls(dsn, run["id"])
    assert [c["ok"] for c in stored if c["task"] == "consensus.skeptic"] == [False, True]


async def test_a_role_malformed_twice_moves_to_its_fallback_and_the_review_goes_on(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    # the skeptic's primary model (Anthropic) answers out of schema every time, in two different ways
    bad = iter([Answer.malformed('{"verdict": "accept", "confidence": 7}'), Answer.malformed("I agree, mostly.")])

    def script(seen):
        if role_of(seen) == "skeptic" and seen.provider == "anthropic":
            return next(bad)
        return agreeing(seen)

    servers.script = script
    await review_pending(dsn, settings, org=org.id)
    [run] = runs(dsn, rec)
    assert (run["status"], run["applied"], run["rounds"]) == ("completed", True, 1)
    stored = calls(dsn, run["id"])
    skeptic = [(c["provider"], c["ok"], c["fallback_used"]) for c in stored if c["task"] == "consensus.skeptic"]
    assert skeptic == [("anthropic", False, False), ("anthropic", False, False), ("openai", True, True)]
    assert all(c["error"].startswith("malformed") for c in stored if not c["ok"])
    with connect(dsn) as conn:
        position_row = conn.execute("select provider, fallback_used from public.consensus_positions"
                                    " where run_id = %s and role = 'skeptic'", (run["id"],)).fetchone()
    assert (position_row["provider"], position_row["fallback_used"]) == ("openai", True)
    assert run["calls"] == len(servers.seen) == 6  # 3 skeptic calls, analyst, advocate, synthesizer


async def test_a_role_malformed_on_every_model_fails_the_run_and_leaves_the_recommendation(servers, settings, org,
                                                                                          dsn):
    rec = add_recommendation(dsn, org.id)
    before = rec_row(dsn, rec)
    servers.script = lambda seen: (Answer.malformed('{"verdict": "accept", "confidence": 7}')
                                   if role_of(seen) == "skeptic" else agreeing(seen))
    summary = await review_pending(dsn, settings, org=org.id)
    [run] = runs(dsn, rec)
    assert (run["status"], run["applied"], run["rounds"]) == ("failed", False, 0)
    assert "StructuredOutputFailed" in run["stop_reason"]
    assert rec_row(dsn, rec) == before
    # every call is kept: both malformed skeptic answers on each model and the two agents that answered
    assert run["calls"] == len(servers.seen) == 6 and summary.reviews[0].calls == 6
    # failed recently: not retried on the next pass
    assert (await review_pending(dsn, settings, org=org.id)).candidates == 0


async def test_reject_holds_the_recommendation_for_review(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    no = position("reject", 0, 0.9, (("quality_risk", "challenges"),))
    servers.script = lambda seen: Answer.json(
        synthesis("reject", "skeptic", 0.3) if role_of(seen) == "synthesizer" else no)
    await review_pending(dsn, settings, org=org.id)
    row = rec_row(dsn, rec)
    assert (row["status"], float(row["confidence"])) == ("under_review", 0.3)


async def test_ai_cap_reached_mid_run_stops_it_with_nothing_applied(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    before = rec_row(dsn, rec)

    def script(seen):
        if role_of(seen) == "analyst" and round_of(seen) == 1:
            set_cap(dsn, org.id, "0")  # the organization's budget for AI is used up meanwhile
        return agreeing(seen)

    servers.script = script
    summary = await review_pending(dsn, settings, org=org.id)
    [run] = runs(dsn, rec)
    assert (run["status"], run["applied"]) == ("stopped", False)
    assert "AI spend cap" in run["stop_reason"]
    assert rec_row(dsn, rec) == before
    assert run["calls"] == len(servers.seen) and summary.reviews[0].status == "stopped"


async def test_an_unstorable_answer_fails_the_run_but_keeps_its_calls(servers, settings, org, dsn):
    rec = add_recommendation(dsn, org.id)
    with connect(dsn, autocommit=True) as conn:  # no monthly cost to cap the agents' figures with
        conn.execute("update public.recommendations set current_monthly_cost = null where id = %s", (rec,))
    before = rec_row(dsn, rec)
    servers.script = lambda seen: Answer.json(
        synthesis() if role_of(seen) == "synthesizer" else position("accept", 1e15))
    await review_pending(dsn, settings, org=org.id)
    [run] = runs(dsn, rec)
    assert (run["status"], run["applied"], run["calls"]) == ("failed", False, 4)
    assert run["stop_reason"].startswith("the outcome could not be stored")
    assert rec_row(dsn, rec) == before
