"""`tokentra bench route` and `tokentra bench routing`.

route    How long a routing decision takes: in process (tokentra.routing.decide over the snapshot
         private.routing_snapshot returns for an organization with 30 rules, an experiment among them)
         and over HTTP (POST /functions/v1/route on a local functions server), beside POST /budget/check,
         an API-key endpoint of the same shape, and an unknown path (the server's and middleware's floor),
         calls interleaved in the same run, timed by a lean keep-alive client (http.client), then a
         quarter as many by httpx for comparison. Targets: p99 under 1 ms in process, under 5 ms over HTTP.
routing  What routing saves at a quality floor on generated traffic whose true quality per model and
         task category the bench knows and the router does not: the router sees priors (the truth plus
         noise, as published tables are) updated with simulated feedback scores exactly as
         private.model_quality blends them, and chooses per call; cost and true quality are then compared
         with always the asked model and always the cheapest model. Seeds are drawn fresh each run
         (printed, so a run can be repeated with --seeds); none was used to develop the router.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console

from tokentra.routing import ModelInfo, RouteRequest, Snapshot, decide, estimate_cost
from tokentra_cli import admin
from tokentra_cli.functions_server import start_functions, stop_functions
from tokentra_core.db import connect
from tokentra_core.settings import get_settings

console = Console()
CATEGORIES = ("chat", "content", "analysis", "coding", "reasoning", "creative")
TASKS = {"chat": "faq", "content": "summarization", "analysis": "classification", "coding": "code_generation",
         "reasoning": "math", "creative": "brainstorming"}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# ---------------------------------------------------------------- bench route
def _bench_org(rng: random.Random) -> tuple[Any, Any]:
    with connect() as conn:
        org = admin.create_org(conn, f"bench-route-{rng.randrange(10**6)}")
        key = admin.create_key(conn, org.id, name="bench")
        conn.execute("update public.api_keys set rate_limit_per_minute = 1000000 where id = %s", (key.id,))
        features = [f"feature-{i}" for i in range(20)]
        for i in range(30):
            kind = rng.random()
            if kind < 0.5:
                conditions: Any = {"feature": rng.choice(features), "task_type": rng.choice(list(TASKS.values()))}
                action = {"type": "route_to_model", "provider": "openai", "model": "gpt-4o-mini"}
            elif kind < 0.8:
                conditions = [{"field": "input_tokens", "operator": "gt", "value": rng.randint(1000, 50000)},
                              {"field": "model", "operator": "regex", "value": "^gpt-4o(-20.*)?$"}]
                action = {"type": "enable_cache", "ttl_seconds": 300}
            else:
                conditions = [{"field": "team", "operator": "in", "value": [f"team-{rng.randrange(9)}"]}]
                action = {"type": "rate_limit", "requests_per_minute": 600}
            conn.execute("insert into public.routing_rules (org_id, name, priority, conditions, action, traffic_share) "
                         "values (%s, %s, %s, %s::jsonb, %s::jsonb, %s)",
                         (org.id, f"bench-{i}", rng.randint(1, 200), json.dumps(conditions), json.dumps(action),
                          0.5 if i == 0 else 1))
        conn.commit()
    return org, key


def _requests(rng: random.Random, snapshot: Snapshot, n: int, strategy: bool) -> list[dict[str, Any]]:
    names = [m.model for m in snapshot.models if m.provider == "openai" and m.kind == "text"] or ["gpt-4o"]
    out = []
    for _ in range(n):
        out.append({
            "model": rng.choice(names + ["gpt-4o"] * 5), "provider": "openai",
            "task_type": rng.choice(list(TASKS.values())), "input_tokens": int(10 ** rng.uniform(1, 4.7)),
            "feature": f"feature-{rng.randrange(25)}", "team": f"team-{rng.randrange(12)}",
            "user_id": f"u-{rng.randrange(10**6)}",
            "strategy": rng.choice(["cheapest", "fastest", "balanced", "quality"]) if strategy else None,
            "quality_floor": round(rng.uniform(0.6, 0.9), 2) if strategy else None,
        })
    return out


def _in_process(snapshot: Snapshot, bodies: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Wall-clock and thread CPU microseconds per decision. On a loaded machine the wall clock's tail is
    the scheduler's time slices; the thread's CPU time is what the decision itself costs."""
    requests = [RouteRequest(**b) for b in bodies]
    for r in requests[:200]:  # warm up
        decide(r, snapshot)
    wall, cpu = [], []
    for r in requests:
        c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
        decide(r, snapshot)
        wall.append((time.perf_counter_ns() - t0) / 1e3)
        cpu.append((time.thread_time_ns() - c0) / 1e3)
    return wall, cpu


class _Client:
    """A lean keep-alive HTTP/1.1 client (http.client, one connection, bodies serialised beforehand): its
    own cost per call is tens of microseconds, where httpx's is 1-2 ms here, so it times the server."""

    name = "http.client keep-alive"

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self.prefix = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", self.prefix + path, body, self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def close(self) -> None:
        self.conn.close()


