"""`wrap(client)`: the customer's OpenAI or Anthropic client, with usage recorded on the side."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from ._helpers import instrument_stream_helper
from ._instrument import instrument_async, instrument_sync
from ._observe import ENDPOINTS
from ._proxy import Hook, ObjectProxy
from ._routing_client import Router
from .budgets import Enforcement
from .cache import CacheClient

__all__ = ["wrap"]

ClientT = TypeVar("ClientT")

# Methods recorded per endpoint, besides the `.stream()` helper; `parse` returns the same usage as `create`.
_RECORDED = ("create", "parse")


def wrap(client: ClientT, enforce_budgets: str | None = None, fail_open: bool = True,
         budget_cache_seconds: float = 5.0, cache: bool = False, routing: bool = False,
         strategy: str | None = None, quality_floor: float | None = None,
         routing_refresh_seconds: float = 60.0) -> ClientT:
    """Return a proxy of `client` that records every chat completion, response and message call.

    Accepts `openai.OpenAI`, `openai.AsyncOpenAI` (and their Azure variants), `anthropic.Anthropic` and
    `anthropic.AsyncAnthropic`. Everything else on the client behaves as on the original.

    `enforce_budgets="strict"` or `"eventual"` checks hard budgets before each create/parse call and
    raises `tokentra.BudgetExceeded` instead of calling the provider when one has no room; when
    TokenTRA is unreachable the call proceeds (`fail_open=True`) or raises (see tokentra.budgets).

    `cache=True` looks non-streamed calls up in TokenTRA's semantic cache first and answers hits from it
    (see tokentra.cache); it always fails open.

    `routing=True` applies the organization's routing rules, and with `strategy` ("cheapest", "fastest",
    "balanced", "quality") the registry's choice under `quality_floor` (0..1), deciding locally from a
    snapshot refreshed in the background every `routing_refresh_seconds` (see tokentra._routing_client);
    it fails open, and a routed call that errors is made again on the model asked for.
    """
    if isinstance(client, ClientProxy):
        if enforce_budgets is None and not cache and not routing:
            return client
        client = client._tt_target
    provider, is_async = _identify(client)
    enforcement = Enforcement(enforce_budgets, fail_open, budget_cache_seconds) if enforce_budgets else None
    router = Router(strategy, quality_floor, routing_refresh_seconds) if routing else None
    return ClientProxy(client, provider, is_async, enforcement,  # type: ignore[return-value]
                       CacheClient() if cache else None, router)


class ClientProxy(ObjectProxy):
    """The wrapped client; `with_options()`/`copy()` and `with` blocks hand back wrapped clients too."""

    __slots__ = ()

    def __init__(self, client: Any, provider: str, is_async: bool,
                 enforcement: Enforcement | None = None, cache: CacheClient | None = None,
                 router: Router | None = None) -> None:
        super().__init__(client, _client_hooks(provider, is_async, enforcement, cache, router))

    def __enter__(self) -> ClientProxy:
        self._tt_target.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._tt_target.__exit__(*exc_info)

    async def __aenter__(self) -> ClientProxy:
        await self._tt_target.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._tt_target.__aexit__(*exc_info)


def _identify(client: Any) -> tuple[str, bool]:
    mro = type(client).__mro__
    provider = type(client).__module__.split(".")[0]
    if provider not in ("openai", "anthropic"):
        for cls in mro:
            root = cls.__module__.split(".")[0]
            if root in ("openai", "anthropic"):
                provider = root
                break
        else:
            name = type(client).__name__
            raise TypeError(f"tokentra.wrap() supports OpenAI and Anthropic clients, not {name}")
    is_async = any(cls.__name__.startswith("Async") for cls in mro)
    return provider, is_async


def _client_hooks(provider: str, is_async: bool, enforcement: Enforcement | None = None,
                  cache: CacheClient | None = None, router: Router | None = None) -> dict[str, Hook]:
    instrument = instrument_async if is_async else instrument_sync

    def resource(endpoint_name: str) -> Hook:
        endpoint = ENDPOINTS[endpoint_name]
        hooks = {name: _method_hook(instrument, provider, endpoint, enforcement, cache, router)
                 for name in _RECORDED}
        hooks["stream"] = lambda method: instrument_stream_helper(method, provider, endpoint, is_async)
        return lambda target: ObjectProxy(target, hooks)

    def rewrap(method: Callable[..., Any]) -> Callable[..., Any]:
        def rewrapped(*args: Any, **kwargs: Any) -> Any:
            return ClientProxy(method(*args, **kwargs), provider, is_async, enforcement, cache, router)

        return rewrapped

    hooks: dict[str, Hook] = {"with_options": rewrap, "copy": rewrap}
    if provider == "openai":
        completions = resource("chat.completions")
        hooks["chat"] = lambda chat: ObjectProxy(chat, {"completions": completions})
        hooks["responses"] = resource("responses")
    else:
        hooks["messages"] = resource("messages")
    return hooks


def _method_hook(instrument: Callable[..., Any], provider: str, endpoint: Any,
                 enforcement: Enforcement | None = None, cache: CacheClient | None = None,
                 router: Router | None = None) -> Hook:
    # Every create/parse of an async client returns an awaitable, even where a decorator hides that
    # from inspect.iscoroutinefunction, so the client's kind decides which wrapper to use.
    def hook(method: Any) -> Any:
        return instrument(method, provider, endpoint, enforcement, cache, router) if callable(method) else method

    return hook
