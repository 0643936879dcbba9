"""Snapshots compile their rules once: each compiled predicate answers as Condition.holds does, and the
rule index never leaves out a rule that matches. Conditions, values and facts are drawn at random, mixed
types included (a number against a string, booleans, missing fields)."""

from __future__ import annotations

import random

import pytest

from tokentra.routing import OPERATORS, Condition, Rule, Snapshot, _compile

FIELDS = ("feature", "team", "model", "input_tokens", "env", "n")


def scalar(rng: random.Random) -> object:
    return rng.choice([f"feature-{rng.randrange(6)}", f"team-{rng.randrange(4)}", "gpt-4o", "12", "", "abc",
                       rng.randint(-5, 50_000), rng.uniform(-1, 100), 12, 12.0, True, False, None])


def value_for(rng: random.Random, operator: str) -> object:
    if operator in ("in", "not_in"):
        return [scalar(rng) for _ in range(rng.randint(0, 4))]
    if operator == "regex":
        return rng.choice(["^gpt-4o", "-[0-3]$", "1.*", "^$"])
    return scalar(rng)


def facts_for(rng: random.Random) -> dict[str, object]:
    return {name: scalar(rng) for name in FIELDS if rng.random() < 0.8}


@pytest.mark.parametrize("seed", [random.Random().randrange(10**9) for _ in range(3)])
def test_compiled_predicates_answer_as_holds_does(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for _ in range(400):
        operator = rng.choice(OPERATORS)
        condition = Condition.make(rng.choice(FIELDS), operator, value_for(rng, operator))
        predicate = _compile(condition)
        for _ in range(25):
            facts = facts_for(rng)
            assert predicate(facts) is condition.holds(facts), (seed, condition, facts)
            checked += 1
    assert checked == 10_000


@pytest.mark.parametrize("seed", [random.Random().randrange(10**9) for _ in range(3)])
def test_the_rule_index_keeps_every_rule_that_matches(seed: int) -> None:
    rng = random.Random(seed)
    tried_total = rules_total = 0
    for _ in range(30):
        rows = []
        for i in range(rng.randint(0, 40)):
            if rng.random() < 0.4:
                conditions: object = {rng.choice(FIELDS): scalar(rng) if rng.random() < 0.6
                                      else [scalar(rng) for _ in range(3)] for _ in range(rng.randint(0, 2))}
            else:
                conditions = []
                for _ in range(rng.randint(0, 3)):
                    operator = rng.choice(OPERATORS)
                    conditions.append({"field": rng.choice(FIELDS), "operator": operator,
                                       "value": value_for(rng, operator)})
            rows.append({"id": f"r{i}", "priority": rng.randint(1, 10), "conditions": conditions,
                         "action": {"type": "enable_cache"}})
        snapshot = Snapshot([Rule.from_dict(r) for r in rows])
        for _ in range(50):
            facts = facts_for(rng)
            tried = list(snapshot.rules_to_try(facts))
            assert tried == sorted(set(tried))  # priority order, each rule once
            matching = [p for p, rule in enumerate(snapshot.rules) if rule.matches(facts)]
            assert set(matching) <= set(tried), (seed, facts)
            tried_total += len(tried)
            rules_total += len(snapshot.rules)
    assert tried_total < rules_total  # and it does leave rules out