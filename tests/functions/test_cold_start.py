"""A function's cold start: importing the app loads no LLM client library, worker or development code."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("openai", "anthropic", "statsmodels", "tokentra_worker", "tokentra_dev", "tokentra_cli")


def test_importing_the_functions_app_loads_no_llm_client_worker_or_dev_code():
    # A fresh interpreter: this test process has long since imported everything.
    code = ("import json, sys, tokentra_functions.app; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []


def test_the_check_sees_a_library_that_is_loaded():
    # The same probe, after importing the LLM layer on purpose, must report the client libraries.
    code = ("import json, sys, tokentra_functions.app, tokentra_core.llm; "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert {"openai", "anthropic"} <= set(json.loads(out.stdout))
