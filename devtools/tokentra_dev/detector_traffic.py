"""Randomised traffic for the detectors of spend that buys nothing, schedules and customers' signals:
one organization per scenario, each either carrying one pattern (a positive: the detector named should
find it on the scenario's feature or end user) or something that resembles one without being it (a
negative: nothing of these categories should be found). Shapes, sizes, hours, models, token counts and
noise are drawn from the seed, so a detector tuned on some seeds can be measured on others it never saw.

Used by `tokentra bench generalise` (held-out seeds) and tests/intelligence/test_detector_generalisation.py
(development seeds).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from tokentra_dev.bench_recommendations import load_rows

__all__ = ["CATEGORIES", "KINDS", "Scenario", "load_scenario", "scenario"]

CATEGORIES = (
    "error_reduction",
    "timeout_cost_analysis",
    "abandoned_request_detection",
    "retry_storm_detection",
    "time_based_optimization",
    "quality_cost_pareto",
    "output_format_optimization",
    "partial_response_caching",
    "business_outcome_attribution",
)

# Models with a price and (for OpenAI) a batch tier in the pricing tables; each pattern rides on one
# whose calls cost enough for the pattern to be worth a finding.
PREMIUM = (("openai", "gpt-4o"), ("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4-0"))
BATCHABLE = (("openai", "gpt-4o"), ("openai", "gpt-4.1"))
PAIRS = (("gpt-4o", "gpt-4o-mini"), ("gpt-4.1", "gpt-4.1-mini"))


@dataclass
class Scenario:
    kind: str  # "<category>+<shape>" for a positive, "<category>-<shape>" for a negative
    rows: list[dict]
    expected: set[tuple[str, str]]  # (category, scope value) the detectors should report
    streamed: set[str] = field(default_factory=set)  # request ids sent as streams


@dataclass
class _Ctx:
    rng: np.random.Generator
    now: datetime
    days: int
    users: list[str]
    streamed: set[str] = field(default_factory=set)

    def feature(self, name: str) -> str:
        return f"{name}-{uuid.UUID(int=int(self.rng.integers(0, 2**63))).hex[:6]}"


# ---------------------------------------------------------------- times of day
def _day_starts(c: _Ctx, weekdays_only: bool = False) -> list[datetime]:
    first = (c.now - timedelta(days=c.days)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [first + timedelta(days=d) for d in range(1, c.days)]
    return [d for d in days if not weekdays_only or d.weekday() < 5]


def _interactive(c: _Ctx, n: int) -> list[datetime]:
    """A human day: a wrapped bell around a random peak hour over a floor, quieter weekends."""
    peak, width, floor = c.rng.uniform(0, 24), c.rng.uniform(3.5, 6), c.rng.uniform(0.15, 0.35)
    weekend = c.rng.uniform(0.3, 1.0)
    days = _day_starts(c)
    weights = np.array([weekend if d.weekday() >= 5 else 1.0 for d in days])
    picked = c.rng.choice(len(days), size=n, p=weights / weights.sum())
    hours = np.where(c.rng.random(n) < floor, c.rng.uniform(0, 24, n), c.rng.normal(peak, width, n)) % 24
    return [days[d] + timedelta(hours=float(h)) for d, h in zip(picked, hours, strict=True)]


def _workday(c: _Ctx, n: int) -> list[datetime]:
    """Office hours in some timezone: 8 to 11 hours on weekdays, a thin evening and early tail."""
    start, length = c.rng.uniform(0, 24), c.rng.uniform(8, 11)
    days = _day_starts(c, weekdays_only=True)
    picked = c.rng.integers(0, len(days), n)
    tail = c.rng.random(n) < 0.06
    hours = np.where(tail, start + c.rng.uniform(-3, length + 3, n), start + c.rng.uniform(0, length, n))
    return [days[d] + timedelta(hours=float(h % 24)) for d, h in zip(picked, hours, strict=True)]


def _runs(c: _Ctx, n: int, runs: list[tuple[float, float]], noise: float, weekdays_only: bool) -> list[datetime]:
    """A schedule: each active day, the calls of each run (start hour, length in hours) spread over it;
    a `noise` share of calls anywhere (manual reruns, tests)."""
    days = _day_starts(c, weekdays_only)
    out = []
    for _ in range(n):
        day = days[int(c.rng.integers(0, len(days)))]
        if c.rng.random() < noise:
            out.append(day + timedelta(hours=float(c.rng.uniform(0, 24))))
            continue
        start, length = runs[int(c.rng.integers(0, len(runs)))]
        out.append(day + timedelta(hours=float((start + c.rng.uniform(0, length)) % 24)))
    return out


def _anytime(c: _Ctx, n: int) -> list[datetime]:
    days = _day_starts(c)
    return [days[int(c.rng.integers(0, len(days)))] + timedelta(hours=float(c.rng.uniform(0, 24))) for _ in range(n)]


# ---------------------------------------------------------------- calls
def _calls(c: _Ctx, times: list[datetime], feature: str, provider: str, model: str, *, streamed: float = 0.0,
           latency_s: float | None = None, errors: float | None = None, cancelled: float | None = None,
           timeouts: float | None = None, inp: float | None = None, out: float | None = None) -> list[dict]:
    """One feature's calls at `times`: token counts lognormal around the feature's own medians, the
    background failure rates (below every threshold) unless given."""
    rng = c.rng
    inp = inp or float(rng.uniform(3000, 8000))
    out = out or float(rng.uniform(200, 700))
    errors = float(rng.uniform(0, 0.01)) if errors is None else errors
    cancelled = float(rng.uniform(0, 0.004)) if cancelled is None else cancelled
    timeouts = float(rng.uniform(0, 0.004)) if timeouts is None else timeouts
    latency_s = latency_s or float(rng.uniform(0.8, 4))
    rows = []
    for at in sorted(times):
        u = rng.random()
        status = ("error" if u < errors else "cancelled" if u < errors + cancelled
                  else "timeout" if u < errors + cancelled + timeouts else "success")
        rid = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63))))
        if rng.random() < streamed:
            c.streamed.add(rid)
        rows.append({
            "occurred_at": at, "request_id": rid, "provider": provider, "model": model,
            "input_tokens": max(1, int(rng.lognormal(math.log(inp), 0.4))),
            "output_tokens": max(1, int(rng.lognormal(math.log(out), 0.5))),
            "status": status, "retry_count": 0, "is_timeout": status == "timeout", "cache_hit": False,
            "prompt_hash": uuid.UUID(int=int(rng.integers(0, 2**63))).hex, "task_type": None,
            "feature": feature, "team": "core",
            "latency_ms": 120_000 if status == "timeout" else int(rng.lognormal(math.log(latency_s * 1000), 0.4)),
            "end_user_id": c.users[int(rng.integers(0, len(c.users)))], "system_prompt_hash": None,
        })
    return rows


def _n(c: _Ctx, lo: int = 900, hi: int = 2200) -> int:
    return int(c.rng.integers(lo, hi))


def _premium(c: _Ctx, pool: tuple[tuple[str, str], ...] = PREMIUM) -> tuple[str, str]:
    return pool[int(c.rng.integers(0, len(pool)))]


# ---------------------------------------------------------------- reliability
def _rate(category: str, lo: float, hi: float) -> Callable[[_Ctx], tuple[list[dict], str]]:
    def build(c: _Ctx) -> tuple[list[dict], str]:
        f = c.feature(category.split("_")[0])
        rate = float(c.rng.uniform(lo, hi))
        arg = {"error_reduction": "errors", "timeout_cost_analysis": "timeouts",
               "abandoned_request_detection": "cancelled"}[category]
        shape = _interactive if c.rng.random() < 0.5 else _anytime
        return _calls(c, shape(c, _n(c)), f, *_premium(c), streamed=float(c.rng.uniform(0, 1)),
                      **{arg: rate}), f
    return build


def _retries_counted(c: _Ctx) -> tuple[list[dict], str]:
    f = c.feature("agent")
    rows = _calls(c, _interactive(c, _n(c)), f, *_premium(c))
    share = float(c.rng.uniform(0.1, 0.4))
    for r in rows:
        if c.rng.random() < share:
            r["retry_count"] = int(c.rng.integers(1, 5))
    return rows, f


def _chains(c: _Ctx, rows: list[dict], share: float, retries: tuple[int, int],
            first: str = "rate_limited") -> list[dict]:
    """After a `share` of the calls fail (429), the same prompt again: immediately or with backoff, each
    attempt failing again until one succeeds (or the client gives up). No call reports a retry count."""
    out = []
    for r in rows:
        out.append(r)
        if r["status"] != "success" or c.rng.random() >= share:
            continue
        r["status"] = first
        k, backoff = int(c.rng.integers(*retries)), c.rng.random() < 0.5
        at = r["occurred_at"]
        for j in range(k):
            at += timedelta(seconds=float(2 ** j * c.rng.uniform(0.5, 1.5) if backoff else c.rng.uniform(0.05, 3)))
            last = j == k - 1
            out.append({**r, "request_id": str(uuid.uuid4()), "occurred_at": at,
                        "status": "success" if last and c.rng.random() < 0.8 else "rate_limited"})
    return out


def _retries_hashed(c: _Ctx) -> tuple[list[dict], str]:
    f = c.feature("agent")
    rows = _calls(c, _anytime(c, _n(c, 700, 1500)), f, *_premium(c), errors=0.0)
    return _chains(c, rows, float(c.rng.uniform(0.08, 0.3)), (2, 6)), f


def _duplicates(c: _Ctx) -> tuple[list[dict], str]:
    """Double submits and repeated questions: the same prompt after a success, seconds or hours later."""
    f = c.feature("search")
    rows = _calls(c, _interactive(c, _n(c)), f, *_premium(c))
    out = []
    for r in rows:
        out.append(r)
        if r["status"] == "success" and c.rng.random() < 0.3:
            gap = c.rng.uniform(0.5, 10) if c.rng.random() < 0.5 else c.rng.uniform(600, 86400)
            out.append({**r, "request_id": str(uuid.uuid4()), "occurred_at": r["occurred_at"] + timedelta(seconds=gap)})
    return out, f


def _rare_retries(c: _Ctx) -> tuple[list[dict], str]:
    """A healthy client: the odd 429 retried once after a pause."""
    f = c.feature("agent")
    rows = _calls(c, _interactive(c, _n(c)), f, *_premium(c), errors=0.0)
    return _chains(c, rows, float(c.rng.uniform(0.005, 0.03)), (1, 2)), f


# ---------------------------------------------------------------- schedules
def _scheduled(kind: str) -> Callable[[_Ctx], tuple[list[dict], str]]:
    def build(c: _Ctx) -> tuple[list[dict], str]:
        f = c.feature("job")
        start = float(c.rng.uniform(0, 24))
        runs = {"short": [(start, float(c.rng.uniform(0.3, 1.8)))],
                "long": [(start, float(c.rng.uniform(2.2, 4.8)))],
                "twice": [(start, float(c.rng.uniform(0.3, 1.8))),
                          (start + float(c.rng.uniform(6, 14)), float(c.rng.uniform(0.3, 1.8)))]}[kind]
        times = _runs(c, _n(c, 500, 1500), runs, float(c.rng.uniform(0, 0.05)), bool(c.rng.random() < 0.3))
        return _calls(c, times, f, *_premium(c, BATCHABLE), latency_s=float(c.rng.uniform(1, 30)), cancelled=0.0), f
    return build


def _unhurried(c: _Ctx) -> tuple[list[dict], str]:
    """A queue worker: calls at any hour, nobody streaming or waiting, long answers, never cancelled."""
    f = c.feature("worker")
    shape = _anytime if c.rng.random() < 0.5 else _interactive
    return _calls(c, shape(c, _n(c, 500, 1500)), f, *_premium(c, BATCHABLE),
                  latency_s=float(c.rng.uniform(20, 90)), cancelled=0.0, out=float(c.rng.uniform(800, 2500))), f


def _human(kind: str) -> Callable[[_Ctx], tuple[list[dict], str]]:
    def build(c: _Ctx) -> tuple[list[dict], str]:
        f = c.feature("app")
        model = _premium(c, BATCHABLE)
        if kind == "workday":
            return _calls(c, _workday(c, _n(c)), f, *model), f
        if kind == "interactive":
            return _calls(c, _interactive(c, _n(c)), f, *model, streamed=float(c.rng.uniform(0, 1))), f
        if kind == "evening":  # a consumer chat's evening peak: a few hours, but streamed to people
            start = float(c.rng.uniform(0, 24))
            times = _runs(c, _n(c), [(start, float(c.rng.uniform(2, 4.5)))], 0.05, False)
            return _calls(c, times, f, *model, streamed=float(c.rng.uniform(0.6, 1))), f
        if kind == "impatient":  # slow answers people wait for, and some give up on
            return _calls(c, _interactive(c, _n(c, 1200, 2200)), f, *model, latency_s=float(c.rng.uniform(20, 60)),
                          cancelled=float(c.rng.uniform(0.009, 0.013))), f
        # a one-off backfill: most calls within a couple of hours of one day, a thin daily trickle after
        burst_day = _day_starts(c)[int(c.rng.integers(0, c.days - 2))]
        start, n = float(c.rng.uniform(0, 22)), _n(c)
        times = [burst_day + timedelta(hours=start + float(c.rng.uniform(0, 2))) for _ in range(int(n * 0.85))]
        return _calls(c, times + _anytime(c, n - len(times)), f, *model), f
    return build


# ---------------------------------------------------------------- customers' signals
def _quality(kind: str) -> Callable[[_Ctx], tuple[list[dict], str]]:
    def build(c: _Ctx) -> tuple[list[dict], str]:
        f = c.feature("answers")
        big, small = PAIRS[int(c.rng.integers(0, len(PAIRS)))]
        q, sd = float(c.rng.uniform(0.6, 0.9)), float(c.rng.uniform(0.04, 0.1))
        gap = {"same": float(c.rng.uniform(-0.002, 0.03)), "worse": -float(c.rng.uniform(0.06, 0.2)),
               "sparse": 0.0}[kind]
        n = _n(c, 1000, 2500)
        share_big, scored = float(c.rng.uniform(0.4, 0.7)), float(c.rng.uniform(0.6, 1))
        times = _interactive(c, n)
        rows = (_calls(c, times[: int(n * share_big)], f, "openai", big)
                + _calls(c, times[int(n * share_big):], f, "openai", small))
        small_scored = 0
        for r in rows:
            if r["status"] != "success" or c.rng.random() >= scored:
                continue
            if r["model"] == small:
                small_scored += 1
                if kind == "sparse" and small_scored > int(c.rng.integers(8, 25)):
                    continue
            mean = q + (gap if r["model"] == small else 0.0)
            r["quality_score"] = round(min(max(float(c.rng.normal(mean, sd)), 0.0), 1.0), 3)
        return rows, f
    return build


def _formats(kind: str) -> Callable[[_Ctx], tuple[list[dict], str]]:
    def build(c: _Ctx) -> tuple[list[dict], str]:
        f = c.feature("extract")
        n = _n(c, 600, 1500) if kind != "few" else int(c.rng.integers(15, 45))
        overhead = (0.0, 0.07) if kind == "compact" else (0.15, 0.5)
        asked = ("text", "json_object", "json_schema")[int(c.rng.integers(0, 3))]
        rows = _calls(c, _interactive(c, n), f, *_premium(c), out=float(c.rng.uniform(600, 2500)))
        measured = float(c.rng.uniform(0.6, 1))
        for r in rows:
            if c.rng.random() < measured:
                r["metadata"] = {"tokentra": {"response_format": asked,
                                              "output_overhead": round(float(c.rng.uniform(*overhead)), 3)}}
        if kind == "few":  # a handful measured among plenty that were not (streams)
            rows += _calls(c, _interactive(c, _n(c, 600, 1200)), f, rows[0]["provider"], rows[0]["model"])
        return rows, f
    return build


def _prefixes(kind: str) -> Callable[[_Ctx], tuple[list[dict], str]]:
    def build(c: _Ctx) -> tuple[list[dict], str]:
        f = c.feature("doc-qa")
        lo, hi = (300, 900) if kind == "short" else (1500, 8000)
        docs = [(uuid.uuid4().hex, int(c.rng.integers(lo, hi))) for _ in range(int(c.rng.integers(2, 9)))]
        provider, model = _premium(c)
        gaps = (400, 3600) if kind == "sparse" else (10, 250)
        rows: list[dict] = []
        for start in _anytime(c, int(c.rng.integers(80, 250))):
            doc, at = docs[int(c.rng.integers(0, len(docs)))], start
            for _ in range(int(c.rng.integers(2, 12))):
                question = int(c.rng.integers(30, 400))
                row = _calls(c, [at], f, provider, model)[0]
                row["input_tokens"] = doc[1] + question  # the document is all of the prefix, never cut
                row["metadata"] = {"tokentra": {"prefix_hash": doc[0],
                                                "prefix_share": round(doc[1] / max(row["input_tokens"], 1), 6)}}
                rows.append(row)
                at += timedelta(seconds=float(c.rng.uniform(*gaps)))
        return rows, f
    return build


def _users(kind: str) -> Callable[[_Ctx], tuple[list[dict], str]]:
    """Every call of the organization by end user; one user `ratio` times the others' cost per call."""
    def build(c: _Ctx) -> tuple[list[dict], str]:
        f = c.feature("assistant")
        heavy = f"heavy-{uuid.uuid4().hex[:6]}"
        ratio, share = {"heavy": (c.rng.uniform(8, 30), c.rng.uniform(0.25, 0.6)),
                        "pricey": (c.rng.uniform(1.5, 3), c.rng.uniform(0.25, 0.6)),
                        "small": (c.rng.uniform(8, 30), c.rng.uniform(0.02, 0.08))}[kind]
        provider, model = _premium(c)
        inp, out = float(c.rng.uniform(2000, 6000)), float(c.rng.uniform(200, 700))
        rows = _calls(c, _interactive(c, _n(c)), f, provider, model, inp=inp, out=out)
        # the heavy user's calls: `share` of the organization's cost at `ratio` times the cost per call
        light_cost = len(rows)
        heavy_calls = max(5, round(share / (1 - share) * light_cost / ratio))
        c.users = [heavy]
        rows += _calls(c, _interactive(c, heavy_calls), f, provider, model, inp=inp * float(ratio),
                       out=out * float(ratio))
        return rows, heavy
    return build


