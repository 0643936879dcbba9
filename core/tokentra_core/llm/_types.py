"""The LLM layer's public value types and errors (the contract other modules code against)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AICapReached", "LLMCall", "LLMOff", "LLMUnavailable", "StructuredOutputFailed"]


class LLMOff(RuntimeError):
    """No provider key is configured for any model the task could use; str() says how to turn it on."""


class AICapReached(RuntimeError):
    """The organization's monthly AI spend cap (billing_profiles.ai_monthly_cap_usd) is reached."""


@dataclass(frozen=True)
class LLMCall:
    """One provider request, successful or not."""

    task: str  # e.g. "consensus.skeptic"
    provider: str  # "openai" | "anthropic"
    model: str
    request_id: str  # the id recorded in usage_records.request_id for the internal organization
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_usd: float  # from our pricing (genai-prices, the same numbers as the SQL price table)
    latency_ms: int
    fallback_used: bool
    ok: bool
    error: str | None


class StructuredOutputFailed(RuntimeError):
    """Every model that answered stayed malformed after one repair request; `calls` holds every attempt."""

    def __init__(self, message: str, calls: list[LLMCall]) -> None:
        super().__init__(message)
        self.calls = calls


class LLMUnavailable(StructuredOutputFailed):
    """Every model the task could use failed at the provider (errors, timeouts): no answer at all.

    A StructuredOutputFailed, so callers that count a malformed answer as failed count this one too.
    """
