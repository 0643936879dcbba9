"""Deterministic explanations built from the evidence alone: what is stored when the LLM is off, capped,
failing, or keeps citing numbers the evidence lacks. Every figure is an evidence figure, formatted, so
the texts pass the same grounding check as the LLM's (tests hold them to it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

__all__ = ["Prose", "anomaly_text", "money", "recommendation_text"]

DIMENSION = {"team": "team", "project": "project", "feature": "feature", "model": "model", "api_key_id": "API key",
             "api_key": "API key"}
METRIC = {"cost": "Cost", "requests": "Requests", "tokens_per_request": "Tokens per request",
          "error_rate": "Error rate", "latency_ms": "Mean latency (ms)"}


class Prose(BaseModel):
    """An explanation: what the LLM is asked for, and what a template produces."""

    headline: str = Field(description="One sentence: what happened or what to do, with its main figure.")
    body: str = Field(description="Two to five sentences: why, citing only figures from the evidence.")

    @field_validator("headline", "body")
    @classmethod
    def not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


def money(v: float) -> str:
    """$1,234.57; $0.0333 for amounts under a dollar that cents would round away."""
    a = abs(float(v))
    if a >= 1 or round(a, 2) == a:
        text = f"{a:,.2f}"
    else:
        text = f"{a:.6f}".rstrip("0") if a < 0.0001 else f"{a:.4f}".rstrip("0")
    return f"{'-' if v < 0 else ''}${text}"


def _signed_money(v: float) -> str:
    return ("+" if v >= 0 else "") + money(v)


def _count(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,.1f}"


def _pct(v: float, signed: bool = False) -> str:
    return f"{'+' if signed and v >= 0 else ''}{v:g}%"


def _when(ts: str) -> str:
    return ts.replace("T", " ").removesuffix("Z")


def _scope(a: dict[str, Any]) -> str:
    if a.get("dimension", "organization") == "organization" or a.get("dimension_value") is None:
        return "the organization"
    return f"{DIMENSION.get(a['dimension'], a['dimension'])} {a['dimension_value']}"


def _metric_value(metric: str, v: float) -> str:
    if metric == "cost":
        return money(v)
    if metric == "error_rate" and abs(v) <= 1:  # a fraction, shown as the percentage it is
        return _pct(round(v * 100, 1))
    return _count(round(v, 1))


def _anomaly_headline(ev: dict[str, Any]) -> str:
    a, usage = ev["anomaly"], ev.get("usage", {})
    w, b, ch = usage.get("window", {}), usage.get("baseline", {}), usage.get("change", {})
    when = f"from {_when(ev['window']['start'])} to {_when(ev['window']['end'])} UTC"
    metric = a["metric"]
    if metric == "cost" and "cost_usd" in ch:
        pct = f" ({_pct(ch['cost_pct'], signed=True)})" if "cost_pct" in ch else ""
        verb = "rose" if ch["cost_usd"] >= 0 else "fell"
        return (f"Cost of {_scope(a)} {verb} from {money(b.get('cost_usd', 0))} to {money(w.get('cost_usd', 0))}"
                f"{pct} {when}.")
    headline = f"{METRIC.get(metric, metric)} of {_scope(a)} was unusual {when}"
    if "actual_per_bucket" in a and "expected_per_bucket" in a:
        headline += (f": {_metric_value(metric, a['actual_per_bucket'])} per {a.get('grain', 'hour')} against "
                     f"an expected {_metric_value(metric, a['expected_per_bucket'])}")
    return headline + "."


def _comparison(ev: dict[str, Any]) -> list[str]:
    """Window against baseline: requests and cost per request, and the anomaly's own metric."""
    a, usage = ev["anomaly"], ev.get("usage", {})
    w, b = usage.get("window", {}), usage.get("baseline", {})
    n = ev.get("baseline", {}).get("windows", 0)
    out = []
    if n and w and b:
        same = "hours" if a.get("grain") == "hour" else "days of the week"
        shifted = ev["baseline"].get("shifted_by", "day") + ("s" if n != 1 else "")
        rb, rw = b.get("requests", 0), w.get("requests", 0)
        moved = f"stayed at {_count(rw)}" if rb == rw else f"went from {_count(rb)} to {_count(rw)}"
        s = f"Against the same {same} of the {n} previous {shifted}, requests {moved}"
        if "cost_per_request_usd" in w and "cost_per_request_usd" in b:
            s += (f" and the cost per request went from {money(b['cost_per_request_usd'])} to "
                  f"{money(w['cost_per_request_usd'])}")
        out.append(s + ".")
    elif w:
        out.append(f"There is no earlier usage to compare with; the window had {_count(w.get('requests', 0))} "
                   f"requests costing {money(w.get('cost_usd', 0))}.")
    metric = a["metric"]
    if metric != "cost":
        if metric in w and metric in b:
            out.append(f"{METRIC[metric]} was {_metric_value(metric, w[metric])} in the window against "
                       f"{_metric_value(metric, b[metric])} in the baseline.")
        if "money_involved_usd" in a:
            out.append(f"The calls in the window cost {money(a['money_involved_usd'])}.")
    return out


