"""Routing decisions: which model answers a call. Pure Python, no I/O, nothing of the platform.

The SDK, the functions (`POST /functions/v1/route`) and the gateway all import this one module, so a
decision is the same wherever it is made. It decides from a `Snapshot` (an organization's routing rules
and the registry rows it may route between, as `private.routing_snapshot` returns them) and a
`RouteRequest`:

1. The organization's rules, by priority (lower first). A rule matches when all its conditions hold.
   `route_to_model` and `block` end the search; `enable_cache`, `compress_prompt`, `rate_limit` and the
   other directives are collected and the search goes on. A rule with `traffic_share` below 1 is an
   experiment: a stable key (the end user, else the caller's key, else the request) is hashed with the
   rule id into [0, 1), so one user always lands in the same arm; the control arm keeps the asked model.
2. Otherwise, when a strategy is asked for, the registry: models of an allowed provider with the
   capabilities the call needs, room for its tokens, not deprecated nor degraded, and a quality for the
   task's category at or above the floor, chosen `cheapest`, `fastest`, `balanced` (the cheapest within
   0.05 of the best quality on offer) or `quality`. Cheapest and balanced never pick a model dearer than
   the one asked for.

    snapshot = Snapshot.from_dict(payload)
    decision = decide(RouteRequest(model="gpt-4o", task_type="faq", input_tokens=800,
                                   strategy="cheapest", quality_floor=0.7), snapshot)
    decision.model, decision.reason, decision.fallbacks
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from .classifier import TASK_CATEGORY

__all__ = [
    "ACTIONS",
    "OPERATORS",
    "STRATEGIES",
    "Condition",
    "Decision",
    "Experiment",
    "ModelInfo",
    "RouteRequest",
    "Rule",
    "Snapshot",
    "bucket",
    "decide",
    "estimate_cost",
]

STRATEGIES = ("cheapest", "fastest", "balanced", "quality")
OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "regex")
# Actions that end the search, and the directives that only add to the decision.
_TERMINAL = ("route_to_model", "block")
ACTIONS = _TERMINAL + ("enable_cache", "enable_prompt_cache", "compress_prompt", "rate_limit", "set_max_tokens",
                       "set_response_format")
# Seed 001 spells the action `route`/`cache`/`compress` in places; they mean the same.
_ACTION_ALIASES = {"route": "route_to_model", "model_route": "route_to_model", "cache": "enable_cache",
                   "compress": "compress_prompt", "budget_enforce": "rate_limit"}
# Condition fields as the recommendations write them and as routing rules name them.
_FIELD_ALIASES = {"team_id": "team", "project_id": "project", "feature_id": "feature", "end_user_id": "user_id",
                  "user": "user_id"}
# A provider whose calls failed this often in the last hour is not a candidate (unless it was asked for).
DEGRADED_ERROR_SHARE = 0.25
# Balanced: the cheapest model whose quality is within this of the best candidate's.
BALANCED_TOLERANCE = 0.05
# Without an explicit floor, a routed model may be at most this much worse than the asked one.
DEFAULT_QUALITY_DROP = 0.02
_TIER_LATENCY_MS = {"budget": 600.0, "mid": 900.0, "premium": 1500.0, "flagship": 3000.0}
_UNKNOWN_LATENCY_MS = 2000.0


# ---------------------------------------------------------------- the snapshot
@dataclass(frozen=True)
class ModelInfo:
    """One registry row: price (USD per million tokens), limits, capabilities, quality and health."""

    provider: str
    model: str
    tier: str | None = None
    kind: str = "text"
    input_mtok: float | None = None
    output_mtok: float | None = None
    cache_read_mtok: float | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    supports_tools: bool | None = None
    supports_vision: bool | None = None
    supports_json_mode: bool | None = None
    deprecated: bool = False
    successor: str | None = None
    quality: Mapping[str, float] = field(default_factory=dict)
    quality_samples: Mapping[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    error_share: float | None = None

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> ModelInfo:
        def num(key: str) -> float | None:
            value = row.get(key)
            return float(value) if isinstance(value, (int, float, str)) and value != "" else None

        def integer(key: str) -> int | None:
            value = num(key)
            return int(value) if value is not None else None

        quality = row.get("quality") or {}
        samples = row.get("quality_samples") or {}
        return cls(
            provider=str(row["provider"]), model=str(row["model"]), tier=row.get("tier"),
            kind=str(row.get("kind") or "text"), input_mtok=num("input_mtok"), output_mtok=num("output_mtok"),
            cache_read_mtok=num("cache_read_mtok"), context_window=integer("context_window"),
            max_output_tokens=integer("max_output_tokens"), supports_tools=row.get("supports_tools"),
            supports_vision=row.get("supports_vision"), supports_json_mode=row.get("supports_json_mode"),
            deprecated=bool(row.get("deprecated")), successor=row.get("successor"),
            quality={str(k): float(v) for k, v in quality.items() if isinstance(v, (int, float, str))},
            quality_samples={str(k): int(v) for k, v in samples.items() if isinstance(v, (int, float))},
            p50_ms=num("p50_ms"), p95_ms=num("p95_ms"), error_share=num("error_share"),
        )

    @property
    def priced(self) -> bool:
        return self.input_mtok is not None or self.output_mtok is not None

    @property
    def latency_ms(self) -> float:
        if self.p50_ms is not None:
            return self.p50_ms
        return _TIER_LATENCY_MS.get(self.tier or "", _UNKNOWN_LATENCY_MS)


@dataclass(frozen=True)
class Condition:
    """`field operator value`; a field the call does not have never matches (except `neq`/`not_in`)."""

    field: str
    operator: str
    value: Any
    pattern: re.Pattern | None = None

    @classmethod
    def make(cls, field_name: str, operator: str, value: Any) -> Condition:
        if operator not in OPERATORS:
            raise ValueError(f"operator {operator!r} is not one of {', '.join(OPERATORS)}")
        if operator in ("in", "not_in") and not isinstance(value, (list, tuple)):
            raise ValueError(f"{operator} needs a list value")
        pattern = re.compile(str(value)) if operator == "regex" else None
        name = _FIELD_ALIASES.get(field_name, field_name)
        return cls(name, operator, tuple(value) if isinstance(value, list) else value, pattern)

    def holds(self, facts: Mapping[str, Any]) -> bool:
        actual = facts.get(self.field)
        op = self.operator
        if actual is None:
            return op in ("neq", "not_in") and self.value is not None
        if op == "eq":
            return _same(actual, self.value)
        if op == "neq":
            return not _same(actual, self.value)
        if op == "in":
            return any(_same(actual, v) for v in self.value)
        if op == "not_in":
            return not any(_same(actual, v) for v in self.value)
        if op == "contains":
            return isinstance(actual, str) and str(self.value) in actual
        if op == "regex":
            return isinstance(actual, str) and self.pattern is not None and self.pattern.search(actual) is not None
        try:
            a, b = float(actual), float(self.value)
        except (TypeError, ValueError):
            return False
        return (a > b) if op == "gt" else (a >= b) if op == "gte" else (a < b) if op == "lt" else (a <= b)


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual == expected
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        return float(actual) == float(expected)
    return str(actual) == str(expected)


def _gate(rule: Rule) -> tuple[str, frozenset[str]] | None:
    """An `eq`/`in` condition of the rule whose expected values are all strings: (field, values)."""
    for c in rule.conditions:
        if c.operator == "eq" and type(c.value) is str:
            return c.field, frozenset((c.value,))
        if c.operator == "in" and isinstance(c.value, (list, tuple)) and all(type(v) is str for v in c.value):
            return c.field, frozenset(c.value)
    return None


def _cost_rank(condition: Condition) -> int:
    return {"eq": 0, "in": 0, "neq": 1, "not_in": 1, "regex": 3}.get(condition.operator, 2)


def _compile(c: Condition) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over facts that answers exactly as `c.holds` does, with the work that depends only on
    the condition (float conversion, sets of expected strings, the regex) done once."""
    op = c.operator
    if op in ("eq", "neq"):
        return _compile_eq(c.field, c.value, op == "neq")
    if op in ("in", "not_in"):
        if isinstance(c.value, (list, tuple)):
            return _compile_in(c.field, tuple(c.value), op == "not_in")
        return c.holds  # a value Condition.make would have refused: keep its exact behaviour
    if op == "contains":
        return _compile_contains(c.field, str(c.value))
    if op == "regex":
        return _compile_regex(c.field, c.pattern)
    return _compile_number(c.field, c.value, op)


