"""The lexical guard and cache keys (pure functions), on randomised prompts."""

from __future__ import annotations

import random

import pytest

from tokentra_core.cache import cache_key, guard_features, refuses

CITIES = ["Paris", "Berlin", "Lisbon", "Oslo", "Denver", "Austin", "Prague", "Dublin"]
seeds = [random.randrange(1_000_000) for _ in range(5)]


def _pair(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(CITIES, 2)
    return a, b


@pytest.mark.parametrize("seed", seeds)
def test_traps_are_refused(seed: int) -> None:
    rng = random.Random(seed)
    a, b = _pair(rng)
    n = rng.randrange(2, 500)
    cases = {
        "numbers_dates_negations": (f"Convert {n} USD to EUR", f"Convert {n + rng.randrange(1, 50)} USD to EUR"),
        "swapped": (f"Find flights from {a} to {b} on Friday", f"Find flights from {b} to {a} on Friday"),
        "opposite": (f"What are the benefits of living in {a}?", f"What are the drawbacks of living in {a}?"),
        "substituted": (f"What is the population of {a}?", f"What is the population of {b}?"),
    }
    for reason, (one, other) in cases.items():
        assert refuses(guard_features(other), guard_features(one)) == reason, (one, other)
    negated = (f"Is {a} safe at night?", f"Is {a} not safe at night?")
    assert refuses(guard_features(negated[1]), guard_features(negated[0])) == "numbers_dates_negations"
    dated = (f"Summarize the meeting of 2026-0{rng.randrange(1, 9)}-15", "Summarize the meeting of 2026-10-15")
    assert refuses(guard_features(dated[1]), guard_features(dated[0])) == "numbers_dates_negations"


@pytest.mark.parametrize("seed", seeds)
def test_paraphrases_pass(seed: int) -> None:
    rng = random.Random(seed)
    a, b = _pair(rng)
    n = rng.randrange(2, 500)
    pairs = [
        (f"Convert {n} USD to EUR", f"How much is {n} USD in EUR?"),
        (f"Find flights from {a} to {b} on Friday", f"Are there flights from {a} to {b} on Friday?"),
        (f"What is the capital of {a}?", f"Tell me the capital city of {a}."),
        (f"Convert {n} miles to kilometers", f"How many kilometers are in {n} miles?"),
        ("Convert 100 USD to EUR", "Convert one hundred USD to EUR"),
    ]
    for one, other in pairs:
        assert refuses(guard_features(other), guard_features(one)) is None, (one, other)


def test_features_hold_no_prompt_text() -> None:
    prompt = "Compare Zanzibar vs Timbuktu for 7 days in March, not in winter"
    features = guard_features(prompt)
    stored = " ".join([features.guard_key, features.bag_hash, features.seq_hash, *features.tokens, *features.polarity])
    for word in ("zanzibar", "timbuktu", "march", "winter", "compare"):
        assert word not in stored.lower()


def test_keys_scope_by_parameters_system_prompt_and_earlier_turns() -> None:
    ask = [{"role": "user", "content": "What is the capital of Peru?"}]
    base = cache_key(ask, params={"temperature": 0})
    assert base is not None
    assert cache_key([{"role": "user", "content": "what  is the capital of peru"}], params={"temperature": 0}
                     ).prompt_hash == base.prompt_hash
    assert cache_key(ask, params={"temperature": 0.7}).params_hash != base.params_hash
    assert cache_key(ask, params={"temperature": 0, "stream": True, "user": "u1"}).params_hash == base.params_hash
    assert cache_key(ask, system="Answer as a pirate.", params={"temperature": 0}).system_prompt_hash != ""
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, *ask]
    assert cache_key(earlier, params={"temperature": 0}).context_hash != base.context_hash
    # Not cacheable: images, tool calls, an assistant turn last.
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    assert cache_key(image) is None
    assert cache_key([{"role": "assistant", "content": "", "tool_calls": [{"id": "1"}]}, *ask]) is None
    assert cache_key([*ask, {"role": "assistant", "content": "Lima"}]) is None
