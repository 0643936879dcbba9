"""Fixtures of the dashboard's browser tests (defined in dashboard_world.py, which the tests import)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dashboard_world import browser, dashboard_url, page, world  # noqa: E402, F401