def _compile_eq(name: str, expected: Any, negate: bool) -> Callable[[Mapping[str, Any]], bool]:
    missing = negate and expected is not None
    if isinstance(expected, str):
        def test(actual: Any) -> bool:
            return actual == expected if type(actual) is str else _same(actual, expected)
    else:
        def test(actual: Any) -> bool:
            return _same(actual, expected)

    def holds(facts: Mapping[str, Any]) -> bool:
        actual = facts.get(name)
        if actual is None:
            return missing
        return test(actual) is not negate

    return holds


def _compile_in(name: str, values: tuple[Any, ...], negate: bool) -> Callable[[Mapping[str, Any]], bool]:
    strings = frozenset(values) if all(type(v) is str for v in values) else None

    def holds(facts: Mapping[str, Any]) -> bool:
        actual = facts.get(name)
        if actual is None:
            return negate  # not_in holds for a missing field, in does not
        if strings is not None and type(actual) is str:
            found = actual in strings
        else:
            found = any(_same(actual, v) for v in values)
        return found is not negate

    return holds


def _compile_contains(name: str, needle: str) -> Callable[[Mapping[str, Any]], bool]:
    def holds(facts: Mapping[str, Any]) -> bool:
        actual = facts.get(name)
        return isinstance(actual, str) and needle in actual

    return holds


