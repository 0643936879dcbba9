"""Wire models the functions share: what clients get back. The ingest event is in ingest_schema.py."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, PlainSerializer

Short = Annotated[str, Field(min_length=1, max_length=200)]


class Rejection(BaseModel):
    index: int
    field: str
    message: str


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    unpriced: int = Field(description="Accepted events whose model has no known price yet.")
    rejected: list[Rejection]


# Money in answers: a JSON number, as /costs writes it (pydantic would write a Decimal as a string).
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """Every refusal: a code and a sentence; a 422 also names the fields, all of them under `errors`."""

    error: str
    message: str
    field: str | None = None
    reason: str | None = None
    errors: list[FieldError] | None = None
