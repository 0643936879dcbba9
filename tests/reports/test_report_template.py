"""The weekly report template on randomised evidence of every shape (empty weeks, new spend, falls, many
budgets, nothing applied): each text cites only evidence figures, by the same checker the LLM's answers
meet, and the checker does see a figure that is not there."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from tokentra_core.grounding import unsupported_numbers
from tokentra_worker.reports.templates import weekly_text


def _money(rng: random.Random, top: int = 5_000) -> float:
    return float(round(Decimal(rng.randint(0, top * 10_000)) / 10_000, 4))


def _pct(a: float, b: float) -> float | None:
    return None if b == 0 else float(round(Decimal(100) * (Decimal(str(a)) - Decimal(str(b))) / Decimal(str(b)), 1))


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def random_evidence(rng: random.Random) -> dict[str, Any]:
    """Evidence shaped and rounded as public.weekly_report_evidence writes it."""
    day = rng.randint(1, 28)
    start, prev = f"2026-{rng.randint(1, 11):02d}-{day:02d}T00:00Z", "2026-01-01T00:00Z"
    cw = _money(rng) if rng.random() > 0.1 else 0.0
    cp = _money(rng) if rng.random() > 0.2 else 0.0
    drivers: dict[str, list] = {}
    for dim, names in (("model", ["gpt-4o", "gpt-4o-mini", "claude-3-5-haiku", "o3"]),
                       ("feature", ["chat", "rag-v2", "(none)"]), ("team", ["(none)", "team 7", "ml"])):
        items = []
        for value in rng.sample(names, rng.randint(0, len(names))):
            w, p = _money(rng, 500), _money(rng, 500) if rng.random() > 0.3 else 0.0
            items.append(_strip({"value": value, "this_week_usd": w, "previous_week_usd": p,
                                 "change_usd": float(round(Decimal(str(w)) - Decimal(str(p)), 4)),
                                 "change_pct": _pct(w, p), "share_of_change_pct": round(rng.uniform(-300, 300), 1)}))
        drivers[dim] = items
    n_anomalies = rng.choice([0, 1, 2, 7])
    largest = [_strip({"severity": rng.choice(["low", "high", "critical"]), "metric": rng.choice(["cost", "requests"]),
                       "dimension": rng.choice(["organization", "feature", "model"]), "dimension_value": "chat",
                       "window_start": f"2026-03-{rng.randint(10, 16)}T{rng.randint(0, 23):02d}:00Z",
                       "money_involved_usd": _money(rng, 300) if rng.random() > 0.2 else None, "status": "open"})
               for _ in range(min(n_anomalies, 5))]
    budgets = []
    for i in range(rng.choice([0, 1, 4])):
        amount, spent, projected = _money(rng, 1000) + 1, _money(rng, 2000), _money(rng, 4000)
        budgets.append({"name": f"budget {i} Q4", "period": rng.choice(["daily", "weekly", "monthly"]),
                        "scope_type": "organization", "status": rng.choice(["warning", "exceeded", "ok"]),
                        "amount_usd": amount, "current_spend_usd": spent, "projected_spend_usd": projected,
                        "spent_pct": round(100 * spent / amount, 1),
                        "projected_pct": round(100 * projected / amount, 1),
                        "period_end": f"2026-04-0{rng.randint(1, 9)}T00:00Z"})
    applied_total = rng.choice([0, 1, 3])
    applied_week = rng.randint(0, applied_total)
    applied = [_strip({"title": f"Route task {i} to gpt-4.1-mini", "category": "routing",
                       "applied_at": "2026-03-11T09:30Z", "applied_this_week": i < applied_week,
                       "estimated_monthly_savings_usd": _money(rng, 900),
                       "realised_monthly_savings_usd": _money(rng, 900) if rng.random() > 0.5 else None})
               for i in range(applied_total)]
    return {
        "subject": "weekly_report", "organization": "acme 2",
        "period": {"start": start, "end": start}, "previous_period": {"start": prev, "end": start},
        "spend": _strip({"this_week_usd": cw, "previous_week_usd": cp,
                         "change_usd": float(round(Decimal(str(cw)) - Decimal(str(cp)), 4)),
                         "change_pct": _pct(cw, cp), "requests": rng.randint(0, 10**7) if cw else 0,
                         "previous_requests": rng.randint(0, 10**7)}),
        "top_drivers": drivers,
        "anomalies": {"count": n_anomalies, "high_or_critical": rng.randint(0, n_anomalies),
                      "money_involved_usd": _money(rng, 900) if n_anomalies else 0, "largest": largest},
        "budgets_at_risk": budgets,
        "recommendations": {"applied_this_week": applied_week, "applied_total": applied_total,
                            "measured": sum(1 for a in applied if "realised_monthly_savings_usd" in a),
                            "realised_monthly_savings_usd": _money(rng, 900), "applied": applied,
                            "estimated_monthly_savings_of_applied_usd": _money(rng, 900),
                            "open": rng.choice([0, 2]), "open_estimated_monthly_savings_usd": _money(rng, 900)},
    }


@pytest.mark.parametrize("seed", range(300))
def test_the_template_cites_only_evidence_figures(seed):
    ev = random_evidence(random.Random(seed))
    prose = weekly_text(ev)
    assert unsupported_numbers(f"{prose.headline}\n{prose.body}", ev) == [], (prose.headline, prose.body)
    assert prose.headline.startswith("Spend was $") and ev["period"]["start"][:10] in prose.headline


def test_the_check_sees_a_figure_the_evidence_lacks():
    ev = random_evidence(random.Random(7))
    ev["spend"].update(this_week_usd=1234.5678, change_usd=1, change_pct=3.3, previous_week_usd=1233.5678)
    prose = weekly_text(ev)
    assert "$1,234.57" in prose.headline
    ev["spend"]["this_week_usd"] = 1300.0  # the text no longer matches its evidence
    assert "$1,234.57" in unsupported_numbers(prose.headline, ev)


def test_each_part_of_the_week_is_told():
    rng = random.Random(11)
    ev = random_evidence(rng)
    ev["anomalies"] = {"count": 0, "high_or_critical": 0, "money_involved_usd": 0, "largest": []}
    ev["budgets_at_risk"] = []
    ev["spend"].update(this_week_usd=10, previous_week_usd=0, change_usd=10)
    ev["spend"].pop("change_pct", None)
    body = weekly_text(ev).body
    assert "No anomaly started this week." in body and "No budget is at risk." in body
    assert "there was no spend the week before" in weekly_text(ev).headline
