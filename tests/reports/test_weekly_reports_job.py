"""The `weekly_reports` job on the real database: the real openai/anthropic clients talk to scripted
servers (a grounded report, an invented number, malformed answers), TokenTRA's own calls are recorded
through the real ingest function, and the report goes out through the real outbox to a local SMTP server."""

from __future__ import annotations

import uuid

from report_fixtures import Week, grounded, inventing, seed_week

from org_fixtures import Org, make_org
from tokentra_core.db import connect
from tokentra_core.grounding import unsupported_numbers
from tokentra_dev.testing.llm_servers import Answer
from tokentra_worker.alerting.delivery import deliver_due
from tokentra_worker.explanations.templates import money
from tokentra_worker.jobs import JOBS, JobContext
from tokentra_worker.reports import run_weekly_reports
from tokentra_worker.reports.templates import weekly_text


def _run(dsn, settings, week: Week, orgs: list[str] | None = None) -> str:
    return run_weekly_reports(JobContext(dsn, settings, "test"), orgs=orgs or [week.org_id], week=week.start)


def _reports(dsn: str, org_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select r.*, public.weekly_report_evidence(r.org_id, r.period_start::date) as evidence_now,"
            " (select count(*) from private.alert_deliveries d where d.report_id = r.id)::int as deliveries"
            " from public.reports r where r.org_id = %s", (org_id,)).fetchall()


def _same_figures(r: dict) -> bool:
    """The stored evidence is what the SQL gives now (the budgets' projections move with the clock)."""
    return {k: v for k, v in r["evidence"].items() if k != "budgets_at_risk"} == {
        k: v for k, v in r["evidence_now"].items() if k != "budgets_at_risk"}


