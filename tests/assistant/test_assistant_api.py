"""POST /assistant/query on the real functions server, with the real openai/anthropic clients talking to
scripted servers: tool calls, malformed turns, a number absent from the evidence, an injection attempt in
the data, the AI cap, the usage record of every call."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from assistant_fixtures import (
    INJECTION,
    add_weeks,
    compare_args,
    data_messages,
    grounded_answer,
    instruction_text,
    today_of,
    tool_results,
    turns,
)

from org_fixtures import api, make_org, user_token
from secret_registry import SECRETS_SEEN
from tokentra_cli import admin
from tokentra_core.db import connect
from tokentra_dev.testing.llm_servers import Answer
from tokentra_functions.assistant.tools import TOOLS

QUESTION = {"query": "Why did our costs increase last week?"}
# Questions are prompts, and the data's text reaches the model: neither may reach the server's log.
SECRETS_SEEN.extend([QUESTION["query"], INJECTION])


def ask(url: str, org, body=None, role: str = "member"):
    return api(url, "POST", "/assistant/query", org.auth(role), json=QUESTION if body is None else body)


def explaining(seen):
    """A well-behaved model: compare the two weeks by feature, then answer from the result."""
    if turns(seen) == 0:
        return Answer.tool_calls(("compare_periods", compare_args(today_of(seen))))
    return Answer.tool_calls(("answer", grounded_answer(tool_results(seen)[-1])))


def usage_of(dsn: str, org_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select provider, model, cost_usd, feature, status from public.usage_records"
            " where org_id = private.internal_org_id() and end_user_id = %s order by occurred_at", (org_id,)).fetchall()


def test_the_model_works_through_tools_and_the_answer_names_its_sources(assistant_url, scripted, dsn):
    org = make_org(dsn)
    week = add_weeks(dsn, org.id, random.Random(11))
    scripted.script = explaining
    r = ask(assistant_url, org)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["source"], body["fallback_reason"]) == ("llm", None)
    top = max(week.current, key=lambda f: week.current[f] - week.previous.get(f, 0))
    assert f"Feature {top} added" in body["answer"]
    assert body["suggested_actions"] == [f"Review feature {top}."]
    # both weeks' queries, as the user asked them, with the organization they ran for
    assert [(s["tool"], s["query"]) for s in body["sources"]] == [("compare_periods", "public.cost_breakdown")] * 2
    current, previous = (s["parameters"] for s in body["sources"])
    assert current["org"] == previous["org"] == org.id
    assert (current["start_date"], previous["end_date"]) == (compare_args(week.today)["current_start"],
                                                             compare_args(week.today)["previous_end"])
    # the figure the model saw is the stored data's
    seen_result = tool_results(scripted.seen[1])[-1]
    assert Decimal(str(seen_result["current"]["cost_usd"])) == sum(week.current.values())
    # the model was offered the fixed tools and `answer`, and had to call one
    first = scripted.seen[0]
    assert first.provider == "openai" and first.body["tool_choice"] == "required"
    assert set(first.tools) == {*TOOLS, "answer"}
    assert all(t["function"]["strict"] for t in first.body["tools"])
    # every call is our own usage on the organization's behalf, and the answer says what it cost
    rows = usage_of(dsn, org.id)
    assert len(rows) == body["usage"]["calls"] == 2
    assert all(r["feature"] == "assistant.query" and r["status"] == "success" for r in rows)
    assert float(sum(r["cost_usd"] for r in rows)) == pytest.approx(body["usage"]["cost_usd"], abs=2e-6)
    assert body["usage"]["cost_usd"] > 0


def test_a_number_not_in_the_evidence_is_sent_back_then_answered_from_the_template(assistant_url, scripted, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(12))

    def inventing(seen):
        if turns(seen) == 0:
            return Answer.tool_calls(("compare_periods", compare_args(today_of(seen))))
        return Answer.tool_calls(("answer", {"answer": "Costs rose by $123,456.78, a 73.2% jump.",
                                             "suggested_actions": []}))

    scripted.script = inventing
    body = ask(assistant_url, org).json()
    assert (body["source"], body["fallback_reason"]) == ("template", "ungrounded")
    assert "123,456.78" not in body["answer"] and "Spend in the 7 days from" in body["answer"]
    # the model was told which numbers, once, then the template stood in
    assert len(scripted.seen) == 3
    assert "not in any tool result: $123,456.78, 73.2%" in data_messages(scripted.seen[2])[-1]
    assert body["usage"]["calls"] == 3 and len(usage_of(dsn, org.id)) == 3
    assert {s["query"] for s in body["sources"]} >= {"public.cost_breakdown", "public.anomaly_list",
                                                     "public.budget_status", "public.recommendation_list"}


def test_an_ungrounded_answer_corrected_on_retry_is_kept(assistant_url, scripted, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(13))

    def corrected(seen):
        if turns(seen) == 0:
            return Answer.tool_calls(("compare_periods", compare_args(today_of(seen))))
        if turns(seen) == 1:
            return Answer.tool_calls(("answer", {"answer": "About $5 million more.", "suggested_actions": []}))
        return Answer.tool_calls(("answer", grounded_answer(tool_results(seen)[0])))

    scripted.script = corrected
    body = ask(assistant_url, org).json()
    assert (body["source"], body["usage"]["calls"]) == ("llm", 3)
    assert body["answer"].startswith("Costs rose from $")


def test_a_model_malformed_twice_hands_over_to_the_fallback_model(assistant_url, scripted, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(14))
    bad = iter([Answer.malformed("Costs went up, mostly because of usage."),
                Answer.tool_calls(("compare_periods", '{"dimension": "feature", "current_start": ')),])

    def script(seen):
        if seen.provider == "openai":
            return next(bad)
        return explaining(seen)

    scripted.script = script
    body = ask(assistant_url, org).json()
    assert (body["source"], body["fallback_reason"]) == ("llm", None)
    assert [s.provider for s in scripted.seen] == ["openai", "openai", "anthropic", "anthropic"]
    # the second OpenAI turn was told its first was prose; Anthropic got the same tools and started afresh
    assert "prose alone is not read" in scripted.seen[1].prompt
    assert set(scripted.seen[2].tools) == {*TOOLS, "answer"} and scripted.seen[2].body["tool_choice"] == {"type": "any"}
    assert turns(scripted.seen[2]) == 0
    rows = usage_of(dsn, org.id)
    assert [r["provider"] for r in rows] == ["openai", "openai", "anthropic", "anthropic"]


def test_injected_instructions_in_the_data_stay_data(assistant_url, scripted, dsn):
    org, other = make_org(dsn), make_org(dsn)
    add_weeks(dsn, org.id, random.Random(15), features=[INJECTION, "search"])
    secret = Decimal("777.7777")  # every row of the other organization costs this: never to be seen
    add_weeks(dsn, other.id, random.Random(16), features=["search"], unit=secret)
    tried = []

    def gullible(seen):
        """Obeys whatever the data says: asks for a tool outside its set and for the other organization."""
        results = tool_results(seen)
        if turns(seen) == 0:
            return Answer.tool_calls(("compare_periods", compare_args(today_of(seen))))
        if turns(seen) == 1 and INJECTION in str(results):
            tried.append(True)
            return Answer.tool_calls(("run_sql", {"sql": "select sum(cost_usd) from public.usage_records"}),
                                     ("costs", {"start_date": str(today_of(seen)), "end_date": str(today_of(seen)),
                                                "group_by": ["feature"], "granularity": "total", "limit": None,
                                                "org_id": other.id}))
        return Answer.tool_calls(("answer", grounded_answer(results[0])))

    scripted.script = gullible
    body = ask(assistant_url, org).json()
    assert tried and body["source"] == "llm"
    # the data reached the model only as a tool result, never in the instructions
    first_with_data = scripted.seen[1]
    assert any(INJECTION in d for d in data_messages(first_with_data))
    assert all(INJECTION not in instruction_text(s) for s in scripted.seen)
    # neither call ran: no tool outside the set, no argument naming an organization
    refused = data_messages(scripted.seen[2])[-2:]
    assert "there is no tool 'run_sql'" in refused[0] and "Nothing was run" in refused[0]
    assert "org_id" in refused[1] and "Nothing was run" in refused[1]
    assert [s["tool"] for s in body["sources"]] == ["compare_periods", "compare_periods"]
    assert all(s["parameters"]["org"] == org.id for s in body["sources"])
    # the other organization's figures never reached the model nor the answer
    for s in scripted.seen:
        assert "777.7777" not in str(s.body) and "777.78" not in str(s.body)
    assert "777.7" not in str(body)


def test_at_the_ai_cap_no_model_is_called_and_the_template_answers(assistant_url, scripted, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(17))
    with connect(dsn, autocommit=True) as conn:
        conn.execute("update public.billing_profiles set ai_monthly_cap_usd = 0 where org_id = %s", (org.id,))
    scripted.script = explaining
    body = ask(assistant_url, org).json()
    assert (body["source"], body["fallback_reason"], body["usage"]["calls"]) == ("template", "ai_cap_reached", 0)
    assert scripted.seen == [] and usage_of(dsn, org.id) == []
    assert "monthly AI budget is used up" in body["answer"]


def test_without_a_provider_key_the_template_answers_from_the_same_queries(functions_url, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(18))
    r = ask(functions_url, org, role="viewer")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["source"], body["fallback_reason"], body["usage"]["calls"]) == ("template", "llm_off", 0)
    assert "no model provider is configured" in body["answer"] and "Spend in the 7 days" in body["answer"]
    assert all(s["parameters"]["org"] == org.id for s in body["sources"] if "org" in s["parameters"])


def test_requests_are_checked_field_by_field(functions_url, dsn):
    org, other = make_org(dsn), make_org(dsn)
    cases = [({}, "query"), ({"query": ""}, "query"), ({"query": "  "}, "query"), ({"query": "x" * 2001}, "query"),
             ({"query": "why?", "org_id": "acme"}, "org_id"), ({"query": "why?", "sql": "select 1"}, "sql"),
             ({"query": "a\x00b"}, "query")]
    for body, field in cases:
        r = ask(functions_url, org, body)
        assert r.status_code == 422 and r.json()["field"] == field, (body, r.text)
    assert api(functions_url, "POST", "/assistant/query", {}, json=QUESTION).status_code == 401
    # another organization, or none at all
    r = ask(functions_url, org, {"query": "why?", "org_id": other.id})
    assert r.status_code == 403
    assert ask(functions_url, org, role="outsider").status_code == 403


def test_a_user_of_several_organizations_names_one(functions_url, dsn):
    first, second = make_org(dsn), make_org(dsn)
    with connect(dsn, autocommit=True) as conn:
        user = admin.create_user(conn, f"both-{first.id[:8]}@example.com", first.id, "member")
        admin.create_user(conn, f"both-{first.id[:8]}@example.com", second.id, "viewer")
    auth = {"Authorization": f"Bearer {user_token(user.id)}"}
    r = api(functions_url, "POST", "/assistant/query", auth, json=QUESTION)
    assert r.status_code == 422 and r.json()["field"] == "org_id"
    r = api(functions_url, "POST", "/assistant/query", auth, json={**QUESTION, "org_id": second.id})
    assert r.status_code == 200 and r.json()["source"] == "template"


def test_a_model_that_never_answers_stops_after_its_turns(assistant_url, scripted, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(19))
    scripted.script = lambda seen: Answer.tool_calls(("forecast", {}), ("budgets", {"status": None}))
    body = ask(assistant_url, org).json()
    assert (body["source"], body["fallback_reason"]) == ("template", "llm_failed")
    assert len(scripted.seen) == body["usage"]["calls"] == 6  # TOKENTRA_ASSISTANT_MAX_STEPS
    assert {s.provider for s in scripted.seen} == {"openai"}  # well-formed turns: no hand-over


def test_one_turn_runs_at_most_eight_tool_calls(assistant_url, scripted, dsn):
    org = make_org(dsn)

    def greedy(seen):
        if turns(seen) == 0:
            return Answer.tool_calls(*[("budgets", {"status": None})] * 11)
        return Answer.tool_calls(("answer", {"answer": "There are no budgets.", "suggested_actions": []}))

    scripted.script = greedy
    body = ask(assistant_url, org).json()
    assert body["source"] == "llm" and [s["query"] for s in body["sources"]] == ["public.budget_status"] * 8
    refused = [d for d in data_messages(scripted.seen[1]) if "not run: at most 8 tool calls a turn" in d]
    assert len(refused) == 3


def test_a_number_the_model_passed_as_an_argument_grounds_nothing(assistant_url, scripted, dsn):
    org = make_org(dsn)
    add_weeks(dsn, org.id, random.Random(20))
    claim = "Costs fell 97% to $3"

    def self_citing(seen):
        """Passes its own figures as arguments (and a date no query can take), then cites them."""
        if turns(seen) == 0:
            return Answer.tool_calls(
                ("recommendations", {"status": None, "category": claim, "min_savings": 4321.5, "limit": None}),
                ("usage_timeseries", {"start_at": "0001-01-01T00:00", "end_at": "0001-01-01T00:00",
                                      "granularity": "day", "group_by": None, "feature": None, "model": None,
                                      "team": None, "project": None, "provider": None}))
        return Answer.tool_calls(("answer", {"answer": f"{claim}. Savings of $4,321.50 a month are open.",
                                             "suggested_actions": []}))

    scripted.script = self_citing
    r = ask(assistant_url, org)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["source"], body["fallback_reason"]) == ("template", "ungrounded")
    assert len(scripted.seen) == 3 and "4,321.50" not in body["answer"]
    # the out-of-range date was refused unrun and told to the model, naming the field
    told = data_messages(scripted.seen[1])
    assert any("end_at" in d and "years 2000 to 2099" in d and "Nothing was run" in d for d in told), told
    retry = data_messages(scripted.seen[2])[-1]
    assert "not in any tool result" in retry and "97%" in retry and "$3" in retry and "$4,321.50" in retry