def _compile_regex(name: str, pattern: re.Pattern | None) -> Callable[[Mapping[str, Any]], bool]:
    def holds(facts: Mapping[str, Any]) -> bool:
        actual = facts.get(name)
        return isinstance(actual, str) and pattern is not None and pattern.search(actual) is not None

    return holds


def _compile_number(name: str, expected: Any, op: str) -> Callable[[Mapping[str, Any]], bool]:
    try:
        bound = float(expected)
    except (TypeError, ValueError):
        return lambda facts: False  # no number to compare with: never holds, as in Condition.holds
    compare: Callable[[float, float], bool] = (
        float.__gt__ if op == "gt" else float.__ge__ if op == "gte" else float.__lt__ if op == "lt" else float.__le__)

    def holds(facts: Mapping[str, Any]) -> bool:
        actual = facts.get(name)
        if actual is None:
            return False
        try:
            number = float(actual)
        except (TypeError, ValueError):
            return False
        return compare(number, bound)

    return holds


@dataclass(frozen=True)
class Rule:
    """One routing rule: conditions (all must hold), an action, a priority and a traffic share."""

    id: str
    name: str
    priority: int
    conditions: tuple[Condition, ...]
    action: Mapping[str, Any]
    action_type: str
    traffic_share: float = 1.0
    recommendation_id: str | None = None

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Rule:
        """Conditions as `{"feature": "faq", "model": ["a", "b"]}` (equality, a list meaning any of) or as
        the rule list form `[{"field": ..., "operator": ..., "value": ...}]`. Raises ValueError when malformed."""
        raw = row.get("conditions") or {}
        conditions: list[Condition] = []
        if isinstance(raw, Mapping):
            for name, value in raw.items():
                conditions.append(Condition.make(str(name), "in" if isinstance(value, list) else "eq", value))
        elif isinstance(raw, list):
            for item in raw:
                if not isinstance(item, Mapping) or "field" not in item:
                    raise ValueError("a condition needs field, operator and value")
                conditions.append(Condition.make(str(item["field"]), str(item.get("operator", "eq")),
                                                 item.get("value")))
        else:
            raise ValueError("conditions must be an object or a list")
        action = row.get("action") or row.get("actions")
        if not isinstance(action, Mapping):
            raise ValueError("action must be an object")
        kind = str(action.get("type", ""))
        kind = _ACTION_ALIASES.get(kind, kind)
        if kind not in ACTIONS:
            raise ValueError(f"action type {kind!r} is not one of {', '.join(ACTIONS)}")
        if kind == "route_to_model" and not (action.get("model") or action.get("target_model")):
            raise ValueError("route_to_model needs a model")
        share = float(row.get("traffic_share", 1) or 1)
        if not 0 < share <= 1:
            raise ValueError("traffic_share must be in (0, 1]")
        recommendation = row.get("recommendation_id")
        return cls(str(row["id"]), str(row.get("name") or ""), int(row.get("priority", 100)),
                   tuple(conditions), dict(action), kind, share,
                   str(recommendation) if recommendation else None)

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(c.holds(facts) for c in self.conditions)


