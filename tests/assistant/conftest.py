"""The assistant tests' fixtures: scripted provider servers shared by a functions server of their own
(provider keys pointing at them, its LLM usage posted to its own ingest), and organizations with usage."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secret_registry import SECRETS_SEEN
from tokentra_cli.functions_server import free_port, start_functions, stop_functions
from tokentra_dev.testing.llm_servers import Answer, LLMServers, SeenRequest

sys.path.insert(0, str(Path(__file__).parent))


class Scripted:
    """One pair of scripted servers for the whole session; each test sets the script (until it does,
    every request fails with 500) and reads what was seen since."""

    def __init__(self) -> None:
        self.script: Callable[[SeenRequest], Answer] = lambda seen: Answer.error(500)
        self.inner = LLMServers(lambda seen: self.script(seen))

    @property
    def seen(self) -> list[SeenRequest]:
        return self.inner.seen


@pytest.fixture(scope="session")
def scripted_session() -> Iterator[Scripted]:
    s = Scripted()
    with s.inner:
        env = s.inner.env()
        SECRETS_SEEN.extend([env["OPENAI_API_KEY"], env["ANTHROPIC_API_KEY"]])
        yield s


@pytest.fixture
def scripted(scripted_session: Scripted) -> Scripted:
    scripted_session.inner.seen.clear()
    scripted_session.script = lambda seen: Answer.error(500)
    return scripted_session


@pytest.fixture(scope="session")
def assistant_url(dsn: str, scripted_session: Scripted, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real functions server with both provider keys set (at the scripted servers)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("assistant") / "server.log"
    env = {"DATABASE_URL": dsn, **scripted_session.inner.env(), "TOKENTRA_LLM_TIMEOUT_SECONDS": "5",
           "TOKENTRA_LLM_INGEST_URL": f"http://127.0.0.1:{port}/functions/v1/ingest"}
    with open(log_path, "w") as log:
        proc, url = start_functions(port, env=env, log=log, log_level="info")
        yield url
        stop_functions(proc)
    text = log_path.read_text()
    leaked = [s[:12] + "..." for s in SECRETS_SEEN if s in text]
    assert not leaked, f"secrets found in the functions log {log_path}: {leaked}"
