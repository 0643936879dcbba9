"""One request to the LLM layer, whichever models end up answering it (shared by structured answers and
tool conversations)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import BaseModel

from tokentra_core.llm.strategy import ModelRef, TaskStrategy

__all__ = ["Ask", "org_uuid"]


@dataclass(frozen=True)
class Ask:
    """One structured() or converse() request, whichever models end up answering it."""

    task: str
    org_id: str
    schema: type[BaseModel]
    system: str
    prompt: str
    plan: TaskStrategy
    routed_from: ModelRef  # the first choice, named on fallback calls' usage rows


def org_uuid(org_id: str) -> str:
    """The organization id as a canonical UUID string; ValueError naming org_id otherwise."""
    try:
        return str(uuid.UUID(str(org_id)))
    except ValueError:
        raise ValueError(f"org_id: {org_id!r} is not a UUID") from None