class _Candidate(NamedTuple):
    """A registry row as strategy selection reads it, with what it needs computed once per snapshot."""

    quality: float
    position: int  # in the provider's rows: ties in every sort key keep this order
    model: ModelInfo
    input_mtok: float
    output_mtok: float
    max_output_tokens: int | None
    context_window: int | None
    unhealthy: bool  # deprecated or degraded
    latency_ms: float


_FIND_MEMO_LIMIT = 4096
_TIME_FIELDS = frozenset(("time_of_day", "day_of_week"))


class Snapshot:
    """An organization's rules (by priority) and registry rows, indexed for decisions in microseconds.

    Everything a decision would otherwise redo per call is done once here: conditions compiled to
    predicates, registry rows grouped by provider and, per task category, ranked by quality.
    Rows that cannot be understood are skipped and listed in `errors`, never raised at decision time."""

    __slots__ = ("rules", "models", "errors", "generated_at", "_by_key", "_by_name", "_by_provider",
                 "_compiled", "_needs_time", "_ranked", "_found", "_gates", "_ungated")

    def __init__(self, rules: Iterable[Rule] = (), models: Iterable[ModelInfo] = (),
                 generated_at: str | None = None, errors: Iterable[str] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: (r.priority, r.id)))
        self.models: tuple[ModelInfo, ...] = tuple(models)
        self.errors: tuple[str, ...] = tuple(errors)
        self.generated_at = generated_at
        self._by_key = {(m.provider, m.model): m for m in self.models}
        self._by_name: dict[str, ModelInfo] = {}
        self._by_provider: dict[str, list[ModelInfo]] = {}
        for m in self.models:
            self._by_name.setdefault(m.model, m)
            self._by_provider.setdefault(m.provider, []).append(m)
        # Each rule with its conditions as predicates, the cheap equality tests first (all must hold,
        # and none has side effects, so their order changes nothing but the time taken).
        self._compiled = tuple((rule, tuple(_compile(c) for c in sorted(rule.conditions, key=_cost_rank)))
                               for rule in self.rules)
        self._needs_time = any(c.field in _TIME_FIELDS for rule in self.rules for c in rule.conditions)
        # A rule with an equality (or `in`) condition on strings can only match a call whose field has
        # one of those strings: index it under them, so a decision looks at few rules, not all.
        self._gates: dict[str, dict[str, list[int]]] = {}
        ungated = []
        for position, rule in enumerate(self.rules):
            gate = _gate(rule)
            if gate is None:
                ungated.append(position)
                continue
            index = self._gates.setdefault(gate[0], {})
            for value in gate[1]:
                index.setdefault(value, []).append(position)
        self._ungated = tuple(ungated)
        # Filled on first use (a snapshot is immutable, so a race only computes an entry twice).
        self._ranked: dict[tuple[str | None, str], tuple[_Candidate, ...]] = {}
        self._found: dict[tuple[str, str | None], ModelInfo | None] = {}

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Snapshot:
        rules, models, errors = [], [], []
        for row in payload.get("rules") or ():
            try:
                rules.append(Rule.from_dict(row))
            except (KeyError, TypeError, ValueError, re.error) as exc:
                errors.append(f"rule {row.get('id') if isinstance(row, Mapping) else '?'}: {exc}")
        for row in payload.get("models") or ():
            try:
                models.append(ModelInfo.from_dict(row))
            except (KeyError, TypeError, ValueError) as exc:
                errors.append(f"model {row.get('model') if isinstance(row, Mapping) else '?'}: {exc}")
        generated = payload.get("generated_at")
        return cls(rules, models, str(generated) if generated else None, errors)

    def find(self, model: str, provider: str | None = None) -> ModelInfo | None:
        """A model by name, exact first, else the longest registry name that prefixes it at a separator
        (`gpt-4o-2024-08-06` is `gpt-4o`), within the provider when one is given."""
        key = (model, provider)
        try:
            return self._found[key]
        except KeyError:
            pass
        found = self._find(model, provider)
        if len(self._found) >= _FIND_MEMO_LIMIT:
            self._found.clear()
        self._found[key] = found
        return found

    def _find(self, model: str, provider: str | None) -> ModelInfo | None:
        if provider is not None:
            hit = self._by_key.get((provider, model))
            if hit is not None:
                return hit
        elif model in self._by_name:
            return self._by_name[model]
        pool = self._by_provider.get(provider, ()) if provider is not None else self.models
        best: ModelInfo | None = None
        for m in pool:
            name = m.model
            if (len(model) > len(name) and model.startswith(name) and model[len(name)] in "-:@_/"
                    and (best is None or len(name) > len(best.model))):
                best = m
        return best

    def rules_to_try(self, facts: Mapping[str, Any]) -> Iterable[int]:
        """Positions (in priority order) of the rules that may match these facts; the others cannot."""
        if not self._gates:
            return range(len(self.rules))
        found: list[int] = list(self._ungated)
        for name, index in self._gates.items():
            actual = facts.get(name)
            if actual is None:
                continue  # an equality on a missing field never holds
            if type(actual) is str:
                found.extend(index.get(actual, ()))
            else:  # not a plain string: compared as Condition.holds would; let the predicates decide
                found.extend({p for positions in index.values() for p in positions})
        found.sort()
        return found

    def ranked(self, provider: str | None, category: str) -> tuple[_Candidate, ...]:
        """The provider's (None: every provider's) priced text models with a quality for the category,
        best quality first."""
        key = (provider, category)
        hit = self._ranked.get(key)
        if hit is None:
            rows = self.models if provider is None else self._by_provider.get(provider, ())
            found = []
            for position, m in enumerate(rows):
                quality = m.quality.get(category)
                if m.kind != "text" or quality is None or not m.priced:
                    continue
                found.append(_Candidate(
                    quality, position, m, m.input_mtok or 0.0, m.output_mtok or 0.0, m.max_output_tokens,
                    m.context_window, m.deprecated or (m.error_share or 0.0) >= DEGRADED_ERROR_SHARE,
                    m.latency_ms))
            found.sort(key=lambda c: -c.quality)
            hit = self._ranked[key] = tuple(found)
        return hit

    def candidates(self, providers: Iterable[str] | None) -> Iterable[ModelInfo]:
        if providers is None:
            return self.models
        out: list[ModelInfo] = []
        for p in providers:
            out.extend(self._by_provider.get(p, ()))
        return out


