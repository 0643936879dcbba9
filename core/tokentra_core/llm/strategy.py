"""The model strategy per task, read from one TOML file (TOKENTRA_LLM_STRATEGY)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["PROVIDERS", "ModelRef", "Strategy", "TaskStrategy", "load_strategy"]

PROVIDERS = ("openai", "anthropic")


@dataclass(frozen=True)
class ModelRef:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def _parse_ref(value: str) -> ModelRef:
    provider, sep, model = value.partition(":")
    if not sep or not model.strip():
        raise ValueError(f"{value!r} is not 'provider:model'")
    if provider not in PROVIDERS:
        raise ValueError(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    return ModelRef(provider, model.strip())


class TaskStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    primary: ModelRef
    fallback: ModelRef | None = None
    escalation: ModelRef | None = None
    # Bounds each answer's cost; the AI cap check reserves this much output for a call.
    max_output_tokens: int = Field(default=1024, ge=16, le=32_768)

    @field_validator("primary", "fallback", "escalation", mode="before")
    @classmethod
    def _ref(cls, value: object) -> object:
        return _parse_ref(value) if isinstance(value, str) else value

    def candidates(self, escalate: bool, providers: set[str]) -> list[tuple[ModelRef, bool]]:
        """Models to try in order, each with whether it is a fallback; only providers with a key."""
        first = self.escalation if escalate and self.escalation else self.primary
        order = [first] + ([self.fallback] if self.fallback and self.fallback != first else [])
        # A model whose provider has no key is skipped, so the fallback serves alone.
        return [(ref, ref != first) for ref in order if ref.provider in providers]

    def providers(self) -> set[str]:
        return {ref.provider for ref in (self.primary, self.fallback, self.escalation) if ref}


class Strategy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: dict[str, TaskStrategy] = {}
    default: TaskStrategy

    def for_task(self, task: str) -> TaskStrategy:
        return self.tasks.get(task, self.default)


def load_strategy(path: Path) -> Strategy:
    """Parse the strategy file; a bad file is refused with the field and the reason."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"TOKENTRA_LLM_STRATEGY ({path}): {exc}") from exc
    try:
        return Strategy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"TOKENTRA_LLM_STRATEGY ({path}): {where}: {first['msg']}") from exc
