"""tokentra.routing: rules by priority with the seed's operators, sticky experiments, strategies over the
registry under a quality floor. Registries and rules are generated at random; properties are checked."""

from __future__ import annotations

import random
import statistics
import uuid

import pytest

from tokentra.routing import (
    STRATEGIES,
    Condition,
    ModelInfo,
    RouteRequest,
    Rule,
    Snapshot,
    bucket,
    decide,
    estimate_cost,
)

CATEGORIES = ("chat", "content", "analysis", "coding", "reasoning", "creative")


def registry(rng: random.Random, n: int, providers=("openai", "anthropic")) -> list[dict]:
    rows = []
    for i in range(n):
        price = 10 ** rng.uniform(-1.5, 1.3)
        rows.append({
            "provider": rng.choice(providers), "model": f"m{i}-{rng.randrange(10**6)}", "kind": "text",
            "input_mtok": round(price, 4), "output_mtok": round(price * rng.uniform(2, 6), 4),
            "context_window": rng.choice([8192, 128000, 1000000]), "max_output_tokens": rng.choice([4096, 16384]),
            "supports_tools": rng.random() < 0.8, "supports_vision": rng.random() < 0.5,
            "supports_json_mode": rng.random() < 0.7, "deprecated": rng.random() < 0.1,
            "quality": {c: round(min(0.99, 0.5 + 0.15 * (price ** 0.3) + rng.uniform(-0.1, 0.1)), 3)
                        for c in CATEGORIES},
            "p50_ms": rng.uniform(200, 4000), "error_share": rng.choice([0.0, 0.0, 0.01, 0.3]),
        })
    return rows


