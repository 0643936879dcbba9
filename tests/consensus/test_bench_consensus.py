"""`tokentra bench consensus` on a few recommendations: its figures agree with what was stored."""

from __future__ import annotations

import pytest
from rich.console import Console

from tokentra_core.db import connect
from tokentra_dev.bench_consensus import run


def test_bench_figures_are_consistent(dsn, functions_url):
    out = run(n=4, functions_url=functions_url, console=Console(quiet=True), keep=True)
    assert (out["recommendations"], out["reviewed"], out["completed"]) == (4, 4, 4)
    with connect(dsn) as conn:
        stored = conn.execute(
            "select count(*)::int as calls, sum(input_tokens)::int as input_tokens, sum(output_tokens)::int as"
            " output_tokens, sum(cost_usd)::float8 as cost from public.consensus_calls where org_id = %s",
            (out["organization"],)).fetchone()
    assert out["calls_per_run"] * 4 == stored["calls"] == sum(m["calls"] for m in out["by_model"])
    assert out["input_tokens_per_run"] == round(stored["input_tokens"] / 4)
    assert out["output_tokens_per_run"] == round(stored["output_tokens"] / 4)
    # what the runs recorded equals what the pricing table charged the internal organization
    assert out["stored_cost_usd"] == pytest.approx(stored["cost"], abs=1e-6)
    assert out["priced_cost_usd"] == pytest.approx(out["stored_cost_usd"], abs=1e-6)
    assert out["cost_per_run_usd"] == pytest.approx(out["priced_cost_usd"] / 4, abs=1e-6)
    assert 0 < out["cost_per_run_usd"] <= out["max_cost_per_run_usd"]
    # realistic answers: a few hundred tokens out per call, more in; two providers at least
    assert out["output_tokens_per_run"] > 500 and out["input_tokens_per_run"] > out["output_tokens_per_run"]
    assert len({m["model"].split(":")[0] for m in out["by_model"]}) == 2
    with connect(dsn, autocommit=True) as conn:
        conn.execute("delete from public.organizations where id = %s", (out["organization"],))
