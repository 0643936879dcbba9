"""TokenTRA's own LLM layer: a model strategy per task, fallback, native structured outputs, spend caps.

    llm = LLM(settings, dsn)
    answer, call = await llm.structured("consensus.skeptic", Position, org_id=org, system=..., prompt=...)

Every call is recorded as usage of the internal organization through the ingest function, on behalf of
the customer organization it was made for, and is bounded by that organization's monthly AI cap.
"""

from tokentra_core.llm._types import AICapReached, LLMCall, LLMOff, LLMUnavailable, StructuredOutputFailed
from tokentra_core.llm.client import LLM
from tokentra_core.llm_status import llm_status

__all__ = ["LLM", "AICapReached", "LLMCall", "LLMOff", "LLMUnavailable", "StructuredOutputFailed", "llm_status"]
