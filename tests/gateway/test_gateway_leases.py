"""Admission in memory across two gateway processes: budget leases never let the processes together admit
more than a hard budget holds, and once idle leases are handed back the budget admits exactly what fits;
a revoked key is refused at once by processes that had it cached; a runaway loop spread over both is
stopped, while prompts seen once are never written to the database."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest
from gateway_helpers import LOOP_LIMIT, one_prompt

from tokentra_cli.functions_server import free_port, start_functions

IDLE_SECONDS = 2.0  # gateway_lease_idle_seconds' default, which both servers run with


@pytest.fixture(scope="module")
def two_gateways(dsn: str, gateway_url: str) -> Iterator[list[str]]:
    """The tests' gateway and a second server process on the same database."""
    proc, url = start_functions(free_port(), env={"DATABASE_URL": dsn, "TOKENTRA_GATEWAY_POLICY_WAIT_SECONDS": "900",
                                                        "TOKENTRA_GATEWAY_LOOP_LIMIT": str(LOOP_LIMIT)})
    yield [gateway_url + "/openai/v1", url + "/gateway/openai/v1"]
    proc.terminate()
    proc.wait(120)


def _client(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=url, max_retries=0, timeout=600)


async def _call(client: openai.AsyncOpenAI) -> bool:
    """True when admitted; False when refused for the budget."""
    try:
        await client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt(), max_completion_tokens=50_000)
    except openai.RateLimitError as exc:
        assert exc.code == "budget_exceeded"
        return False
    return True


def test_leases_across_two_processes_never_pass_the_budget_and_return_what_fits(gw, two_gateways, upstream) -> None:
    budget = Decimal(random.choice(["0.50", "0.75", "1.00"]))
    key = gw.key(budget=budget, period="daily")
    upstream.app.exact_usage = True
    upstream.app.delay = 0.3
    try:
        async def burst() -> list[tuple[int, bool]]:
            clients = [_client(url, key) for url in two_gateways]
            try:
                which = [random.randrange(2) for _ in range(60)]
                admitted = await asyncio.gather(*(_call(clients[w]) for w in which))
                return list(zip(which, admitted, strict=True))
            finally:
                for c in clients:
                    await c.close()

        results = asyncio.run(burst())
        rows = gw.usage(key, sum(ok for _, ok in results), timeout=60)
        amount = rows[0]["cost_usd"]
        fit = math.floor(budget / amount)
        first = sum(ok for _, ok in results)
        assert 0 < first <= fit, "together the processes never admit more than the budget holds"
        assert {w for w, ok in results if ok} == {0, 1}, "both processes admitted calls from their leases"

        # Idle leases go back to the budget; calls then take what is left, to the last call that fits.
        time.sleep(IDLE_SECONDS + 1.0)

        async def rest() -> int:
            """Calls taking turns until both processes refuse in a row: a process may refuse while the other
            still holds a remainder too small for a call of its own, which it hands back when it next leases."""
            clients = [_client(url, key) for url in two_gateways]
            more = refused_in_a_row = 0
            try:
                for turn in range(2 * fit + 4):
                    if await _call(clients[turn % 2]):
                        more += 1
                        refused_in_a_row = 0
                    else:
                        refused_in_a_row += 1
                        if refused_in_a_row == 2:
                            break
            finally:
                for c in clients:
                    await c.close()
            return more

        upstream.app.delay = 0.0
        total = first + asyncio.run(rest())
    finally:
        upstream.app.delay = 0.0
        upstream.app.exact_usage = False
    assert total == fit, f"exactly the calls that fit were admitted ({total} of {fit} at ${amount})"
    rows = gw.usage(key, total, timeout=60)
    assert len(rows) == total and sum(r["cost_usd"] for r in rows) <= budget
    calls = gw.calls(total, key=key)
    assert len(calls) == total and {c["status"] for c in calls} == {"committed"}
    assert all(abs(c["amount_usd"] - amount) < Decimal("0.000001") for c in calls)
    time.sleep(IDLE_SECONDS + 1.0)
    held = gw.sql("select count(*) as n from private.budget_reservations where api_key_id = %s "
                  "and kind = 'lease' and status = 'open' and amount_usd > 0", gw.keys[key])[0]["n"]
    assert held == 0, "idle leases were handed back"


