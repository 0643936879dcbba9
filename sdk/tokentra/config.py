"""SDK settings: one object, read from the environment once and overridable by `configure()`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

__all__ = ["DEFAULT_URL", "MAX_BATCH_BYTES", "MAX_BATCH_EVENTS", "Config"]

DEFAULT_URL = "http://127.0.0.1:54321/functions/v1"
# Limits of one ingest request, fixed by the ingest contract.
MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Config:
    """Where events go and how the background sender behaves."""

    api_key: str | None = dataclasses.field(default=None, repr=False)
    url: str = DEFAULT_URL
    enabled: bool = True
    max_queue_size: int = 10_000
    batch_size: int = 100
    flush_interval: float = 1.0
    max_retries: int = 5
    backoff_base: float = 0.5
    max_backoff: float = 30.0
    timeout: float = 10.0
    shutdown_timeout: float = 5.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", (self.url or DEFAULT_URL).rstrip("/"))
        if not 1 <= self.batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_EVENTS}")
        if self.max_queue_size < 1:
            raise ValueError("max_queue_size must be at least 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must be non-negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build the settings from TOKENTRA_API_KEY and TOKENTRA_URL."""
        env = os.environ if environ is None else environ
        return cls(api_key=env.get("TOKENTRA_API_KEY") or None, url=env.get("TOKENTRA_URL") or DEFAULT_URL)

    @property
    def ingest_url(self) -> str:
        return self.url + "/ingest"

    def replace(self, **changes: object) -> Config:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
