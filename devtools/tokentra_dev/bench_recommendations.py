"""`tokentra bench recommendations`: organizations with one planted inefficiency each (and clean ones),
the engine run over them, and per category: found or not, and the error of the savings estimate against
the true savings of the planted rows (computed from the rows themselves, at the pricing tables' prices).

The generator is also what tests/intelligence uses to plant each pattern at a small scale.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from psycopg.types.json import Jsonb

from tokentra_cli import admin
from tokentra_core.db import connect

__all__ = ["CATEGORIES", "clean_rows", "load_rows", "plant", "run", "true_savings"]

COLUMNS = (
    "occurred_at",
    "request_id",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "status",
    "retry_count",
    "is_timeout",
    "cache_hit",
    "prompt_hash",
    "task_type",
    "feature",
    "team",
    "latency_ms",
    "end_user_id",
    "system_prompt_hash",
)


PREFIX_TOKENS = 3000  # the planted system prompt's length


def _row(at: datetime, rng: np.random.Generator, **over) -> dict:
    row = {
        "occurred_at": at,
        "request_id": str(uuid.uuid4()),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": int(rng.integers(400, 2000)),
        "output_tokens": int(rng.integers(50, 400)),
        "status": "success",
        "retry_count": 0,
        "is_timeout": False,
        "cache_hit": False,
        "prompt_hash": uuid.uuid4().hex,
        "task_type": "summarization",
        "feature": "summarize",
        "team": "core",
        "end_user_id": f"user-{int(rng.integers(0, 20))}",
        "system_prompt_hash": None,
        "latency_ms": int(rng.integers(200, 3000)),
    }
    row.update(over)
    return row


def _times(n: int, now: datetime, rng: np.random.Generator, days: int = 30) -> list[datetime]:
    secs = np.sort(rng.uniform(60, days * 86400 - 3600, n))
    return [now - timedelta(seconds=float(s)) for s in secs[::-1]]


def clean_rows(n: int, now: datetime, rng: np.random.Generator) -> list[dict]:
    """Healthy traffic: a cheap model on a mid-tier task, unique prompts, no errors, retries or timeouts;
    with benign signals: one model per feature under quality feedback, compact structured answers, and
    prompt prefixes that never repeat."""
    return [
        _row(t, rng, feature=f"feature-{i % 3}", quality_score=round(float(rng.uniform(0.6, 1.0)), 3),
             metadata={"tokentra": {"response_format": "json_schema",
                                    "output_overhead": round(float(rng.uniform(0, 0.05)), 3),
                                    "prefix_hash": uuid.uuid4().hex, "prefix_share": 0.8}})
        for i, t in enumerate(_times(n, now, rng))
    ]


def _clip(x: float) -> float:
    return round(min(max(x, 0.0), 1.0), 3)


def _doc_sessions(n: int, now: datetime, rng: np.random.Generator) -> list[tuple[datetime, int]]:
    """Bursts of questions on one of five documents: (time, document), `n` of them, each burst's calls
    a few minutes apart at most (inside a prompt cache's lifetime)."""
    out: list[tuple[datetime, int]] = []
    while len(out) < n:
        at, doc = now - timedelta(seconds=float(rng.uniform(3600, 29.9 * 86400))), int(rng.integers(0, 5))
        for _ in range(int(rng.integers(3, 11))):
            out.append((at, doc))
            at += timedelta(seconds=float(rng.uniform(20, 200)))
    return sorted(out[:n])


def plant(category: str, n: int, now: datetime, rng: np.random.Generator) -> list[dict]:  # noqa: C901
    """Traffic of one feature carrying the planted pattern (plus its clean share), `n` rows."""
    times = _times(n, now, rng)
    base = _row  # the reliability and caching patterns ride on a mid-tier task on a large model

    def _row_big(at, rng, **over):  # noqa: ANN001, ANN202
        return base(at, rng, **{"model": "gpt-4o", "input_tokens": int(rng.integers(2000, 8000)), **over})

    if category not in ("task_aware_routing", "model_version_optimization"):
        _r = _row_big
    else:
        _r = base
    if category == "task_aware_routing":
        return [_r(t, rng, model="gpt-4o", task_type="classification", feature="classify") for t in times]
    if category == "model_version_optimization":
        return [_r(t, rng, model="gpt-4-turbo", task_type="code_generation", feature="legacy") for t in times]
    if category == "error_reduction":
        return [
            _r(
                t,
                rng,
                feature="extract",
                status="error" if rng.random() < 0.15 else "success",
                output_tokens=int(rng.integers(50, 400)),
            )
            for t in times
        ]
    if category == "retry_storm_detection":
        return [
            _r(t, rng, feature="agent", retry_count=int(rng.integers(1, 4)) if rng.random() < 0.4 else 0)
            for t in times
        ]
    if category == "timeout_cost_analysis":
        rows = []
        for t in times:
            slow = rng.random() < 0.08
            rows.append(
                _r(
                    t,
                    rng,
                    feature="report",
                    status="timeout" if slow else "success",
                    is_timeout=slow,
                    latency_ms=60000 if slow else int(rng.integers(200, 3000)),
                )
            )
        return rows
    if category == "request_deduplication":
        rows = []
        for t in times[: int(n * 0.8)]:
            rows.append(_r(t, rng, feature="search"))
            if rng.random() < 0.25:
                rows.append(
                    {**rows[-1], "request_id": str(uuid.uuid4()), "occurred_at": t + timedelta(seconds=5)}
                )
        return rows
    if category == "semantic_caching":
        rows: list[dict] = []
        for t in times:
            if rows and rng.random() < 0.3:
                earlier = rows[int(rng.integers(0, len(rows)))]
                rows.append({**earlier, "request_id": str(uuid.uuid4()), "occurred_at": t})
            else:
                rows.append(_r(t, rng, feature="faq-bot", task_type="summarization"))
        rows.sort(key=lambda r: r["occurred_at"])
        return rows
    if category == "abandoned_request_detection":
        return [
            _r(t, rng, feature="chat", status="cancelled" if rng.random() < 0.1 else "success") for t in times
        ]
    if category == "embedding_optimization":
        return [
            _r(
                t,
                rng,
                model="text-embedding-3-large",
                feature="rag-index",
                output_tokens=0,
                input_tokens=int(rng.integers(20000, 60000)),
                task_type=None,
            )
            for t in times
        ]
    if category == "business_outcome_attribution":
        return [
            _r(t, rng, feature="assistant", end_user_id=f"user-{i % 10}")
            if i % 10
            else _r(
                t,
                rng,
                feature="assistant",
                end_user_id="user-0",
                input_tokens=int(rng.integers(60000, 90000)),
            )
            for i, t in enumerate(times)
        ]
    if category == "context_window_efficiency":
        prompts = [uuid.uuid4().hex for _ in range(3)]
        return [
            _r(
                t,
                rng,
                feature="support-bot",
                system_prompt_hash=prompts[i % 3],
                input_tokens=PREFIX_TOKENS + int(rng.integers(50, 800)),
            )
            for i, t in enumerate(times)
        ]
    if category == "io_ratio_optimization":
        return [
            _r(
                t,
                rng,
                feature="writer",
                input_tokens=int(rng.integers(200, 400)),
                output_tokens=int(min(rng.lognormal(6.5, 0.9), 16000)),
            )
            for t in times
        ]
    if category == "provider_arbitrage":
        # deepseek-v4-pro through fireworks; deepseek's own API lists it lower (pricing tables).
        return [_r(t, rng, provider="fireworks", model="deepseek-v4-pro", feature="reasoner") for t in times]
    if category == "rate_limit_optimization":
        return [
            _r(t, rng, feature="bulk-import", status="rate_limited" if rng.random() < 0.1 else "success")
            for t in times
        ]
    if category == "prompt_compression":
        return [_r(t, rng, feature="rag-answer", input_tokens=int(rng.integers(10000, 16000))) for t in times]
    if category == "time_based_optimization":
        days = [
            now.replace(hour=2, minute=0, second=0, microsecond=0) - timedelta(days=d) for d in range(1, 30)
        ]
        return [
            _r(days[i % len(days)] + timedelta(seconds=float(rng.uniform(0, 5400))), rng, feature="nightly")
            for i in range(n)
        ]
    if category == "quality_cost_pareto":
        # The feature runs on two models whose scored quality is the same within noise.
        rows = []
        for t in times:
            model, quality = ("gpt-4o", 0.84) if rng.random() < 0.6 else ("gpt-4o-mini", 0.845)
            scored = rng.random() < 0.7
            rows.append(_r(t, rng, feature="answers", model=model,
                           quality_score=_clip(rng.normal(quality, 0.08)) if scored else None))
        return rows
    if category == "output_format_optimization":
        # JSON asked for in json_object mode, answered pretty-printed inside prose and code fences.
        return [
            _r(t, rng, feature="extract", output_tokens=int(rng.integers(800, 2500)),
               metadata={"tokentra": {"response_format": "json_object",
                                      "output_overhead": round(float(rng.uniform(0.2, 0.4)), 3)}})
            for t in times
        ]
    if category == "partial_response_caching":
        # Questions on a few long documents, each sent as the first message; nothing read from the cache.
        docs = [(uuid.uuid4().hex, tokens) for tokens in (2000, 3000, 4000, 5000, 6000)]
        rows = []
        for t, d in _doc_sessions(n, now, rng):
            question = int(rng.integers(50, 300))
            rows.append(_r(t, rng, feature="doc-qa", provider="anthropic", model="claude-sonnet-4-0",
                           input_tokens=docs[d][1] + question,
                           metadata={"tokentra": {"prefix_hash": docs[d][0],
                                                  "prefix_share": round(docs[d][1] / (docs[d][1] + question), 6)}}))
        return rows
    raise KeyError(category)


CATEGORIES = (
    "task_aware_routing",
    "model_version_optimization",
    "request_deduplication",
    "semantic_caching",
    "retry_storm_detection",
    "timeout_cost_analysis",
    "error_reduction",
    "time_based_optimization",
    "abandoned_request_detection",
    "embedding_optimization",
    "business_outcome_attribution",
    "context_window_efficiency",
    "io_ratio_optimization",
    "prompt_compression",
    "provider_arbitrage",
    "rate_limit_optimization",
    "quality_cost_pareto",
    "output_format_optimization",
    "partial_response_caching",
)


def load_rows(conn, org_id: str, rows: list[dict]) -> None:
    """Store rows as ingest would, each priced by private.usage_cost at its model's price; a row's
    `quality_score` is sent as feedback would send it (private.record_feedback)."""
    conn.execute(
        "create temp table planted (org_id uuid, occurred_at timestamptz, request_id text, provider text, "
        "model text, input_tokens bigint, output_tokens bigint, status text, retry_count int, "
        "is_timeout boolean, cache_hit boolean, prompt_hash text, task_type text, feature text, team text, "
        "latency_ms int, end_user_id text, system_prompt_hash text, metadata jsonb) on commit drop"
    )
    with conn.cursor().copy(f"copy planted (org_id, {', '.join(COLUMNS)}, metadata) from stdin") as copy:
        for r in rows:
            copy.write_row([org_id, *(r[c] for c in COLUMNS), json.dumps(r.get("metadata") or {})])
    conn.execute(f"""
        insert into public.usage_records (org_id, {", ".join(COLUMNS)}, metadata, cost_usd, priced)
        select p.org_id, {", ".join("p." + c for c in COLUMNS)}, p.metadata, c.cost_usd, c.cost_usd is not null
        from planted p
        cross join lateral private.usage_cost(p.provider, p.model, p.occurred_at, p.input_tokens,
          p.output_tokens,
                                              0, 0, 0) c""")
    conn.execute("drop table planted")
    scores = [{"idx": i, "request_id": r["request_id"], "score": r["quality_score"]}
              for i, r in enumerate(rows) if r.get("quality_score") is not None]
    if scores:
        conn.execute("select count(*) from private.record_feedback(%s, %s)", (org_id, Jsonb(scores)))


def true_savings(conn, org_id: str, category: str) -> float:
    """What the planted pattern really costs per month (30 days of rows), from the stored rows."""
    q = {
        "task_aware_routing": """select sum(r.cost_usd - c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost(r.provider, 'gpt-4o-mini', now(), r.input_tokens,
              r.output_tokens,
              0, 0, 0) c where r.org_id = %s and r.feature = 'classify'""",
        "model_version_optimization": """select sum(r.cost_usd - c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost(r.provider, 'gpt-4o', now(), r.input_tokens,
              r.output_tokens,
                                                  0, 0, 0) c where r.org_id = %s and r.feature = 'legacy'""",
        "error_reduction": "select sum(cost_usd) from public.usage_records where org_id = %s and "
        "status = 'error'",
        "retry_storm_detection": "select sum(cost_usd * retry_count) from public.usage_records "
        "where org_id = %s",
        "timeout_cost_analysis": "select sum(cost_usd) from public.usage_records where org_id = %s "
        "and is_timeout",
        "request_deduplication": """select sum(cost_usd) from (select cost_usd, occurred_at - lag(occurred_at)
            over (partition by prompt_hash order by occurred_at) as gap from public.usage_records where
              org_id = %s) x
            where gap < interval '60 seconds'""",
        "time_based_optimization": """select sum(r.cost_usd - c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost(r.provider, r.model, now(), r.input_tokens, r.output_tokens,
              0, 0, 0, 'batch') c where r.org_id = %s and r.feature = 'nightly'""",
        "abandoned_request_detection": "select sum(cost_usd) from public.usage_records where org_id = %s "
        "and status = 'cancelled'",
        "embedding_optimization": """select sum(r.cost_usd - c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost(r.provider, 'text-embedding-3-small', now(), r.input_tokens,
              r.output_tokens, 0, 0, 0) c where r.org_id = %s and r.feature = 'rag-index'""",
        "business_outcome_attribution": """select sum(cost_usd) - count(*) * (select percentile_cont(0.5)
            within group (order by c) from (select sum(cost_usd) / count(*) as c from public.usage_records
            where org_id = %(org)s group by end_user_id) m) from public.usage_records
            where org_id = %(org)s and end_user_id = 'user-0'""",
        "context_window_efficiency": """select sum(a.cost_usd - c.cost_usd) from (select *, row_number() over
            (partition by system_prompt_hash order by occurred_at) as nth from public.usage_records
            where org_id = %(org)s and system_prompt_hash is not null) a
            cross join lateral private.usage_cost(a.provider, a.model, now(), a.input_tokens, a.output_tokens,
              3000, 0, 0) c where a.nth > 1""",
        "io_ratio_optimization": """with m as (select percentile_disc(0.5) within group
            (order by output_tokens)
            as p50 from public.usage_records where org_id = %(org)s and feature = 'writer')
            select sum(c.cost_usd) from public.usage_records r cross join m
            cross join lateral private.usage_cost(r.provider, r.model, now(), 0, greatest(r.output_tokens -
              m.p50, 0),
              0, 0, 0) c where r.org_id = %(org)s and r.feature = 'writer'""",
        "prompt_compression": """select sum(c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost(r.provider, r.model, now(), (r.input_tokens *
              0.3)::bigint, 0,
              0, 0, 0) c where r.org_id = %(org)s and r.feature = 'rag-answer'""",
        "provider_arbitrage": """select sum(r.cost_usd - c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost('deepseek', r.model, now(), r.input_tokens, r.output_tokens,
              0, 0, 0) c where r.org_id = %s and r.feature = 'reasoner'""",
        "rate_limit_optimization": "select sum(cost_usd) from public.usage_records where org_id = %s "
        "and status = 'rate_limited'",
        "quality_cost_pareto": """select sum(r.cost_usd - c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost(r.provider, 'gpt-4o-mini', now(), r.input_tokens,
              r.output_tokens, 0, 0, 0) c where r.org_id = %s and r.feature = 'answers' and r.model = 'gpt-4o'""",
        "output_format_optimization": """select sum(c.cost_usd) from public.usage_records r
            cross join lateral private.usage_cost(r.provider, r.model, now(), 0, (r.output_tokens *
              (r.metadata -> 'tokentra' ->> 'output_overhead')::float8)::bigint, 0, 0, 0) c
            where r.org_id = %s and r.feature = 'extract'""",
        # Each call within 5 minutes of the previous one on its document reads the document from the
        # cache; the first of each run writes it.
        "partial_response_caching": """select sum(x.cost_usd - c.cost_usd) from (
              select r.*, round((r.metadata -> 'tokentra' ->> 'prefix_share')::float8 * r.input_tokens)::bigint
                       as prefix, r.occurred_at - lag(r.occurred_at) over (partition by
                       r.metadata -> 'tokentra' ->> 'prefix_hash' order by r.occurred_at) <= interval '5 minutes'
                       as warm
              from public.usage_records r where r.org_id = %s and r.feature = 'doc-qa') x
            cross join lateral private.usage_cost(x.provider, x.model, now(), x.input_tokens, x.output_tokens,
              case when x.warm then x.prefix else 0 end, case when x.warm then 0 else x.prefix end, 0) c""",
        "semantic_caching": """select sum(cost_usd) from (select cost_usd, occurred_at - lag(occurred_at)
            over (partition by prompt_hash order by occurred_at) as gap from public.usage_records where
              org_id = %s) x
            where gap >= interval '60 seconds'""",
    }[category]
    row = conn.execute(q, {"org": org_id} if "%(org)s" in q else (org_id,)).fetchone()
    return float(next(iter(row.values())) or 0)


def run(as_json: bool = False, rows_per_org: int = 3000, clean_orgs: int = 5, seed: int = 5) -> dict:
    from tokentra_worker.recommendations import run_org

    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    out: dict = {"categories": {}, "clean": {}}
    made = []
    with connect() as conn:
        try:
            for category in CATEGORIES:
                org = admin.create_org(conn, f"bench-rec-{category}-{uuid.uuid4().hex[:6]}")
                made.append(org.id)
                load_rows(
                    conn, str(org.id), plant(category, rows_per_org, now, rng) + clean_rows(300, now, rng)
                )
                truth = true_savings(conn, str(org.id), category)
                t0 = time.perf_counter()
                run_org(conn, str(org.id), now)
                took = time.perf_counter() - t0
                recs = conn.execute(
                    "select category, estimated_monthly_savings::float8 as s from public.recommendations "
                    "where org_id = %s",
                    (org.id,),
                ).fetchall()
                mine = [r["s"] for r in recs if r["category"] == category]
                est = sum(mine)
                out["categories"][category] = {
                    "found": bool(mine),
                    "estimated": round(est, 2),
                    "true": round(truth, 2),
                    "error": round(abs(est - truth) / truth, 4) if truth else None,
                    "others": sorted({r["category"] for r in recs} - {category}),
                    "seconds": round(took, 3),
                }
            for i in range(clean_orgs):
                org = admin.create_org(conn, f"bench-rec-clean-{uuid.uuid4().hex[:6]}")
                made.append(org.id)
                load_rows(conn, str(org.id), clean_rows(rows_per_org, now, rng))
                run_org(conn, str(org.id), now)
                n = conn.execute(
                    "select count(*) from public.recommendations where org_id = %s", (org.id,)
                ).fetchone()["count"]
                out["clean"][f"clean-{i}"] = n
        finally:
            conn.rollback()  # nothing of the bench stays behind
    if as_json:
        print(json.dumps(out))
        return out
    print(f"{'category':28s} found  estimated      true   error  also fired")
    for c, m in out["categories"].items():
        err = f"{m['error']:.1%}" if m["error"] is not None else "-"
        print(
            f"{c:28s} {'yes' if m['found'] else 'NO ':5s} {m['estimated']:10.2f} {m['true']:9.2f} {err:>7s}  "
            f"{', '.join(m['others']) or '-'}"
        )
    print(
        f"clean organizations: {sum(out['clean'].values())} recommendations over {clean_orgs} organizations"
    )
    if len(CATEGORIES) < 19:
        print(f"not implemented: {19 - len(CATEGORIES)} of the 19 categories (see worker/recommendations)")
    return out