def test_revocation_reaches_every_process_that_cached_the_key(gw, two_gateways) -> None:
    key = gw.key()

    async def each() -> list[object]:
        out: list[object] = []
        for url in two_gateways:
            client = _client(url, key)
            try:
                out.append(await client.chat.completions.create(model="gpt-4o-mini", messages=one_prompt()))
            except openai.AuthenticationError as exc:
                out.append(exc)
            finally:
                await client.close()
        return out

    assert not any(isinstance(r, Exception) for r in asyncio.run(each())), "both processes admit (and cache) it"
    gw.sql("update public.api_keys set revoked_at = now() where id = %s", gw.keys[key])
    started = time.monotonic()
    while True:
        refused = [isinstance(r, openai.AuthenticationError) for r in asyncio.run(each())]
        if all(refused) or time.monotonic() - started > 2:
            break
    assert all(refused), "a revoked key is refused by every process within moments"
    assert time.monotonic() - started < 2


def test_a_loop_over_two_processes_is_stopped_and_single_prompts_stay_in_memory(gw, two_gateways) -> None:
    key = gw.key()
    loop = one_prompt()
    # Unique prompts first, in random number and order over both processes: none is a repeat.
    singles = random.randint(5, 15)

    async def calls() -> tuple[int, str | None]:
        clients = [_client(url, key) for url in two_gateways]
        try:
            for _ in range(singles):
                await random.choice(clients).chat.completions.create(model="gpt-4o-mini", messages=one_prompt())
            # The same prompt, taking turns. After each call, wait until the process that served it has
            # sent its count (from its second call there), so each process knows the other's counts up to
            # the other's last call, however slowly its counter sync runs on a busy machine.
            seen = [0, 0]
            for turn in range(LOOP_LIMIT + 4):
                try:
                    await clients[turn % 2].chat.completions.create(model="gpt-4o-mini", messages=loop)
                except openai.RateLimitError as exc:
                    return turn, exc.code
                seen[turn % 2] += 1
                sent = sum(n for n in seen if n >= 2)
                deadline = time.monotonic() + 20
                while sent and _repeats(gw, key) < sent:
                    assert time.monotonic() < deadline, f"the loop's count never reached {sent} in the database"
                    await asyncio.sleep(0.05)
            return LOOP_LIMIT + 4, None
        finally:
            for c in clients:
                await c.close()

    admitted, code = asyncio.run(calls())
    assert code == "runaway_loop_blocked", f"the loop ran {admitted} times unstopped"
    # Each process may admit one call the database has not heard of yet: at most one more than the limit.
    assert LOOP_LIMIT <= admitted <= LOOP_LIMIT + 1, admitted
    rows = gw.sql("select prompt_hash, sum(calls) as calls from private.gateway_prompt_repeats where key_id = %s "
                  "group by 1", gw.keys[key])
    assert len(rows) == 1, f"only the repeated prompt reached the database, not the {singles} single ones"
    assert rows[0]["calls"] >= LOOP_LIMIT


def _repeats(gw, key: str) -> int:
    """The most calls the database holds for any one prompt of this key."""
    return gw.sql("select coalesce(max(calls), 0) as n from private.gateway_prompt_repeats where key_id = %s",
                  gw.keys[key])[0]["n"]


def test_a_busy_key_leases_for_seconds_of_its_calls_not_a_fixed_count(dsn: str, gw) -> None:
    """Each lease reads the budgets' spend in the database, so a key making many calls a second must lease
    for its rate, not every few calls; the budget's admissions stay exact (leases are capped by its room)."""
    per_lease, calls = random.choice([2, 3]), random.randint(300, 400)
    proc, url = start_functions(free_port(), env={"DATABASE_URL": dsn, "TOKENTRA_GATEWAY_LEASE_CALLS": str(per_lease),
                                                        "TOKENTRA_GATEWAY_LEASE_RATE_SECONDS": "1"})
    key = gw.key(budget=Decimal("1000"), period="daily")
    try:
        async def run() -> int:
            client = _client(url + "/gateway/openai/v1", key)
            try:
                return sum([await _call(client) for _ in range(calls)])
            finally:
                await client.close()

        assert asyncio.run(run()) == calls
    finally:
        proc.terminate()
        proc.wait(120)
    leases = gw.sql("select count(*) as n from private.budget_reservations where api_key_id = %s and kind = 'lease'",
                    gw.keys[key])[0]["n"]
    # A fixed size needs at least calls / per_lease leases; sized by the rate (tens of calls a second at the
    # very least here), a few dozen at most.
    assert 1 <= leases < calls / per_lease / 3, f"{leases} leases for {calls} calls of {per_lease} each"
    rows = gw.usage(key, calls, timeout=60)
    assert len(rows) == calls
