"""LLM on or off, the strategy file, and what `tokentra db status` says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from genai_prices import Usage, calc_price

from tokentra_core.llm import llm_status
from tokentra_core.llm.strategy import load_strategy
from tokentra_core.settings import Settings

TASKS = ("consensus.analyst", "consensus.skeptic", "consensus.advocate", "consensus.synthesizer",
         "explain.anomaly", "explain.recommendation")


def test_status_names_the_configured_providers_and_what_a_missing_one_means():
    status = llm_status(Settings(OPENAI_API_KEY="sk-x", ANTHROPIC_API_KEY=""))
    assert status["enabled"] is True and status["providers"] == ["openai"]
    assert "anthropic use their fallback" in status["reason"]
    both = llm_status(Settings(OPENAI_API_KEY="sk-x", ANTHROPIC_API_KEY="sk-ant-y"))
    assert both["providers"] == ["openai", "anthropic"] and "sk-" not in json.dumps(both)


def test_the_default_strategy_spreads_consensus_roles_over_providers_at_a_low_cost():
    strategy = load_strategy(Settings().llm_strategy)
    roles = [strategy.for_task(t).primary.provider for t in TASKS[:3]]
    assert set(roles) == {"openai", "anthropic"}
    for task in TASKS:
        plan = strategy.for_task(task)
        assert plan is not strategy.default and plan.fallback.provider != plan.primary.provider
        for ref in (plan.primary, plan.fallback, plan.escalation):
            calc_price(Usage(input_tokens=1, output_tokens=1), model_ref=ref.model, provider_id=ref.provider)
    # The cost target: 3 roles x 3 rounds + a synthesis, ~2,500 tokens in and 400 out each, under $0.05.
    calls = [strategy.for_task(t).primary for t in TASKS[:3]] * 3 + [strategy.for_task(TASKS[3]).primary]
    cost = sum(calc_price(Usage(input_tokens=2500, output_tokens=400), model_ref=r.model,
                          provider_id=r.provider).total_price for r in calls)
    assert cost < 0.05


@pytest.mark.parametrize("text, reason", [
    ('[default]\nprimary = "mistral:large"\n', "default.primary: Value error, provider 'mistral'"),
    ('[default]\nprimary = "gpt-4.1"\n', "default.primary: Value error, 'gpt-4.1' is not 'provider:model'"),
    ('[tasks.x]\nprimary = "openai:a"\n', "default: Field required"),
    ('[default]\nprimary = "openai:a"\nmax_output_tokens = 0\n', "default.max_output_tokens"),
    ("[default\n", "TOKENTRA_LLM_STRATEGY"),
])
def test_a_bad_strategy_file_is_refused_naming_the_field(tmp_path: Path, text: str, reason: str):
    path = tmp_path / "strategy.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match="TOKENTRA_LLM_STRATEGY") as failure:
        load_strategy(path)
    assert reason in str(failure.value)


def test_db_status_says_whether_llm_features_are_on(dsn):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}

    def status(*args: str, **extra: str) -> str:
        out = subprocess.run([sys.executable, "-m", "tokentra_cli.cli", "db", "status", *args],
                             capture_output=True, text=True, timeout=60, env={**env, **extra})
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "off (set OPENAI_API_KEY or ANTHROPIC_API_KEY)" in status()
    off = json.loads(status("--json"))["llm"]
    assert off["enabled"] is False and "OPENAI_API_KEY" in off["reason"]
    on = json.loads(status("--json", ANTHROPIC_API_KEY="sk-ant-test-status"))["llm"]
    assert (on["enabled"], on["providers"]) == (True, ["anthropic"])
    assert "on (anthropic)" in status(ANTHROPIC_API_KEY="sk-ant-test-status")
