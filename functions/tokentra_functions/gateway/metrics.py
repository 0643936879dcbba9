"""Prometheus metrics of the gateway, served at /functions/v1/gateway/metrics (text exposition format).

A registry of its own, so only the gateway's series are exposed. Each server process keeps its own
counters: with several workers, scrape each (or run one worker per pod, the usual deployment).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
_FAST = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_CALL = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

REQUESTS = Counter("tokentra_gateway_requests", "Calls answered, by provider, endpoint and HTTP status.",
                   ["provider", "endpoint", "status"], registry=REGISTRY)
REFUSALS = Counter("tokentra_gateway_refusals", "Calls the gateway refused itself, by reason.",
                   ["reason"], registry=REGISTRY)
FALLBACKS = Counter("tokentra_gateway_fallbacks", "Upstream attempts abandoned for the next model, by cause.",
                    ["provider", "cause"], registry=REGISTRY)
LATENCY = Histogram("tokentra_gateway_request_duration_seconds", "Whole call, as the client waits for it.",
                    ["provider", "endpoint"], buckets=_CALL, registry=REGISTRY)
OVERHEAD = Histogram("tokentra_gateway_policy_seconds",
                     "Time spent before the upstream call (admission, routing, reservation).",
                     ["provider"], buckets=_FAST, registry=REGISTRY)
TOKENS = Counter("tokentra_gateway_tokens", "Tokens reported by providers, by kind.",
                 ["provider", "kind"], registry=REGISTRY)
CACHE_HITS = Counter("tokentra_gateway_cache_hits", "Calls answered from the semantic cache, by match kind.",
                     ["provider", "kind"], registry=REGISTRY)
CACHE_SAVED = Counter("tokentra_gateway_cache_saved_usd", "What the calls the cache answered would have cost (USD).",
                      ["provider"], registry=REGISTRY)
COST = Counter("tokentra_gateway_cost_usd", "Priced cost of recorded calls (USD).", ["provider"], registry=REGISTRY)


_children: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """metric.labels(*values), kept: the series of every call are few (providers, endpoints, statuses,
    kinds), and labels() costs a lock and a lookup of its own on each call."""
    key = (metric, *values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