# kind -> (category the scenario plants or None for a negative, builder returning rows and the scope)
KINDS: dict[str, tuple[str | None, Callable[[_Ctx], tuple[list[dict], str]]]] = {
    "error_reduction+": ("error_reduction", _rate("error_reduction", 0.08, 0.3)),
    "error_reduction-": (None, _rate("error_reduction", 0.0, 0.03)),
    "timeout_cost_analysis+": ("timeout_cost_analysis", _rate("timeout_cost_analysis", 0.035, 0.15)),
    "timeout_cost_analysis-": (None, _rate("timeout_cost_analysis", 0.0, 0.012)),
    "abandoned_request_detection+": ("abandoned_request_detection", _rate("abandoned_request_detection", 0.035, 0.2)),
    "abandoned_request_detection-": (None, _rate("abandoned_request_detection", 0.0, 0.012)),
    "retry_storm_detection+counted": ("retry_storm_detection", _retries_counted),
    "retry_storm_detection+prompt_hash": ("retry_storm_detection", _retries_hashed),
    "retry_storm_detection-duplicates": (None, _duplicates),
    "retry_storm_detection-rare": (None, _rare_retries),
    "time_based_optimization+short_window": ("time_based_optimization", _scheduled("short")),
    "time_based_optimization+long_window": ("time_based_optimization", _scheduled("long")),
    "time_based_optimization+twice_a_day": ("time_based_optimization", _scheduled("twice")),
    "time_based_optimization+unhurried": ("time_based_optimization", _unhurried),
    "time_based_optimization-workday": (None, _human("workday")),
    "time_based_optimization-interactive": (None, _human("interactive")),
    "time_based_optimization-evening_streams": (None, _human("evening")),
    "time_based_optimization-impatient": (None, _human("impatient")),
    "time_based_optimization-backfill": (None, _human("backfill")),
    "quality_cost_pareto+same_quality": ("quality_cost_pareto", _quality("same")),
    "quality_cost_pareto-worse": (None, _quality("worse")),
    "quality_cost_pareto-sparse": (None, _quality("sparse")),
    "output_format_optimization+overhead": ("output_format_optimization", _formats("overhead")),
    "output_format_optimization-compact": (None, _formats("compact")),
    "output_format_optimization-few": (None, _formats("few")),
    "partial_response_caching+bursts": ("partial_response_caching", _prefixes("bursts")),
    "partial_response_caching-sparse": (None, _prefixes("sparse")),
    "partial_response_caching-short": (None, _prefixes("short")),
    "business_outcome_attribution+heavy": ("business_outcome_attribution", _users("heavy")),
    "business_outcome_attribution-pricey": (None, _users("pricey")),
    "business_outcome_attribution-small": (None, _users("small")),
}


def scenario(kind: str, rng: np.random.Generator, now: datetime) -> Scenario:
    """One organization's month: the scenario's feature (or end user), history of 10 to 30 days."""
    category, build = KINDS[kind]
    c = _Ctx(rng, now, int(rng.integers(12, 31)), [f"user-{i}" for i in range(int(rng.integers(6, 30)))])
    rows, scope = build(c)
    rows = [r for r in rows if r["occurred_at"] < now]
    return Scenario(kind, rows, {(category, scope)} if category else set(), c.streamed)


def load_scenario(conn, org_id: str, s: Scenario) -> None:
    """Store a scenario's rows as ingest would (priced), its streamed calls marked as such."""
    load_rows(conn, org_id, s.rows)
    if s.streamed:
        conn.execute("update public.usage_records set is_streaming = true where org_id = %s and request_id = any(%s)",
                     (org_id, list(s.streamed)))
