"""The main job runs end to end: traffic through the SDK and the ingest function, then the report."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_sends_traffic_and_reports_spend(dsn):
    out = subprocess.run([sys.executable, "-m", "tokentra_platform.cli", "demo", "--days", "2"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "120"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    sent = int(re.search(r"SDK delivered ([\d,]+) events", text)[1].replace(",", ""))
    total = re.search(r"([\d,]+) requests, \$([\d,.]+) spent \((\d+) unpriced\)", text)
    assert sent > 1000 and int(total[1].replace(",", "")) == sent
    assert float(total[2].replace(",", "")) > 0 and total[3] == "0"
    for heading in ("Spend by model", "Spend by team", "Spend by feature", "Top end users", "Daily spend"):
        assert heading in text
    # the key is printed once for the operator, and never its hash or anything else about it
    assert len(re.findall(r"tt_live_[A-Za-z0-9_-]{43}", text)) == 1
