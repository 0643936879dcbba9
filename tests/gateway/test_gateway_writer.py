"""The usage writer is a process of its own: calls it had not confirmed when it was killed are sent to the
next writer and stored exactly once, and a server killed after answering still has its calls written by
the writer it handed them to. Each test runs its own server with a long linger, so the kill lands while
the calls are received but not yet written."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from gateway_helpers import one_prompt

from tokentra_cli.functions_server import free_port, start_functions
from tokentra_functions.gateway.recorder import FLUSH_SECONDS

LINGER_SECONDS = 3.0


def _writers(parent: int) -> list[int]:
    """The usage writer processes started by `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"tokentra_functions.gateway.usage_writer" in cmdline:
            found.append(int(entry.name))
    return found


def _wait_for_writer(parent: int, other_than: int | None = None, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in _writers(parent) if p != other_than]
        if pids:
            return pids[0]
        time.sleep(0.05)
    raise AssertionError(f"no usage writer started by {parent}")


@pytest.fixture
def lingering_gateway(dsn: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, url = start_functions(free_port(), env={"DATABASE_URL": dsn,
                                                  "TOKENTRA_GATEWAY_USAGE_LINGER_SECONDS": str(LINGER_SECONDS)})
    yield proc, url + "/gateway/openai/v1"
    if proc.poll() is None:
        proc.terminate()
        proc.wait(120)


def _calls(url: str, key: str, n: int) -> list[str]:
    client = openai.OpenAI(api_key=key, base_url=url, max_retries=0)
    try:
        ids = []
        for _ in range(n):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=one_prompt(), max_tokens=random.randint(5, 40))
            ids.append(raw.headers["x-tokentra-request-id"])
        return ids
    finally:
        client.close()


def _stored_once(gw, key: str, ids: list[str]) -> None:
    rows = gw.usage(key, len(ids), timeout=60)
    time.sleep(LINGER_SECONDS + 0.5)  # a second write of any call would have landed by now
    rows = gw.usage(key, len(ids), timeout=0)
    assert sorted(str(r["request_id"]) for r in rows) == sorted(ids)
    # each call admitted against the hard budget became its own reservation, committed at its stored cost
    gw.calls(len(ids))
    reservations = gw.sql("select status, count(*) as n from private.budget_reservations "
                          "where org_id = %s and kind = 'call' group by 1", gw.org_id)
    assert reservations == [{"status": "committed", "n": len(ids)}]


def test_calls_a_killed_writer_had_not_confirmed_are_stored_once(gw, lingering_gateway) -> None:
    proc, url = lingering_gateway
    key = gw.key(budget=Decimal("50"), period="daily")
    ids = _calls(url, key, random.randint(1, 3))  # starts the writer
    first = _wait_for_writer(proc.pid)
    ids += _calls(url, key, random.randint(2, 6))
    os.kill(first, signal.SIGKILL)  # inside the linger: these calls were received, none written
    second = _wait_for_writer(proc.pid, other_than=first)
    assert second != first
    ids += _calls(url, key, random.randint(1, 4))  # the new writer takes new calls too
    _stored_once(gw, key, ids)


def test_a_killed_server_leaves_its_calls_to_the_writer(gw, lingering_gateway) -> None:
    proc, url = lingering_gateway
    key = gw.key(budget=Decimal("50"), period="daily")
    ids = _calls(url, key, random.randint(2, 8))
    writer = _wait_for_writer(proc.pid)
    time.sleep(FLUSH_SECONDS + 0.25)  # handed over (a crash loses only calls not yet handed to the writer)
    proc.kill()  # no shutdown: nothing drains; the writer's input just closes
    proc.wait(10)
    _stored_once(gw, key, ids)
    deadline = time.monotonic() + 30
    while _alive(writer) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(writer), "the writer did not exit once its calls were written"


def _alive(pid: int) -> bool:
    """Running (an exited process its new parent has not reaped yet is a zombie: not running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