# ---------------------------------------------------------------- a request and its decision
@dataclass(frozen=True)
class RouteRequest:
    """What is known of a call before it is made. Tokens are estimates; `stable_key` decides experiment
    arms (default: the end user, else the team, else nothing and each call is drawn on its own)."""

    model: str
    provider: str | None = None
    task_type: str | None = None
    input_tokens: int = 0
    output_tokens: int | None = None
    feature: str | None = None
    team: str | None = None
    project: str | None = None
    user_id: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)
    strategy: str | None = None
    quality_floor: float | None = None
    needs_tools: bool = False
    needs_vision: bool = False
    needs_json: bool = False
    # Providers the caller can reach; None = only the asked model's provider (a client speaks one API).
    providers: tuple[str, ...] | None = None
    stable_key: str | None = None
    request_id: str | None = None
    now: float | None = None  # seconds since the epoch, for time_of_day/day_of_week; default: the clock

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError("model: a model name is required")
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise ValueError(f"strategy: must be one of {', '.join(STRATEGIES)}")
        if self.quality_floor is not None and not 0 <= self.quality_floor <= 1:
            raise ValueError("quality_floor: must be between 0 and 1")
        if self.input_tokens < 0 or (self.output_tokens is not None and self.output_tokens < 0):
            raise ValueError("input_tokens/output_tokens: must not be negative")

    @property
    def category(self) -> str | None:
        if self.task_type is None:
            return None
        return TASK_CATEGORY.get(self.task_type) or (self.task_type if self.task_type in _CATEGORIES else None)

    def facts(self, provider: str | None, with_time: bool = True) -> dict[str, Any]:
        """Everything a condition may name (the clock's fields only `with_time`)."""
        facts: dict[str, Any] = {str(k): v for k, v in self.tags.items()} if self.tags else {}
        facts.update({
            "model": self.model, "provider": provider, "task_type": self.task_type,
            "task_category": self.category, "input_tokens": self.input_tokens, "feature": self.feature,
            "team": self.team, "project": self.project, "user_id": self.user_id,
        })
        if with_time:
            moment = time.gmtime(self.now if self.now is not None else time.time())
            facts["time_of_day"] = moment.tm_hour
            facts["day_of_week"] = (moment.tm_wday + 1) % 7  # 0 = Sunday
        return facts