def _internal_usage(dsn: str, org_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute(
            "select model, cost_usd from public.usage_records"
            " where org_id = private.internal_org_id() and end_user_id = %s", (org_id,)).fetchall()


def _deliver(dsn: str, settings, org: Org):
    return deliver_due(dsn, settings, f"test-{uuid.uuid4().hex[:6]}", time_budget=10, org_id=org.id)


def test_without_a_key_the_template_is_stored_once_and_emailed_once(dsn, org, week, llm_off, delivery_settings,
                                                                      smtp):
    summary = _run(dsn, llm_off, week)
    assert "1 reports written, 0 by the LLM, 1 from templates (llm_off 1)" in summary, summary
    assert "LLM off (no provider key configured" in summary and "1 deliveries queued" in summary, summary
    [r] = _reports(dsn, org.id)
    assert (r["method"], r["fallback_reason"], r["grounded"], r["llm_calls"]) == ("template", "llm_off", True, 0)
    assert "OPENAI_API_KEY" in r["note"] and float(r["cost_usd"]) == 0
    # the figures are the SQL's, which add up to the rows inserted
    assert _same_figures(r)
    assert r["evidence"]["spend"]["this_week_usd"] == float(round(week.this_week, 4))
    assert r["evidence"]["spend"]["previous_week_usd"] == float(round(week.previous_week, 4))
    assert (r["headline"], r["narrative"]) == tuple(weekly_text(r["evidence"]).model_dump().values())
    assert money(float(round(week.this_week, 4))) in r["headline"]
    assert unsupported_numbers(f"{r['headline']} {r['narrative']}", r["evidence"]) == []
    assert 'Budget "daily cap"' in r["narrative"] and '"Route classify to gpt-4o-mini"' in r["narrative"]

    # a rerun for the same week writes nothing and queues nothing
    assert "0 reports written" in (again := _run(dsn, llm_off, week)) and "1 already reported" in again, again
    assert [x["deliveries"] for x in _reports(dsn, org.id)] == [1]

    # the owners and admins get it by email, once, however often delivery runs
    mailbox, _ = smtp
    assert _deliver(dsn, delivery_settings, org).delivered == 1
    assert _deliver(dsn, delivery_settings, org).delivered == 0
    [mail] = mailbox.messages
    recipients = [a.strip() for a in mail["To"].split(",")]
    assert sorted(a.split("-")[0] for a in recipients) == ["admin", "owner"]  # not the member nor the viewer
    assert mail["Subject"].startswith("[TokenTRA] Weekly report") and str(week.start) in mail["Subject"]
    assert r["headline"] in mail.get_content()


def test_a_grounded_llm_report_is_stored_with_its_cost(dsn, org, week, servers, llm_settings):
    servers.script = grounded
    summary = _run(dsn, llm_settings(), week)
    assert "1 reports written, 1 by the LLM" in summary and "LLM on" in summary, summary
    [r] = _reports(dsn, org.id)
    assert (r["method"], r["fallback_reason"], r["grounded"], r["rejected"]) == ("llm", None, True, [])
    assert r["headline"].startswith("AI spend reached") and r["llm_calls"] == 1 and float(r["cost_usd"]) > 0
    assert (r["provider"], r["model"]) == ("openai", "gpt-4.1-mini")  # the default strategy's primary
    assert _same_figures(r)
    # the call is AI spend of the internal organization on behalf of this one, at the same cost
    used = _internal_usage(dsn, org.id)
    assert [u["model"] for u in used] == ["gpt-4.1-mini"]
    assert abs(float(used[0]["cost_usd"]) - float(r["cost_usd"])) < 1e-6
    # the model was sent the evidence and told the rules
    [seen] = servers.seen
    assert "Every number you write must appear in the evidence" in seen.system


def test_a_number_not_in_the_evidence_is_rejected_and_asked_for_again(dsn, org, week, servers, llm_settings):
    servers.script = lambda seen: grounded(seen) if "not in the evidence" in seen.prompt else inventing(seen)
    _run(dsn, llm_settings(), week)
    [r] = _reports(dsn, org.id)
    assert (r["method"], r["llm_calls"]) == ("llm", 2) and r["headline"].startswith("AI spend reached")
    assert [(j["attempt"], j["unsupported"]) for j in r["rejected"]] == [(1, ["$999.99"])]
    assert "$999.99" in servers.seen[1].prompt


def test_invented_twice_stores_the_template(dsn, org, week, servers, llm_settings):
    servers.script = inventing
    summary = _run(dsn, llm_settings(), week)
    assert "1 from templates (ungrounded 1)" in summary and "2 ungrounded answers rejected" in summary, summary
    [r] = _reports(dsn, org.id)
    assert (r["method"], r["fallback_reason"], r["grounded"], r["llm_calls"]) == ("template", "ungrounded", True, 2)
    assert "$999.99" not in r["narrative"] and float(r["cost_usd"]) > 0  # the spend is still accounted


def test_malformed_answers_are_repaired_or_end_in_the_template(dsn, org, week, servers, llm_settings):
    answers = [Answer.malformed('{"headline": 3}')]  # the first answer misses the body; then a good one
    servers.script = lambda seen: answers.pop(0) if answers else grounded(seen)
    _run(dsn, llm_settings(), week)
    [r] = _reports(dsn, org.id)
    assert (r["method"], r["llm_calls"], r["grounded"]) == ("llm", 2, True)
    assert "did not match the required Prose schema" in servers.seen[1].prompt  # the repair request fixed it

    with connect(dsn, autocommit=True) as conn:
        conn.execute("delete from public.reports where org_id = %s", (org.id,))
    before = len(servers.seen)
    servers.script = lambda seen: Answer.malformed("this is not JSON")
    _run(dsn, llm_settings(), week)
    [r] = _reports(dsn, org.id)
    assert (r["method"], r["fallback_reason"], r["grounded"]) == ("template", "llm_failed", True)
    # each model was asked to repair its answer before the template was stored
    assert r["llm_calls"] == 4 and {s.provider for s in servers.seen[before:]} == {"openai", "anthropic"}


def test_one_llm_writes_every_report_of_a_run(dsn, org, week, servers, llm_settings):
    others = [make_org(dsn) for _ in range(2)]
    for n, other in enumerate(others):
        seed_week(dsn, other.id, seed=9_000 + n)
    servers.script = grounded
    summary = _run(dsn, llm_settings(), week, orgs=[org.id, *(o.id for o in others)])
    assert "3 reports written, 3 by the LLM" in summary, summary
    # each report counts only its own call, though one client wrote them all: over one pooled connection
    assert all([(r["method"], r["llm_calls"]) for r in _reports(dsn, o)] == [("llm", 1)]
               for o in (org.id, *(o.id for o in others)))
    assert len(servers.seen) == 3 and len({s.peer for s in servers.seen}) == 1, [s.peer for s in servers.seen]


def test_one_failing_organization_does_not_stop_the_others(dsn, org, week, llm_off):
    summary = _run(dsn, llm_off, week, orgs=["not-an-organization", week.org_id])
    assert "2 organizations, 1 reports written" in summary and "1 organizations failed" in summary, summary
    assert len(_reports(dsn, org.id)) == 1


def test_the_job_is_registered_for_monday_morning():
    job = JOBS["weekly_reports"]
    assert job.run is not None and job.schedule == "0 7 * * mon"
