"""Inline policy before a call goes upstream: the virtual key and its block rules and rate limits, the
allowed models, the routing seam, then (admission.py) the budget hold of the chosen model's maximum cost
in this process's lease and its release when the call never reaches a provider. Most calls make no
database round trip: keys, counters, prices and budget leases live in memory (admission.py).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from tokentra_core.db import AsyncConn
from tokentra_core.secrets import unseal_provider_secret
from tokentra_core.settings import get_settings
from tokentra_functions.auth import ApiKeyOrg
from tokentra_functions.gateway.admission import Admission
from tokentra_functions.gateway.errors import Refusal
from tokentra_functions.gateway.read_ahead import ReadAhead
from tokentra_functions.gateway.wire import RequestFacts

log = logging.getLogger("tokentra.gateway")
KEY_SHAPE = re.compile(r"^tt_vk_[A-Za-z0-9_-]{43}$")
PUBLIC_ENDPOINTS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
INVALID_KEY = Refusal("invalid_api_key", "Incorrect or inactive TokenTRA virtual key.")


@lru_cache(maxsize=65536)
def ingest_key(key_id: UUID, org_id: UUID, project_id: UUID | None) -> ApiKeyOrg:
    """A virtual key as the ingest path knows it: usage rows carry its id. Kept per key, not built per call;
    the server and the usage writer process both build it here."""
    return ApiKeyOrg(key_id=key_id, org_id=org_id, project_id=project_id, scopes=["gateway"], mode="live",
                     rate_limit_per_minute=1)


@dataclass(frozen=True, slots=True)
class VirtualKey:
    key_id: UUID
    org_id: UUID
    project_id: UUID | None
    name: str
    team: str | None
    project: str | None
    end_user_id: str | None
    allowed_models: tuple[str, ...] | None
    allowed_providers: tuple[str, ...] | None
    store_prompts: bool

    @property
    def ingest_key(self) -> ApiKeyOrg:
        return ingest_key(self.key_id, self.org_id, self.project_id)

    def allows(self, provider: str, model: str) -> bool:
        if self.allowed_providers is not None and provider not in self.allowed_providers:
            return False
        return self.allowed_models is None or model in self.allowed_models


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The virtual key where each official client puts its key: Bearer (OpenAI) or x-api-key (Anthropic)."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key")


async def admit(admission: Admission, presented: str | None, prompt_hash: str | None) -> VirtualKey:
    """The key's policy, or the Refusal for an invalid key, a tripped block rule or a rate limit (all
    checked in memory on most calls: admission.py)."""
    if not presented or not KEY_SHAPE.match(presented):
        raise INVALID_KEY
    settings = get_settings()
    found = await admission.key(presented)
    if found is None:
        raise INVALID_KEY
    row, policy = found
    verdict, retry_after = admission.admit_counts(row["key_id"], policy, prompt_hash)
    if verdict == "loop" and prompt_hash is not None:
        await admission.block(row["key_id"], prompt_hash)
    if verdict in ("blocked", "loop"):
        raise Refusal("runaway_loop_blocked",
                      "This virtual key is stopped: it repeated the same prompt more than "
                      f"{settings.gateway_loop_limit} times in {settings.gateway_loop_window_seconds} s "
                      "(runaway loop kill-switch). An admin can lift it: tokentra virtual-keys unblock.",
                      retry_after=retry_after)
    if verdict == "rpm":
        raise Refusal("rate_limit_exceeded", "Rate limit reached for this virtual key: requests per minute.",
                      retry_after=retry_after)
    if verdict == "tpm":
        raise Refusal("tokens_rate_limit_exceeded", "Rate limit reached for this virtual key: tokens per minute.",
                      retry_after=retry_after)
    return VirtualKey(
        key_id=row["key_id"], org_id=row["org_id"], project_id=row["project_id"], name=row["key_name"],
        team=row["team"], project=row["project"], end_user_id=row["end_user_id"],
        allowed_models=tuple(row["allowed_models"]) if row["allowed_models"] is not None else None,
        allowed_providers=tuple(row["allowed_providers"]) if row["allowed_providers"] is not None else None,
        store_prompts=row["store_prompts"])


# ---------------------------------------------------------------- provider credentials
@dataclass(slots=True)
class Upstream:
    base_url: str
    api_key: str = field(repr=False)  # never printed, never logged
    expires: float = 0.0


_credentials: dict[tuple[UUID, str], Upstream] = {}
# A connection that is gone answers a read with a Refusal: its entry was dropped, the next call is refused.
_credentials_ahead = ReadAhead("credentials", expected=(Refusal,))


async def upstream_for(pool: AsyncConnectionPool[AsyncConn], org_id: UUID, provider: str) -> Upstream:
    """The organization's connection to a provider, decrypted, kept in memory for a short while so a call
    does not decrypt again (a changed or removed connection applies within gateway_credentials_seconds).
    A connection in use is read again ahead of its entry's end by a task of its own, so no call waits for
    that round trip and decryption."""
    now = time.monotonic()
    cached = _credentials.get((org_id, provider))
    if cached is not None and cached.expires > now:
        if _credentials_ahead.due((org_id, provider), cached.expires - now, get_settings().gateway_credentials_seconds):
            _credentials_ahead.start((org_id, provider), lambda: _read_upstream(pool, org_id, provider))
        return cached
    return await _read_upstream(pool, org_id, provider)


async def _read_upstream(pool: AsyncConnectionPool[AsyncConn], org_id: UUID, provider: str) -> Upstream:
    now = time.monotonic()
    async with pool.connection() as conn:
        cur = await conn.execute("select * from private.provider_connection_for(%s, %s)", (org_id, provider))
        row = await cur.fetchone()
        if row is None:
            _credentials.pop((org_id, provider), None)
            raise Refusal("no_provider_connection",
                          f"The organization has no enabled {provider} connection: "
                          f"tokentra providers add --org ORG --provider {provider} --api-key -")
        if row["vault_secret_id"] is not None:
            cur = await conn.execute("select decrypted_secret from vault.decrypted_secrets where id = %s",
                                     (row["vault_secret_id"],))
            vaulted = await cur.fetchone()
            if vaulted is None:  # the connection names a vault secret that has since been deleted
                _credentials.pop((org_id, provider), None)
                raise Refusal("no_provider_connection",
                              f"The organization's {provider} connection has lost its secret: add it again with "
                              f"tokentra providers add --org ORG --provider {provider} --api-key -")
            secret = vaulted["decrypted_secret"]
        else:
            secret = unseal_provider_secret(org_id, bytes(row["ciphertext"]), bytes(row["wrapped_key"]))
    upstream = Upstream(base_url=(row["base_url"] or PUBLIC_ENDPOINTS[provider]).rstrip("/"), api_key=secret,
                        expires=now + get_settings().gateway_credentials_seconds)
    _credentials[(org_id, provider)] = upstream
    return upstream


# ---------------------------------------------------------------- routing
@dataclass(slots=True)
class Decision:
    """Which model a call goes to, why, and what to try next (tokentra.routing decides; the request may
    add fallbacks of its own in x-tokentra-fallbacks)."""

    model: str
    fallbacks: list[str]
    reason: str = "asked"
    rule_id: str | None = None
    arm: str | None = None
    experiment: str | None = None
    directives: dict[str, Any] = field(default_factory=dict)


async def decide(pool: AsyncConnectionPool[AsyncConn], key: VirtualKey, provider: str, headers: Mapping[str, str],
                 body: dict[str, Any], facts: RequestFacts, attribution: dict[str, Any]) -> Decision:
    """The organization's routing rules, then the strategy the request asks for (x-tokentra-strategy,
    x-tokentra-quality-floor), over the registry snapshot every function shares. A rule that blocks is a
    refusal; a routed model the key may not call is not taken; routing that fails leaves the asked model."""
    header = headers.get("x-tokentra-fallbacks", "")
    extra = [m.strip() for m in header.split(",") if m.strip()]
    try:
        from tokentra.routing import RouteRequest
        from tokentra.routing import decide as route
        from tokentra_functions.routing import snapshot_for

        floor = headers.get("x-tokentra-quality-floor")
        strategy = headers.get("x-tokentra-strategy") or None
        route_request = RouteRequest(
            model=facts.model, provider=provider, task_type=facts.task_type,
            input_tokens=facts.input_tokens_bound // 4, output_tokens=facts.max_output_tokens,
            feature=attribution.get("feature"), team=attribution.get("team"), project=attribution.get("project"),
            user_id=attribution.get("user_id"), strategy=strategy, quality_floor=float(floor) if floor else None,
            needs_tools=bool(body.get("tools")), needs_vision=facts.images > 0,
            needs_json=isinstance(body.get("response_format"), dict), providers=(provider,),
            stable_key=attribution.get("user_id") or str(key.key_id))
        routed = route(route_request, await snapshot_for(pool, str(key.org_id)))
    except ValueError as exc:  # a bad strategy or floor header: the caller's mistake, named
        raise Refusal("invalid_request", str(exc)) from None
    except Exception as exc:  # routing is an optimisation: never let it fail a call
        log.warning("routing failed open org=%s: %s", key.org_id, type(exc).__name__)
        return Decision(model=facts.model, fallbacks=_allowed(key, provider, extra, facts.model))
    if routed.blocked:
        raise Refusal("blocked_by_rule", f"This call is blocked by routing rule {routed.rule_id}.")
    model = routed.model if key.allows(provider, routed.model) and routed.provider in (None, provider) \
        else facts.model
    fallbacks = [*routed.fallbacks, *extra]
    if model != facts.model:
        fallbacks.append(facts.model)  # the asked model is the last resort of a routed call
    return Decision(model=model, fallbacks=_allowed(key, provider, fallbacks, model),
                    reason=routed.reason if model == routed.model else "asked (routed model not allowed)",
                    rule_id=routed.rule_id, arm=routed.arm if model == routed.model else None,
                    experiment=routed.experiment.arm if routed.experiment else None,
                    directives={k: dict(v) for k, v in routed.directives.items()})


def _allowed(key: VirtualKey, provider: str, models: list[str], chosen: str) -> list[str]:
    """Fallbacks the key may call, each once, never the chosen model again; at most five."""
    out: list[str] = []
    for m in models:
        if m != chosen and m not in out and key.allows(provider, m):
            out.append(m)
    return out[:5]


def budget_attribution(attribution: dict[str, Any]) -> dict[str, Any]:
    """The tags budgets are matched on (a call's budgets, and so its lease, depend on these alone)."""
    return {k: v for k, v in attribution.items() if k in ("team", "project", "feature", "user_id")}
