"""Settings the gateway under test runs with, and prompts that never repeat by accident (the runaway guard
counts identical prompts)."""

from __future__ import annotations

import uuid
from typing import Any

LOOP_LIMIT = 6
TIMEOUT_SECONDS = 2


def one_prompt() -> list[dict[str, Any]]:
    """A user message of fixed length and unique text (same size, so the same reservation amount)."""
    return [{"role": "user", "content": f"Name the capital of France. {uuid.uuid4()}"}]