def expected_output(req: RouteRequest, m: ModelInfo) -> int:
    wanted = req.output_tokens if req.output_tokens is not None else max(64, req.input_tokens // 2)
    return min(wanted, m.max_output_tokens or 10**9)


def eligible(snap: Snapshot, req: RouteRequest, floor: float, category: str, asked: ModelInfo | None):
    provider = req.provider or (asked.provider if asked else None)
    out = []
    for m in snap.models:
        if m.provider != provider or m.quality.get(category, -1) < floor:
            continue
        if m is not asked and (m.deprecated or (m.error_share or 0) >= 0.25):
            continue
        if req.needs_tools and not m.supports_tools:
            continue
        if m.context_window is not None and req.input_tokens + (req.output_tokens or 0) > m.context_window:
            continue
        out.append(m)
    return out


@pytest.mark.parametrize("seed", [random.randrange(10**9) for _ in range(6)])
def test_strategies_respect_the_floor_and_pick_as_promised(seed):
    rng = random.Random(seed)
    snap = Snapshot.from_dict({"rules": [], "models": registry(rng, rng.randint(8, 60))})
    for _ in range(200):
        asked = rng.choice(snap.models)
        task = rng.choice(["faq", "summarization", "sentiment", "code_generation", "math", "poetry"])
        req = RouteRequest(model=asked.model, provider=asked.provider, task_type=task,
                           input_tokens=rng.randint(10, 20000), output_tokens=rng.choice([None, rng.randint(1, 4000)]),
                           strategy=rng.choice(STRATEGIES), quality_floor=rng.choice([None, rng.uniform(0.4, 0.95)]),
                           needs_tools=rng.random() < 0.3)
        d = decide(req, snap)
        category = req.category
        floor = req.quality_floor if req.quality_floor is not None else asked.quality[category] - 0.02
        pool = eligible(snap, req, floor, category, asked)
        chosen = snap.find(d.model, d.provider)
        assert chosen is not None
        if d.model == asked.model:
            continue  # kept: allowed whatever the pool
        assert chosen in pool, (seed, d)
        assert chosen.quality[category] >= floor
        assert d.arm == "strategy" and asked.model in d.fallbacks
        cost = {m.model: estimate_cost(m, req.input_tokens, expected_output(req, m)) for m in pool}
        asked_cost = estimate_cost(asked, req.input_tokens, expected_output(req, asked))
        if req.strategy in ("cheapest", "balanced"):
            assert cost[chosen.model] <= asked_cost + 1e-12
        if req.strategy == "cheapest":
            assert cost[chosen.model] == pytest.approx(min(c for c in cost.values() if c <= asked_cost + 1e-12))
        if req.strategy == "quality":
            assert chosen.quality[category] == max(m.quality[category] for m in pool)
        if req.strategy == "fastest":
            assert chosen.latency_ms == min(m.latency_ms for m in pool)


def test_no_strategy_and_no_rule_keeps_the_asked_model():
    snap = Snapshot.from_dict({"models": registry(random.Random(), 10)})
    asked = snap.models[0]
    d = decide(RouteRequest(model=asked.model, task_type="faq", input_tokens=100), snap)
    assert (d.model, d.routed, d.arm, d.rule_id) == (asked.model, False, None, None)


def rule(priority: int, conditions, action, share: float = 1.0, **extra) -> dict:
    return {"id": str(uuid.uuid4()), "name": f"r{priority}", "priority": priority, "conditions": conditions,
            "action": action, "traffic_share": share, **extra}


def test_rules_run_by_priority_and_directives_accumulate():
    models = [{"provider": "openai", "model": "big", "input_mtok": 5, "output_mtok": 15, "quality": {"chat": 0.9}},
              {"provider": "openai", "model": "small", "input_mtok": 0.1, "output_mtok": 0.4, "quality": {"chat": 0.8}}]
    rules = [rule(50, {"feature": "faq"}, {"type": "route_to_model", "provider": "openai", "model": "small"}),
             rule(10, {"feature": "faq"}, {"type": "enable_cache", "ttl_seconds": 60}),
             rule(90, {}, {"type": "block"}),
             rule(20, {"feature": "other"}, {"type": "block"})]
    snap = Snapshot.from_dict({"rules": rules, "models": models})
    d = decide(RouteRequest(model="big", task_type="faq", input_tokens=1000, feature="faq"), snap)
    assert d.model == "small" and d.rule_id == rules[0]["id"] and d.arm == "rule"
    assert d.directives["enable_cache"]["ttl_seconds"] == 60
    assert d.fallbacks == ("big",) and d.estimated_cost < d.estimated_original_cost
    blocked = decide(RouteRequest(model="big", feature="search"), snap)
    assert blocked.blocked and blocked.rule_id == rules[2]["id"]


def test_a_route_to_an_unreachable_provider_falls_to_the_next_rule():
    rules = [rule(1, {}, {"type": "route_to_model", "provider": "anthropic", "model": "claude-x"}),
             rule(2, {}, {"type": "route_to_model", "provider": "openai", "model": "small"})]
    snap = Snapshot.from_dict({"rules": rules, "models": [{"provider": "openai", "model": "big"}]})
    assert decide(RouteRequest(model="big", provider="openai"), snap).model == "small"
    both = RouteRequest(model="big", provider="openai", providers=("openai", "anthropic"))
    assert decide(both, snap).model == "claude-x"


@pytest.mark.parametrize(("operator", "value", "actual", "holds"), [
    ("eq", "a", "a", True), ("eq", "a", "b", False), ("neq", "a", "b", True), ("neq", "a", None, True),
    ("gt", 10, 11, True), ("gt", 10, 10, False), ("gte", 10, 10, True), ("lt", 5, 4.5, True), ("lte", 5, 6, False),
    ("in", ["x", "y"], "y", True), ("in", ["x"], "z", False), ("not_in", ["x"], "z", True),
    ("contains", "sum", "summarize", True), ("contains", "sum", None, False),
    ("regex", r"^gpt-4o(-mini)?$", "gpt-4o-mini", True), ("regex", r"^gpt-4o$", "gpt-4o-mini", False),
    ("gt", 10, "not a number", False),
])
def test_condition_operators(operator, value, actual, holds):
    assert Condition.make("input_tokens", operator, value).holds({"input_tokens": actual}) is holds


def test_seed_style_conditions_and_time_fields():
    row = rule(1, [{"field": "input_tokens", "operator": "gte", "value": 500},
                   {"field": "team_id", "operator": "in", "value": ["search", "ads"]},
                   {"field": "time_of_day", "operator": "lt", "value": 6}], {"type": "compress", "level": "light"})
    snap = Snapshot.from_dict({"rules": [row], "models": []})
    night = 1_700_000_000 - (1_700_000_000 % 86400) + 3 * 3600  # 03:00 UTC
    hit = decide(RouteRequest(model="m", input_tokens=800, team="ads", now=night), snap)
    assert "compress_prompt" in hit.directives
    assert "compress_prompt" not in decide(RouteRequest(model="m", input_tokens=800, team="ads", now=night + 6 * 3600),
                                           snap).directives
    assert "compress_prompt" not in decide(RouteRequest(model="m", input_tokens=100, team="ads", now=night),
                                           snap).directives


def test_malformed_rules_are_skipped_and_reported():
    rows = [rule(1, {}, {"type": "teleport"}), rule(2, [{"field": "model", "operator": "like", "value": "x"}],
                                                    {"type": "block"}),
            rule(3, [{"field": "model", "operator": "regex", "value": "("}], {"type": "block"}),
            rule(4, {}, {"type": "route_to_model"}), rule(5, {}, {"type": "block"}, share=1.5),
            rule(6, {"feature": "ok"}, {"type": "block"})]
    snap = Snapshot.from_dict({"rules": rows, "models": []})
    assert [r.name for r in snap.rules] == ["r6"] and len(snap.errors) == 5
    with pytest.raises(ValueError):
        Rule.from_dict(rows[0])


def test_experiments_are_sticky_by_key_and_split_by_share():
    rng = random.Random()
    share = rng.uniform(0.2, 0.8)
    r = rule(1, {}, {"type": "route_to_model", "provider": "openai", "model": "small"}, share=share)
    snap = Snapshot.from_dict({"rules": [r], "models": [{"provider": "openai", "model": "big"},
                                                         {"provider": "openai", "model": "small"}]})
    users = [f"user-{rng.randrange(10**9)}" for _ in range(4000)]
    first = {u: decide(RouteRequest(model="big", provider="openai", user_id=u), snap) for u in users}
    for u in rng.sample(users, 200):  # the same user always lands in the same arm
        again = decide(RouteRequest(model="big", provider="openai", user_id=u), snap)
        assert again.experiment.arm == first[u].experiment.arm and again.model == first[u].model
    treated = [d for d in first.values() if d.experiment.arm == "treatment"]
    assert abs(len(treated) / len(users) - share) < 0.04
    assert all(d.model == "small" for d in treated)
    assert all(d.model == "big" and d.arm == "control" and d.rule_id == r["id"]
               for d in first.values() if d.experiment.arm == "control")
    # arms of two rules are independent of each other
    other = str(uuid.uuid4())
    pairs = [(bucket(r["id"], u) < 0.5, bucket(other, u) < 0.5) for u in users]
    assert abs(statistics.mean(a == b for a, b in pairs) - 0.5) < 0.05


def test_requests_are_validated_by_field():
    with pytest.raises(ValueError, match="strategy"):
        RouteRequest(model="x", strategy="random")
    with pytest.raises(ValueError, match="quality_floor"):
        RouteRequest(model="x", quality_floor=1.5)
    with pytest.raises(ValueError, match="model"):
        RouteRequest(model="")


def test_dated_names_resolve_to_their_registry_family():
    snap = Snapshot.from_dict({"models": [{"provider": "openai", "model": "gpt-4o"},
                                          {"provider": "openai", "model": "gpt-4o-mini"},
                                          {"provider": "openai", "model": "gpt-5"}]})
    assert snap.find("gpt-4o-2024-08-06", "openai").model == "gpt-4o"
    assert snap.find("gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert snap.find("gpt-5.6-luna", "openai") is None  # a dot continues a version, it is not a separator
