"""A realistic month of LLM traffic for one organization, with known wastes planted in it.

Used by `tokentra demo` (and later by the benchmarks): several teams, projects, features and models;
daily and weekly seasonality; retry storms, repeated prompts, simple tasks on premium models, long
prompts and a cost spike, each placed where the intelligence jobs should find it.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta


@dataclass(frozen=True)
class Workload:
    feature: str
    team: str
    project: str
    provider: str
    model: str
    task_type: str
    per_hour: float  # mean calls per hour at the daily peak on a weekday
    input_tokens: int
    output_tokens: int
    cached_share: float = 0.0


WORKLOADS = [
    Workload("chat-assistant", "support", "helpdesk", "anthropic", "claude-sonnet-4-20250514", "conversation",
             40, 2500, 450, 0.3),
    Workload("summarize", "search", "insights", "openai", "gpt-4o", "summarization", 25, 6000, 350),
    # Planted: a simple classification task on a premium model.
    Workload("classify-ticket", "support", "helpdesk", "openai", "gpt-4o", "classification", 30, 600, 8),
    Workload("extract-entities", "growth", "crm-sync", "openai", "gpt-4o-mini", "entity_extraction", 20, 900, 120),
    Workload("agent-planner", "platform", "copilot", "anthropic", "claude-3-5-haiku-20241022", "planning",
             10, 3000, 600, 0.5),
    Workload("embed-docs", "search", "insights", "openai", "text-embedding-3-small", "embedding", 15, 800, 0),
    # Planted: long prompts, sent whole and uncached (prompt compression).
    Workload("review-contract", "legal", "contracts", "openai", "gpt-4o", "analysis", 5, 12000, 500),
]
USERS = [f"user-{i:03d}" for i in range(60)]
# Planted: the same prompt sent again and again (dedup / caching candidates).
REPEATED_PROMPT = hashlib.sha256(b"demo: what is your refund policy?").hexdigest()


def _hash(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _season(ts: datetime) -> float:
    """Load factor: a daily wave peaking mid-afternoon UTC, and quieter weekends."""
    daily = 0.55 + 0.45 * math.sin((ts.hour - 8) / 24 * 2 * math.pi)
    return max(0.08, daily) * (0.45 if ts.weekday() >= 5 else 1.0)


SPIKE_DAY, SPIKE_HOURS = 24, (3, 6)  # the planted summarize spike: 03:00-06:00 UTC on the day-24 date


def _first_hour(days: int, end: datetime) -> datetime:
    """Where the traffic starts: midnight UTC on the Monday on or before the date `days` days before
    `end`'s. Every event is drawn in order from one seeded stream, and the load follows the hour of the day
    and the day of the week: started on a Monday, the traffic's hours are the same (only its dates move)
    whatever the day and hour it is generated at, and so is what the detectors find in it."""
    first = end.astimezone(UTC).date() - timedelta(days=days)
    return datetime.combine(first - timedelta(days=first.weekday()), time(), UTC)


def spike_window(days: int, end: datetime, spike_day: int = SPIKE_DAY) -> tuple[datetime, datetime] | None:
    """The planted spike's hours: SPIKE_HOURS on the calendar date `spike_day` days into the traffic;
    None when the traffic is too short to hold it (it then always ends before `end`)."""
    if days <= spike_day:
        return None
    first = _first_hour(days, end) + timedelta(days=spike_day, hours=SPIKE_HOURS[0])
    return first, first + timedelta(hours=SPIKE_HOURS[1] - SPIKE_HOURS[0])


def month_of_traffic(days: int = 30, end: datetime | None = None, seed: int = 7,
                     spike_day: int = SPIKE_DAY) -> Iterator[dict]:
    """Yield usage events hour by hour from the Monday at least `days` days before `end` (default: now)
    up to `end`'s hour, that hour excluded."""
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = _first_hour(days, end)
    spike = spike_window(days, end, spike_day)
    for hour in range(int((end - start) / timedelta(hours=1))):
        ts = start + timedelta(hours=hour)
        day = hour // 24
        for w in WORKLOADS:
            rate = w.per_hour * _season(ts)
            # Planted cost spike: summarize triples for three night hours on the spike day.
            if w.feature == "summarize" and spike and spike[0] <= ts < spike[1]:
                rate *= 3 / max(_season(ts), 0.1)
            for _ in range(_poisson(rng, rate)):
                yield _event(rng, w, ts + timedelta(seconds=rng.uniform(0, 3599)))
        # Planted retry storm: every few days a burst of rate-limited retries on the agent planner.
        if day % 6 == 2 and ts.hour == 14:
            for _ in range(120):
                yield _event(rng, WORKLOADS[4], ts + timedelta(seconds=rng.uniform(0, 600)), storm=True)


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method is fine for the small rates here.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _event(rng: random.Random, w: Workload, ts: datetime, storm: bool = False) -> dict:
    input_tokens = max(1, int(rng.lognormvariate(math.log(w.input_tokens), 0.35)))
    # Planted long prompts: a tail of summarize calls with very large contexts.
    if w.feature == "summarize" and rng.random() < 0.08:
        input_tokens = rng.randint(60_000, 110_000)
    output_tokens = 0 if w.output_tokens == 0 else max(1, int(rng.lognormvariate(math.log(w.output_tokens), 0.4)))
    cached = int(input_tokens * w.cached_share * rng.uniform(0.6, 1.0))
    prompt = REPEATED_PROMPT if w.feature == "chat-assistant" and rng.random() < 0.2 else _hash(rng.random())
    status, error_code, retry_count = "success", None, 0
    if storm:
        status, error_code, retry_count = ("rate_limited", "429", rng.randint(1, 5)) if rng.random() < 0.7 \
            else ("success", None, rng.randint(1, 5))
    elif rng.random() < 0.01:
        status, error_code = "error", "500"
    failed = status != "success"
    return {
        "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "provider": w.provider,
        "model": w.model,
        "endpoint": "embeddings" if w.task_type == "embedding" else
                    ("messages" if w.provider == "anthropic" else "chat.completions"),
        "input_tokens": input_tokens,
        "output_tokens": 0 if failed else output_tokens,
        "cached_tokens": 0 if failed else cached,
        "latency_ms": int(rng.lognormvariate(math.log(300 + output_tokens * 12), 0.3)),
        "status": status,
        "error_code": error_code,
        "retry_count": retry_count,
        "prompt_hash": prompt,
        "task_type": w.task_type,
        "metadata": {"feature": w.feature, "team": w.team, "project": w.project, "user_id": rng.choice(USERS)},
        "timestamp": ts.isoformat(),
    }
