"""TokenTRA's own LLM layer: a model strategy per task, fallback, native structured outputs, spend caps.

    llm = LLM(settings, dsn)
    answer, call = await llm.structured("consensus.skeptic", Position, org_id=org, system=..., prompt=...)

Every call is recorded as usage of the internal organization through the ingest function, on behalf of
the customer organization it was made for, and is bounded by that organization's monthly AI cap.

    conversation = await llm.converse("assistant.query", Answer, org_id=org, system=..., prompt=...,
                                      tools=[ToolSpec(...)], run=run_tool, review=check)
"""

from tokentra_core.llm._conversation import ANSWER_TOOL, Conversation, ToolOutput, ToolRun
from tokentra_core.llm._providers import ToolSpec
from tokentra_core.llm._types import AICapReached, LLMCall, LLMOff, LLMUnavailable, StructuredOutputFailed
from tokentra_core.llm.client import LLM
from tokentra_core.llm_status import llm_status

__all__ = ["ANSWER_TOOL", "LLM", "AICapReached", "Conversation", "LLMCall", "LLMOff", "LLMUnavailable",
           "StructuredOutputFailed", "ToolOutput", "ToolRun", "ToolSpec", "llm_status"]