_CATEGORIES = frozenset(("chat", "content", "analysis", "coding", "reasoning", "creative", "embedding",
                         "multimodal"))


@dataclass(frozen=True)
class Experiment:
    rule_id: str
    arm: str  # "treatment" | "control"
    traffic_share: float

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "arm": self.arm, "traffic_share": self.traffic_share}


@dataclass(frozen=True)
class Decision:
    """The model to call and why. `arm` is what the usage row records: treatment/control of an
    experiment, `rule` (a rule on all traffic), `strategy` (the registry chose), or None (nothing routed)."""

    model: str
    provider: str | None
    reason: str
    estimated_cost: float | None
    original_model: str
    original_provider: str | None
    fallbacks: tuple[str, ...] = ()
    rule_id: str | None = None
    recommendation_id: str | None = None
    experiment: Experiment | None = None
    arm: str | None = None
    blocked: bool = False
    directives: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    estimated_original_cost: float | None = None

    @property
    def routed(self) -> bool:
        return self.model != self.original_model or self.provider != self.original_provider

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "provider": self.provider, "reason": self.reason,
            "estimated_cost": self.estimated_cost, "estimated_original_cost": self.estimated_original_cost,
            "fallbacks": list(self.fallbacks), "rule_id": self.rule_id,
            "recommendation_id": self.recommendation_id,
            "experiment": self.experiment.to_dict() if self.experiment else None, "arm": self.arm,
            "routed": self.routed, "blocked": self.blocked, "original_model": self.original_model,
            "original_provider": self.original_provider,
            "directives": {k: dict(v) for k, v in self.directives.items()},
        }


@dataclass(frozen=True)
class _Origin:
    """The call as asked: what every decision reports beside its choice."""

    model: str
    provider: str | None
    cost: float | None

    def decision(self, model: str, provider: str | None, reason: str, cost: float | None,
                 **extra: Any) -> Decision:
        return Decision(model, provider, reason, cost, self.model, self.provider,
                        estimated_original_cost=self.cost, **extra)


