"""The main job runs end to end: traffic through the SDK and the ingest function, then the report."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tokentra_platform.db import connect


def test_demo_sends_traffic_and_reports_spend(dsn):
    """With two days of traffic: the spend report, then what the intelligence jobs make of it."""
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
    check_intelligence(text, dsn)


def _dollars(s: str) -> float:
    return float(s.replace(",", ""))


def check_intelligence(text: str, dsn: str) -> None:
    """The recommendations, anomalies and forecast sections appear, and what they print is true."""
    org = re.search(r"Demo org\s+([0-9a-f-]{36})", text)[1]
    with connect(dsn) as conn:
        recs = conn.execute("select category, estimated_monthly_savings::float8 as s from public.recommendations "
                            "where org_id = %s and status = 'open'", (org,)).fetchall()
        forecast = conn.execute("select forecast::float8 as f, lower_80::float8 as l80, upper_80::float8 as u80, "
                                "lower_95::float8 as l95, upper_95::float8 as u95, spent_to_date::float8 as s "
                                "from public.spend_forecasts where org_id = %s and budget_id is null",
                                (org,)).fetchone()
    found = re.search(r"Recommendations: (\d+) found, \$([\d,.]+) a month in estimated savings", text)
    if found:
        assert int(found[1]) == len(recs) > 0
        assert all(r["s"] > 0 for r in recs)
        assert abs(_dollars(found[2]) - sum(r["s"] for r in recs)) < 0.01
        for r in recs:
            assert r["category"] in text
    else:
        assert "Recommendations: none found" in text and not recs
    # Two days hold no day 24: the demo says why there is no spike rather than inventing one.
    assert "Anomalies: none found (only 2 days of traffic, and the planted spike is on day 24)" in text
    month_end = re.search(r"Month-end forecast \(\w+ \d{4}\): \$([\d,.]+)\s+80% interval \$([\d,.]+)–\$([\d,.]+), "
                          r"95% interval \$([\d,.]+)–\$([\d,.]+)\s+spent so far \$([\d,.]+)", text)
    assert month_end, "the month-end forecast is printed"
    f, l80, u80, l95, u95, spent = (_dollars(v) for v in month_end.groups())
    assert forecast and abs(f - forecast["f"]) < 0.01 and abs(spent - forecast["s"]) < 0.01
    assert l95 <= l80 <= f <= u80 <= u95 and f >= spent >= 0
    assert "short-history fallback" in text and "Daily spend and forecast" in text
