"""`tokentra prices show` says what a model resolves to and `tokentra prices set` gives an organization its own
price, re-pricing its stored calls; mistakes end in one line. The real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from org_fixtures import add_usage, make_org
from tokentra_core.db import connect
from tokentra_core.settings import REPO_ROOT


def tokentra(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tokentra_cli.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": dsn}, cwd=REPO_ROOT, timeout=120)


def test_show_and_set_a_price(dsn):
    org = make_org(dsn)
    add_usage(dsn, org.id, None, provider="azure", model="Acme-FT-7", input_tokens=2_000_000, output_tokens=0)

    out = tokentra(dsn, "prices", "show", "gpt-4o-2024-08-06", "--provider", "openai")
    assert out.returncode == 0, out.stderr
    assert "canonical model  gpt-4o" in out.stdout and "genai-prices     openai/gpt-4o" in out.stdout
    out = tokentra(dsn, "prices", "show", "acme-ft-7", "--org", org.id)
    assert "stored unpriced" in out.stdout

    out = tokentra(dsn, "prices", "set", "acme-ft-7", "--org", org.id, "--input", "3", "--output", "12", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["repriced"] == 1
    with connect(dsn) as conn:
        assert conn.execute("select cost_usd from public.usage_records where org_id = %s",
                            (org.id,)).fetchone()["cost_usd"] == 6
    show = json.loads(tokentra(dsn, "prices", "show", "ACME-FT-7", "--org", org.id, "--json").stdout)
    assert show["source"] == "organization" and show["price"]["input_mtok"] == 3

    again = tokentra(dsn, "prices", "set", "acme-ft-7", "--org", org.id, "--input", "3", "--output", "12")
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0 and again.stderr.startswith("error: ")
    assert "Traceback" not in again.stderr