class _Httpx:
    """httpx's synchronous client, as the SDK and most Python callers use, for comparison."""

    name = "httpx.Client"

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.client = httpx.Client(headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                                   timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        r = self.client.post(self.url + path, content=body)
        return r.status_code, r.content

    def close(self) -> None:
        self.client.close()


def _over_http(client: _Client | _Httpx, calls: dict[str, list[bytes]], expect: dict[str, int]
               ) -> dict[str, list[float]]:
    """Milliseconds per call for each path, the paths' calls interleaved (route, baseline, route, ...) so a
    change of load on the shared machine falls on all of them alike."""
    times: dict[str, list[float]] = {path: [] for path in calls}
    n = min(len(bodies) for bodies in calls.values())
    try:
        for i in range(-min(50, n), n):  # the first 50 of each warm up
            for path, bodies in calls.items():
                t0 = time.perf_counter()
                status, body = client.post(path, bodies[i])
                took = (time.perf_counter() - t0) * 1e3
                if status != expect[path]:
                    raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
                if i >= 0:
                    times[path].append(took)
    finally:
        client.close()
    return times


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 3), "p99": round(_pct(values, 99), 3)}


def run_route(decisions: int = 20_000, http_calls: int = 2_000, seed: int | None = None) -> dict[str, Any]:
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    org, key = _bench_org(rng)
    with connect() as conn:
        payload = conn.execute("select private.routing_snapshot(%s) as s", (org.id,)).fetchone()["s"]
    snapshot = Snapshot.from_dict(payload)
    rules_only, rules_cpu = _in_process(snapshot, _requests(rng, snapshot, decisions, strategy=False))
    with_strategy, strategy_cpu = _in_process(snapshot, _requests(rng, snapshot, decisions, strategy=True))
    proc, url = start_functions(get_settings().functions_port + 110)
    try:
        bodies = _requests(rng, snapshot, http_calls, strategy=True)
        calls = {
            "/route": [json.dumps(b).encode() for b in bodies],
            "/budget/check": [json.dumps({"model": b["model"], "team": b["team"], "feature": b["feature"]}).encode()
                              for b in bodies],
            # the floor: an unknown path goes through the server and the app's middleware, nothing else
            "/no-such-function": [b"{}"] * len(bodies),
        }
        expect = {"/route": 200, "/budget/check": 200, "/no-such-function": 404}
        lean = _over_http(_Client(url, key.key), calls, expect)
        fewer = {path: b[: max(100, len(b) // 4)] for path, b in calls.items()}
        with_httpx = _over_http(_Httpx(url, key.key), fewer, expect)
    finally:
        stop_functions(proc)
    route_ms, check_ms = lean["/route"], lean["/budget/check"]
    result = {
        "seed": seed, "rules": len(snapshot.rules), "registry_models": len(snapshot.models),
        "load_average_1m": round(os.getloadavg()[0], 2),  # the machine is shared: read figures against it
        "in_process_rules_only_us": {"p50": round(statistics.median(rules_only), 1),
                                     "p99": round(_pct(rules_only, 99), 1)},
        "in_process_with_strategy_us": {"p50": round(statistics.median(with_strategy), 1),
                                        "p99": round(_pct(with_strategy, 99), 1)},
        "in_process_with_strategy_thread_cpu_us": {"p50": round(statistics.median(strategy_cpu), 1),
                                                   "p99": round(_pct(strategy_cpu, 99), 1)},
        "in_process_rules_only_thread_cpu_us": {"p50": round(statistics.median(rules_cpu), 1),
                                                "p99": round(_pct(rules_cpu, 99), 1)},
        "in_process_p99_vs_1ms_target": round(_pct(with_strategy, 99) / 1000, 3),
        "in_process_cpu_p99_vs_1ms_target": round(_pct(strategy_cpu, 99) / 1000, 3),
        "http_client": _Client.name,
        "http_route_ms": _ms(route_ms),
        "http_budget_check_ms (baseline)": _ms(check_ms),
        "http_unknown_path_404_ms (floor)": _ms(lean["/no-such-function"]),
        "http_route_p99_vs_5ms_target": round(_pct(route_ms, 99) / 5, 3),
        "http_route_p50_vs_budget_check": round(statistics.median(route_ms) / statistics.median(check_ms), 3),
        f"same calls with {_Httpx.name} ({len(with_httpx['/route'])} each)": {
            "route_ms": _ms(with_httpx["/route"]), "budget_check_ms": _ms(with_httpx["/budget/check"]),
            "unknown_path_404_ms": _ms(with_httpx["/no-such-function"])},
    }
    console.print_json(data=result)
    return result


# ---------------------------------------------------------------- bench routing
PRIOR_WEIGHT = 20  # as private.model_quality blends priors with feedback


@dataclass
class World:
    models: list[ModelInfo]  # what the router believes (priors updated by feedback)
    truth: dict[str, dict[str, float]]  # the true quality the bench knows


def _world(rng: random.Random, n_models: int = 14, feedback_per_pair: tuple[int, int] = (0, 300)) -> World:
    models, truth = [], {}
    for i in range(n_models):
        price = 10 ** rng.uniform(-1.2, 1.2)  # $0.06 to $16 per million input tokens
        skill = min(0.97, 0.55 + 0.13 * (1.2 + math.log10(price)) + rng.gauss(0, 0.05))
        true_q = {c: min(0.99, max(0.3, skill + rng.gauss(0, 0.06))) for c in CATEGORIES}
        name = f"model-{i}"
        truth[name] = true_q
        believed = {}
        samples = {}
        for c in CATEGORIES:
            prior = min(0.99, max(0.3, true_q[c] + rng.gauss(0, 0.07)))  # published tables are noisy
            n = rng.randint(*feedback_per_pair)
            scores = sum(min(1.0, max(0.0, rng.gauss(true_q[c], 0.2))) for _ in range(n))
            believed[c] = (prior * PRIOR_WEIGHT + scores) / (PRIOR_WEIGHT + n)
            samples[c] = n
        models.append(ModelInfo(provider="sim", model=name, kind="text", input_mtok=round(price, 4),
                                output_mtok=round(price * rng.uniform(3, 5), 4), quality=believed,
                                quality_samples=samples, p50_ms=200 + 300 * price ** 0.5,
                                context_window=1_000_000))
    return World(models, truth)


def _simulate(seed: int, calls: int, floor: float) -> dict[str, float]:
    rng = random.Random(seed)
    world = _world(rng)
    snapshot = Snapshot([], world.models)
    by_name = {m.model: m for m in world.models}
    premium = sorted(world.models, key=lambda m: -(m.input_mtok or 0))[: max(3, len(world.models) // 3)]
    cheapest = min(world.models, key=lambda m: m.input_mtok or 0)
    labels = ("asked", "cheapest", "routed", "oracle")
    totals = {f"{label}_{k}": 0.0 for label in labels for k in ("cost", "quality", "below_floor")}
    totals["routed_share"] = 0.0
    for _ in range(calls):
        asked = rng.choice(premium)
        category = rng.choice(CATEGORIES)
        tin, tout = int(10 ** rng.uniform(1.5, 4)), int(10 ** rng.uniform(1, 3))
        d = decide(RouteRequest(model=asked.model, provider="sim", task_type=TASKS[category], input_tokens=tin,
                                output_tokens=tout, strategy="balanced", quality_floor=floor), snapshot)
        chosen = by_name[d.model]
        # what a router knowing the truth would pick: the cheapest model truly at the floor
        meeting = [m for m in world.models if world.truth[m.model][category] >= floor]
        oracle = (min(meeting, key=lambda m: estimate_cost(m, tin, tout) or 0) if meeting
                  else max(world.models, key=lambda m: world.truth[m.model][category]))
        for label, m in (("asked", asked), ("cheapest", cheapest), ("routed", chosen), ("oracle", oracle)):
            totals[f"{label}_cost"] += estimate_cost(m, tin, tout) or 0
            q = world.truth[m.model][category]
            totals[f"{label}_quality"] += q
            totals[f"{label}_below_floor"] += q < floor
        totals["routed_share"] += chosen is not asked
    return {k: v / calls if not k.endswith("_cost") else v for k, v in totals.items()}


def run_routing(calls: int = 20_000, floor: float = 0.8, seeds: list[int] | None = None) -> dict[str, Any]:
    seeds = seeds or [int.from_bytes(os.urandom(4), "big") for _ in range(5)]
    per_seed = []
    for seed in seeds:
        r = _simulate(seed, calls, floor)
        per_seed.append({
            "seed": seed,
            "savings_vs_asked": round(1 - r["routed_cost"] / r["asked_cost"], 4),
            "cost_vs_cheapest": round(r["routed_cost"] / r["cheapest_cost"], 3),
            "cost_vs_oracle": round(r["routed_cost"] / r["oracle_cost"], 3),
            "true_quality": {k: round(r[f"{k}_quality"], 4) for k in ("asked", "routed", "cheapest", "oracle")},
            "calls_below_floor": {k: round(r[f"{k}_below_floor"], 4) for k in ("asked", "routed", "cheapest",
                                                                                 "oracle")},
            "routed_share": round(r["routed_share"], 4),
        })
    summary = {
        "calls_per_seed": calls, "quality_floor": floor, "seeds": seeds,
        "mean_savings_vs_asked": round(statistics.mean(s["savings_vs_asked"] for s in per_seed), 4),
        "mean_routed_below_floor": round(statistics.mean(s["calls_below_floor"]["routed"] for s in per_seed), 4),
        "mean_asked_below_floor": round(statistics.mean(s["calls_below_floor"]["asked"] for s in per_seed), 4),
        "mean_cheapest_below_floor": round(statistics.mean(s["calls_below_floor"]["cheapest"] for s in per_seed), 4),
        "mean_cost_vs_oracle": round(statistics.mean(s["cost_vs_oracle"] for s in per_seed), 3),
        "per_seed": per_seed,
    }
    console.print_json(data=summary)
    return summary