def bucket(rule_id: str, key: str) -> float:
    """Where a key falls in [0, 1) for a rule: the same key and rule always give the same number, and
    different rules split the same keys independently."""
    digest = hashlib.blake2b(f"{rule_id}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def estimate_cost(model: ModelInfo | None, input_tokens: int, output_tokens: int) -> float | None:
    """USD for these tokens at the model's list price; None when it has no price."""
    if model is None or not model.priced:
        return None
    return (input_tokens * (model.input_mtok or 0.0) + output_tokens * (model.output_mtok or 0.0)) / 1e6


def _expected_output(request: RouteRequest, model: ModelInfo | None) -> int:
    if request.output_tokens is not None:
        out = request.output_tokens
    else:
        out = max(64, request.input_tokens // 2)  # about half the prompt, as the recommendations assume
    if model is not None and model.max_output_tokens:
        out = min(out, model.max_output_tokens)
    return out


# ---------------------------------------------------------------- deciding
def decide(request: RouteRequest, snapshot: Snapshot) -> Decision:
    """The decision for one call: the first matching rule, else the strategy, else the asked model."""
    asked = snapshot.find(request.model, request.provider)
    provider = request.provider or (asked.provider if asked else None)
    out_tokens = _expected_output(request, asked)
    asked_cost = estimate_cost(asked, request.input_tokens, out_tokens)
    directives: dict[str, Mapping[str, Any]] = {}
    base = _Origin(request.model, provider, asked_cost)

    if snapshot._compiled:
        facts = request.facts(provider, snapshot._needs_time)
        compiled = snapshot._compiled
        for position in snapshot.rules_to_try(facts):
            rule, predicates = compiled[position]
            if not _all_hold(predicates, facts):
                continue
            experiment = None
            if rule.traffic_share < 1:
                key = request.stable_key or request.user_id or request.team or request.request_id or ""
                # no stable key: each call is drawn on its own (a fresh random key)
                point = bucket(rule.id, key) if key else bucket(rule.id, repr(time.perf_counter_ns()))
                arm = "treatment" if point < rule.traffic_share else "control"
                experiment = Experiment(rule.id, arm, rule.traffic_share)
                if arm == "control":
                    return base.decision(request.model, provider, f"experiment control arm of rule {rule.name!r}",
                                    asked_cost, rule_id=rule.id, recommendation_id=rule.recommendation_id,
                                    experiment=experiment, arm="control", directives=directives)
            arm_name = experiment.arm if experiment else "rule"
            if rule.action_type == "block":
                return base.decision(request.model, provider, f"blocked by rule {rule.name!r}", None, rule_id=rule.id,
                                recommendation_id=rule.recommendation_id, experiment=experiment, arm=arm_name,
                                blocked=True, directives=directives)
            if rule.action_type == "route_to_model":
                routed = _apply_route(rule, request, snapshot, provider, experiment, arm_name, directives, base)
                if routed is not None:
                    return routed
                continue
            directives.setdefault(rule.action_type, {**rule.action, "rule_id": rule.id})

    if request.strategy is not None:
        chosen = _by_strategy(request, snapshot, asked, provider, directives, base)
        if chosen is not None:
            return chosen
    reason = "no rule matched and no strategy asked" if request.strategy is None else "the asked model is the choice"
    return base.decision(request.model, provider, reason, asked_cost, directives=directives)


def _all_hold(predicates: tuple[Callable[[Mapping[str, Any]], bool], ...], facts: Mapping[str, Any]) -> bool:
    for holds in predicates:
        if not holds(facts):
            return False
    return True


def _apply_route(rule: Rule, request: RouteRequest, snapshot: Snapshot, provider: str | None,
                 experiment: Experiment | None, arm: str, directives: dict[str, Mapping[str, Any]],
                 base: _Origin) -> Decision | None:
    action = rule.action
    target = str(action.get("model") or action.get("target_model"))
    target_provider = action.get("provider") or action.get("target_provider") or provider
    reachable = request.providers if request.providers is not None else ((provider,) if provider else None)
    if reachable is not None and target_provider not in reachable:
        return None  # the caller cannot reach that provider: the next rule decides
    info = snapshot.find(target, target_provider)
    out_tokens = _expected_output(request, info)
    fallbacks = [str(action["fallback_model"])] if action.get("fallback_model") else []
    if request.model != target and request.model not in fallbacks:
        fallbacks.append(request.model)
    if info is not None and action.get("service_tier"):
        directives.setdefault("service_tier", {"service_tier": action["service_tier"], "rule_id": rule.id})
    return base.decision(target, target_provider, f"rule {rule.name!r} routes to {target}",
                    estimate_cost(info, request.input_tokens, out_tokens), fallbacks=tuple(fallbacks),
                    rule_id=rule.id, recommendation_id=rule.recommendation_id, experiment=experiment, arm=arm,
                    directives=directives)


def _by_strategy(request: RouteRequest, snapshot: Snapshot, asked: ModelInfo | None, provider: str | None,
                 directives: dict[str, Mapping[str, Any]], base: _Origin) -> Decision | None:
    category = request.category
    if category is None:
        return None
    floor = request.quality_floor
    if floor is None:
        if asked is None or category not in asked.quality:
            return None  # nothing to compare against: keep the asked model
        floor = asked.quality[category] - DEFAULT_QUALITY_DROP
    pool = _eligible(request, snapshot, asked, provider, category, floor)
    if not pool:
        return None
    strategy = request.strategy
    asked_cost = base.cost
    if strategy in ("cheapest", "balanced") and asked_cost is not None:
        pool = [c for c in pool if c[2] <= asked_cost]  # never dearer than what was asked for
        if not pool:
            return None
    # c[3] is the row's place among the reachable rows: ties in every key keep the registry's order.
    if strategy == "cheapest":
        pool.sort(key=lambda c: (c[2], -c[1], c[4], c[3]))
    elif strategy == "fastest":
        pool.sort(key=lambda c: (c[4], c[2], -c[1], c[3]))
    elif strategy == "quality":
        pool.sort(key=lambda c: (-c[1], c[2], c[4], c[3]))
    else:
        best = max(c[1] for c in pool)
        pool = [c for c in pool if c[1] >= best - BALANCED_TOLERANCE]
        pool.sort(key=lambda c: (c[2], c[4], -c[1], c[3]))
    chosen, quality, cost = pool[0][0], pool[0][1], pool[0][2]
    fallbacks = [c[0].model for c in pool[1:3] if c[0].model != request.model]
    if chosen.model != request.model:
        fallbacks.append(request.model)
    if asked is not None and chosen is asked:
        reason = f"{strategy}: the asked model is the best choice for {category} at quality >= {floor:.2f}"
        return base.decision(request.model, provider, reason, cost, fallbacks=tuple(fallbacks),
                        directives=directives)
    reason = (f"{strategy}: {chosen.model} scores {quality:.2f} on {category} (floor {floor:.2f}) "
              f"at ${cost:.6f} against ${asked_cost:.6f}" if asked_cost is not None else
              f"{strategy}: {chosen.model} scores {quality:.2f} on {category} (floor {floor:.2f})")
    return base.decision(chosen.model, chosen.provider, reason, cost, fallbacks=tuple(fallbacks), arm="strategy",
                    directives=directives)


def _eligible(request: RouteRequest, snapshot: Snapshot, asked: ModelInfo | None, provider: str | None,
              category: str, floor: float) -> list[tuple[ModelInfo, float, float, tuple[int, int], float]]:
    """Candidates as (model, quality, estimated cost, place, latency): reachable, priced text models meeting
    the floor and the call's needs, neither deprecated nor degraded (the asked model excepted)."""
    reachable: Iterable[str | None] = (
        request.providers if request.providers is not None else ((provider,) if provider else (None,)))
    need_context = request.input_tokens + (request.output_tokens or 0)
    input_tokens = request.input_tokens
    wanted_out = request.output_tokens if request.output_tokens is not None else max(64, input_tokens // 2)
    needs = request.needs_tools or request.needs_vision or request.needs_json
    pool: list[tuple[ModelInfo, float, float, tuple[int, int], float]] = []
    for place, reach in enumerate(reachable):
        for c in snapshot.ranked(reach, category):
            if c.quality < floor:
                break  # ranked best first: the rest are below the floor too
            m = c.model
            if c.unhealthy and m is not asked:
                continue
            if (needs and not _capable(m, request)) or (c.context_window is not None
                                                         and need_context > c.context_window):
                continue
            out = min(wanted_out, c.max_output_tokens) if c.max_output_tokens else wanted_out
            cost = (input_tokens * c.input_mtok + out * c.output_mtok) / 1e6
            pool.append((m, c.quality, cost, (place, c.position), c.latency_ms))
    return pool


def _capable(m: ModelInfo, request: RouteRequest) -> bool:
    return not ((request.needs_tools and not m.supports_tools) or (request.needs_vision and not m.supports_vision)
                or (request.needs_json and not m.supports_json_mode))