_PARTS = (("volume_usd", "volume (more or fewer calls)"), ("mix_usd", "the mix of models"),
          ("rate_usd", "the cost per call within the same models"))


def _sources(ev: dict[str, Any]) -> list[str]:
    """Where the change in cost came from: volume, mix and rate, and the largest contributors."""
    out = []
    split = ev.get("cost_change_split", {})
    parts = [(split[k], label) for k, label in _PARTS if split.get(k)]
    if split.get("total_usd") and len(parts) == 1:
        out.append(f"All of the {_signed_money(split['total_usd'])} change in cost came from {parts[0][1]}.")
    elif split.get("total_usd") and parts:
        out.append(f"Of the {_signed_money(split['total_usd'])} change in cost, "
                   + ", ".join(f"{_signed_money(v)} came from {label}" for v, label in parts) + ".")
    top = []
    by = ev.get("cost_change_by", {})
    for dim in ("model", "feature", "team", "project", "api_key"):
        values = by.get(dim, [])
        if len(values) < 2 and dim != "model":
            continue  # one value took all of it: nothing to tell apart
        first = next((p for p in values if p.get("value") not in ("(other)", "(none)") and p.get("change_usd")), None)
        if first:
            share = f", {_pct(first['share_of_change_pct'])} of the change" if "share_of_change_pct" in first else ""
            top.append(f"{DIMENSION.get(dim, dim)} {first['value']} ({_signed_money(first['change_usd'])}{share})")
    if top:
        out.append("The largest contributors: " + "; ".join(top) + ".")
    return out


def anomaly_text(ev: dict[str, Any]) -> Prose:
    body = " ".join(_comparison(ev) + _sources(ev))
    return Prose(headline=_anomaly_headline(ev), body=body or "No usage was recorded in the window.")


def recommendation_text(ev: dict[str, Any]) -> Prose:
    r, facts = ev["recommendation"], ev.get("facts", {})
    savings = r.get("estimated_monthly_savings_usd", 0)
    pct = f" ({_pct(r['savings_pct'])} of its cost)" if "savings_pct" in r else ""
    headline = f"{r.get('title', r.get('category', 'Recommendation'))}: saves {money(savings)} a month{pct}."
    sentences = []
    scope = f"The {r['scope_type']} {r['scope_value']}" if r.get("scope_type") and r.get("scope_value") else "It"
    if "current_monthly_cost_usd" in r and "projected_monthly_cost_usd" in r:
        s = (f"{scope} costs {money(r['current_monthly_cost_usd'])} a month now and would cost "
             f"{money(r['projected_monthly_cost_usd'])} after the change")
        if "estimated_yearly_savings_usd" in r:
            s += f", {money(r['estimated_yearly_savings_usd'])} less a year"
        sentences.append(s + ".")
    if isinstance(facts.get("requests"), (int, float)):
        s = f"The estimate rests on {_count(facts['requests'])} requests"
        if isinstance(facts.get("window_days"), (int, float)):
            s += f" over {facts['window_days']:g} days"
        if isinstance(facts.get("cost_per_request"), (int, float)):
            s += f" at {money(facts['cost_per_request'])} per request"
        sentences.append(s + ".")
    if r.get("savings_method"):
        sentences.append(f"How the saving is estimated: {r['savings_method']}.")
    if isinstance(r.get("confidence"), (int, float)):
        sentences.append(f"Confidence: {_pct(round(r['confidence'] * 100, 1))}.")
    if isinstance(r.get("realised_monthly_savings_usd"), (int, float)):
        sentences.append(f"Measured since it was applied: {money(r['realised_monthly_savings_usd'])} a month.")
    return Prose(headline=headline, body=" ".join(sentences) or "No further figures were recorded.")
