"""Whether LLM features are on, from the configured keys alone: no network, and no LLM client library imported."""

from __future__ import annotations

from tokentra_core.settings import Settings

__all__ = ["HOW_TO_TURN_ON", "configured_providers", "llm_status"]

HOW_TO_TURN_ON = "set OPENAI_API_KEY or ANTHROPIC_API_KEY to turn LLM features on"


def configured_providers(settings: Settings) -> list[str]:
    """Providers with a non-empty key, in a fixed order."""
    keys = {"openai": settings.openai_api_key, "anthropic": settings.anthropic_api_key}
    return [name for name, key in keys.items() if key is not None and key.get_secret_value().strip()]


def llm_status(settings: Settings) -> dict:
    """{"enabled", "providers", "reason"}: LLM features run when at least one provider has a key."""
    providers = configured_providers(settings)
    if not providers:
        return {"enabled": False, "providers": [], "reason": f"no provider key configured; {HOW_TO_TURN_ON}"}
    missing = [p for p in ("openai", "anthropic") if p not in providers]
    reason = f"{', '.join(providers)} key configured"
    if missing:
        reason += f"; tasks on {', '.join(missing)} use their fallback model"
    return {"enabled": True, "providers": providers, "reason": reason}
