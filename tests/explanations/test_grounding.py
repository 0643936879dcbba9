"""The number checker on tricky cases, and the templates held to it over random evidence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokentra_core.grounding import unsupported_numbers
from tokentra_worker.explanations.templates import anomaly_text, money, recommendation_text

EV = {
    "anomaly": {"metric": "cost", "dimension": "model", "dimension_value": "claude-3-5-haiku-latest",
                "actual_over_expected": 8.1, "score_robust_sd": 9.4},
    "window": {"start": "2026-11-22T13:00Z", "end": "2026-11-22T16:00Z", "buckets": 3},
    "baseline": {"windows": 7, "first_start": "2026-11-15T13:00Z"},
    "usage": {"window": {"cost_usd": 1234.5678, "requests": 30, "error_rate": 0.0734, "cost_per_request_usd": 0.033333},
              "baseline": {"cost_usd": 246.9, "requests": 12.5},
              "change": {"cost_usd": -12.5, "cost_pct": 400}},
    "split": {"rate_usd": 0.125, "big": 1234567},
    "by": [{"value": "gpt-4o-mini"}, {"value": "f2"}, {"value": "tt_live_ab12"}],
    "recommendation": {"confidence": 0.8, "title": "Fix the 12% error rate of feature chat"},
}


@pytest.mark.parametrize("text", [
    # formatting: currency, thousands separators, trailing zeros, a scale suffix
    "$1,234.57", "1234.5678", "1,234.6", "1,235", "$1.2k", "USD 1,234.57", "$1,234.5678", "$1.23M is not it: $1.2M",
    # rounding to what the prose shows, half-way either way
    "0.13", "0.12", "$0.03 a call", "$0.0333 per request", "3 cents",
    # signs are not figures: a fall of 12.5 cites -12.5
    "fell by $12.50", "-12.5", "−12.5",
    # percentages the evidence gives, and fractions shown as percentages
    "+400%", "400 percent", "7.3%", "7.34%", "7%", "an error rate of 0.0734", "80% confident",
    # counts, ratios, dates and times of the evidence
    "30 requests over 7 days", "12.5 requests", "in 3 hours", "8.1x the expected", "8.1 times", "a 3-hour window",
    "2026-11-22 13:00 UTC", "2026-11-22T16:00Z", "on 2026-11-22", "Nov 22", "22 November 2026", "November 22, 2026",
    "between 13:00 and 16:00", "from 1 pm to 4 p.m.", "since 2026-11-15", "in 2026",
    # names with digits: from the evidence, or any token whose digits follow a letter
    "model gpt-4o-mini", "GPT-4o and gpt-4.1-mini", "claude-3-5-haiku-latest", "feature f2", "key tt_live_ab12",
    "Fix the 12% error rate of feature chat", "p95 latency", "v2 of the prompt",
])
def test_backed_figures_pass(text):
    assert unsupported_numbers(text, EV) == []


@pytest.mark.parametrize(("text", "bad"), [
    ("$1,200", ["$1,200"]),  # a rounding the prose does not show
    ("$1,234.56", ["$1,234.56"]),  # off by more than half a cent
    ("$1.3k", ["$1.3k"]), ("$1.3M", ["$1.3M"]),
    ("500% of the baseline", ["500%"]),  # computed from two figures (1234.57 / 246.9): refused even when right
    ("30% more", ["30%"]),  # a count is no percentage
    ("7.3 errors", ["7.3"]),  # a fraction as a plain number x 100 is not allowed
    ("31 requests", ["31"]), ("over 6 days", ["6"]), ("a 24h window", ["24"]), ("5x", ["5x"]),
    ("on 2026-11-23", ["2026-11-23"]), ("2026-11-22 14:00", ["2026-11-22 14:00"]), ("Nov 23", ["Nov 23"]),
    ("22 November 2025", ["22 November 2025"]), ("at 14:00", ["14:00"]), ("at 2 pm", ["2 pm"]), ("in 2025", ["2025"]),
    ("17 marketing calls", ["17"]),  # not a date ("mar..."), and not in the evidence
    ("20 features", ["20"]),
    ("$999.99 then $999.99 and 1,000", ["$999.99", "1,000"]),  # each once, in order
])
def test_unbacked_figures_are_named(text, bad):
    assert unsupported_numbers(text, EV) == bad


def test_a_name_is_masked_as_a_whole_word_only():
    assert unsupported_numbers("feature f2 and feature f20", EV) == []  # f20: a name, not a figure
    assert unsupported_numbers("2 features", {"by": [{"value": "f2"}]}) == ["2"]


@pytest.mark.parametrize(("v", "text"), [(1234.5678, "$1,234.57"), (0.033333, "$0.0333"), (0.5, "$0.50"),
                                         (0, "$0.00"), (-0.7, "-$0.70"), (0.00004, "$0.00004")])
def test_money(v, text):
    assert money(v) == text


money_st = st.floats(min_value=-50_000, max_value=50_000, allow_nan=False).map(lambda v: round(v, 4))
count_st = st.integers(min_value=0, max_value=10_000_000)
pct_st = st.floats(min_value=-100, max_value=100_000, allow_nan=False).map(lambda v: round(v, 1))
part_st = st.fixed_dictionaries({"value": st.sampled_from(["gpt-4o", "claude-3-5-haiku-latest", "(none)", "f1"]),
                                 "change_usd": money_st, "share_of_change_pct": pct_st})


@settings(max_examples=200, deadline=None)
@given(metric=st.sampled_from(["cost", "requests", "tokens_per_request", "error_rate", "latency_ms"]),
       grain=st.sampled_from(["hour", "day"]), windows=st.integers(0, 7),
       w=st.tuples(money_st, count_st, money_st), b=st.tuples(money_st, count_st.map(lambda n: n / 10), money_st),
       change=st.tuples(money_st, pct_st), split=st.tuples(money_st, money_st, money_st),
       per_bucket=st.tuples(money_st, money_st, st.floats(0, 1).map(lambda v: round(v, 4))),
       parts=st.lists(part_st, max_size=4))
def test_the_anomaly_template_cites_only_its_evidence(metric, grain, windows, w, b, change, split, per_bucket, parts):
    ev = {
        "anomaly": {"metric": metric, "grain": grain, "dimension": "feature", "dimension_value": "summarize-2",
                    "actual_per_bucket": per_bucket[0], "expected_per_bucket": per_bucket[1],
                    "money_involved_usd": per_bucket[2]},
        "window": {"start": "2026-11-22T13:00Z", "end": "2026-11-23T00:00Z", "buckets": 11},
        "baseline": {"windows": windows, "shifted_by": "day" if grain == "hour" else "week"},
        "usage": {"window": {"cost_usd": abs(w[0]), "requests": w[1], "cost_per_request_usd": abs(w[2]),
                             "error_rate": per_bucket[2], "latency_ms": w[1], "tokens_per_request": abs(w[2])},
                  "baseline": {"cost_usd": abs(b[0]), "requests": b[1], "cost_per_request_usd": abs(b[2]),
                               "error_rate": per_bucket[2], "latency_ms": b[1], "tokens_per_request": abs(b[2])},
                  "change": {"cost_usd": change[0], "cost_pct": change[1]}},
        "cost_change_split": {"total_usd": split[0], "volume_usd": split[1], "mix_usd": split[2], "rate_usd": split[0]},
        "cost_change_by": {"model": parts, "team": parts[:1]},
    }
    prose = anomaly_text(ev)
    assert unsupported_numbers(f"{prose.headline}\n{prose.body}", ev) == []


@settings(max_examples=200, deadline=None)
@given(costs=st.tuples(money_st, money_st, money_st, money_st), pct=pct_st, confidence=st.floats(0, 1),
       requests=count_st, days=st.floats(0.5, 90).map(lambda v: round(v, 2)), cpr=money_st)
def test_the_recommendation_template_cites_only_its_evidence(costs, pct, confidence, requests, days, cpr):
    ev = {"recommendation": {"title": "Route gpt-4 calls of feature q3-report to gpt-4o-mini",
                             "scope_type": "feature", "scope_value": "q3-report",
                             "current_monthly_cost_usd": abs(costs[0]), "projected_monthly_cost_usd": abs(costs[1]),
                             "estimated_monthly_savings_usd": abs(costs[2]),
                             "estimated_yearly_savings_usd": abs(costs[3]), "savings_pct": pct,
                             "savings_method": "tokens repriced at the 2026 list price",
                             "confidence": round(confidence, 3), "realised_monthly_savings_usd": costs[3]},
          "facts": {"requests": requests, "window_days": days, "cost_per_request": abs(cpr)}}
    prose = recommendation_text(ev)
    assert unsupported_numbers(f"{prose.headline}\n{prose.body}", ev) == []
