"""Fixtures for the SDK tests: a fake provider server, the ingest receiver, configured and wrapped clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import openai
import pytest
from sdk_fake_providers import PROVIDER_KEY, ProviderServer
from sdk_ingest_receiver import TOKENTRA_KEY, IngestReceiver

import tokentra
from tokentra import _state


@pytest.fixture
def provider_server() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


@pytest.fixture
def ingest_receiver() -> Iterator[IngestReceiver]:
    """The local ingest endpoint: `.url` is the functions base URL, `.events` what it accepted."""
    receiver = IngestReceiver(TOKENTRA_KEY).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def sdk(ingest_receiver: IngestReceiver) -> Iterator[IngestReceiver]:
    """tokentra configured against the receiver; batches leave only on flush() or when full."""
    tokentra.configure(api_key=TOKENTRA_KEY, url=ingest_receiver.url, flush_interval=60.0, batch_size=100,
                       backoff_base=0.01)
    yield ingest_receiver
    _state.reset()


@pytest.fixture
def openai_client(provider_server: ProviderServer, sdk: IngestReceiver) -> Iterator[openai.OpenAI]:
    raw = openai.OpenAI(api_key=PROVIDER_KEY, base_url=provider_server.url + "/v1", max_retries=0)
    yield tokentra.wrap(raw)
    raw.close()


@pytest.fixture
async def async_openai_client(provider_server: ProviderServer, sdk: IngestReceiver
                              ) -> AsyncIterator[openai.AsyncOpenAI]:
    raw = openai.AsyncOpenAI(api_key=PROVIDER_KEY, base_url=provider_server.url + "/v1", max_retries=0)
    yield tokentra.wrap(raw)
    await raw.close()


@pytest.fixture
def anthropic_client(provider_server: ProviderServer, sdk: IngestReceiver) -> Iterator[anthropic.Anthropic]:
    raw = anthropic.Anthropic(api_key=PROVIDER_KEY, base_url=provider_server.url, max_retries=0)
    yield tokentra.wrap(raw)
    raw.close()


@pytest.fixture
async def async_anthropic_client(provider_server: ProviderServer, sdk: IngestReceiver
                                 ) -> AsyncIterator[anthropic.AsyncAnthropic]:
    raw = anthropic.AsyncAnthropic(api_key=PROVIDER_KEY, base_url=provider_server.url, max_retries=0)
    yield tokentra.wrap(raw)
    await raw.close()

