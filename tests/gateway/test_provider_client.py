"""The gateway's provider client against a local server that writes HTTP/1.1 answers byte by byte as a
provider could: every framing (length, chunks, read until close), compressed answers, kept-alive
connections reused and dropped, TLS, timeouts, broken answers, and the bound on open connections."""

from __future__ import annotations

import asyncio
import gzip
import random
import ssl
import subprocess
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tokentra_functions.gateway.provider_client import ProviderClient, UpstreamError

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # the request's head: keep the connection?


class Server:
    """Reads each request (head and content-length body) and lets a handler write the answer."""

    def __init__(self, handler: Handler, context: ssl.SSLContext | None = None) -> None:
        self.handler, self.context = handler, context
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.bodies: list[bytes] = []

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.close()

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"{'https' if self.context else 'http'}://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.bodies.append(await reader.readexactly(length))
                if not await self.handler(head, writer):
                    return
        finally:
            self.open -= 1
            writer.close()


def _answer(body: bytes, framing: str, rng: random.Random, extra: bytes = b"") -> list[bytes]:
    """The answer's bytes as a provider would write them, cut into random pieces."""
    if framing == "length":
        raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra + \
              b"content-length: %d\r\n\r\n" % len(body) + body
    elif framing == "chunked":
        parts, at = [], 0
        while at < len(body):
            size = rng.randint(1, 5000)
            parts.append(b"%x\r\n" % len(body[at:at + size]) + body[at:at + size] + b"\r\n")
            at += size
        raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra + \
              b"transfer-encoding: chunked\r\n\r\n" + b"".join(parts) + b"0\r\n\r\n"
    else:  # until close
        raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + extra + b"connection: close\r\n\r\n" + body
    pieces, at = [], 0
    while at < len(raw):
        size = rng.randint(1, 20000)
        pieces.append(raw[at:at + size])
        at += size
    return pieces


def _client(**overrides: object) -> ProviderClient:
    options: dict[str, object] = {"max_connections": 10, "connect_timeout": 5.0, "read_timeout": 5.0, **overrides}
    return ProviderClient(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [3, 1009, random.randrange(10**9)])
def test_every_framing_reads_whole_and_kept_alive_connections_are_reused(seed: int) -> None:
    rng = random.Random(seed)
    plan: list[tuple[str, str, bytes]] = []
    for _ in range(rng.randint(20, 40)):
        body = rng.randbytes(rng.choice([0, rng.randint(1, 300), rng.randint(1000, 200_000)]))
        plan.append((rng.choice(["length", "chunked", "close"]), rng.choice(["identity", "gzip", "deflate"]), body))
    answers = iter(plan)

    async def handler(_: bytes, writer: asyncio.StreamWriter) -> bool:
        framing, encoding, body = next(answers)
        wire, extra = body, b"x-ratelimit-remaining-requests: 7\r\nX-Request-Id: req-1\r\n"
        if encoding == "gzip":
            wire, extra = gzip.compress(body), extra + b"content-encoding: gzip\r\n"
        elif encoding == "deflate":
            wire, extra = zlib.compress(body), extra + b"Content-Encoding: deflate\r\n"
        for piece in _answer(wire, framing, rng, extra):
            writer.write(piece)
            await writer.drain()
            if rng.random() < 0.2:
                await asyncio.sleep(0.001)
        return framing != "close"

    async def scenario() -> None:
        client = _client()
        async with Server(handler) as server:
            for index, (framing, _, body) in enumerate(plan):
                sent = rng.randbytes(rng.randint(0, 100_000))
                response = await client.request("POST", server.url(f"/v1/chat/completions?n={index}"),
                                                {"content-type": "application/json"}, sent)
                async with response:
                    assert response.status == 200
                    assert response.header("x-ratelimit-remaining-requests") == "7"
                    assert response.header("x-request-id") == "req-1"  # names come lower-cased
                    assert await response.read() == body, (seed, index, framing)
                assert server.bodies[-1] == sent
            # A new connection only for the first call and after each answer that closed its connection.
            closes = sum(1 for framing, _, _ in plan[:-1] if framing == "close")
            assert server.connections == 1 + closes
        await client.close()

    asyncio.run(scenario())


def test_a_stream_arrives_piece_by_piece() -> None:
    """Each event is passed on when it comes, not when the answer ends."""

    async def scenario() -> None:
        step = asyncio.Event()

        async def handler(_: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for n in range(3):
                event = b"data: %d\n\n" % n
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await step.wait()
                step.clear()
            writer.write(b"0\r\n\r\n")
            return True

        client = _client()
        async with Server(handler) as server:
            response = await client.request("POST", server.url(), {}, b"{}")
            got = []
            async for chunk in response.iter_chunks():
                got.append(chunk)
                step.set()  # the server sends the next event only once this one was read
            response.release()
            assert got == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n"]
        await client.close()

    asyncio.run(scenario())


def test_failures_are_upstream_errors_or_timeouts() -> None:
    async def scenario() -> None:
        client = _client(read_timeout=0.5, connect_timeout=2.0)

        async def silent(_: bytes, writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(3)
            return False

        async def cut(_: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
            await writer.drain()
            return False

        async def garbage(_: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(b"SMTP ready\r\n\r\n")
            return False

        async def brotli(_: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\ncontent-length: 3\r\n\r\nabc")
            return True

        async with Server(silent) as server:
            with pytest.raises(TimeoutError):
                await client.request("POST", server.url(), {}, b"{}")
        async with Server(cut) as server:
            response = await client.request("POST", server.url(), {}, b"{}")
            with pytest.raises(UpstreamError):
                await response.read()
            response.release()
        async with Server(garbage) as server:
            with pytest.raises(UpstreamError, match="not valid HTTP"):
                await client.request("POST", server.url(), {}, b"{}")
        async with Server(brotli) as server:
            with pytest.raises(UpstreamError, match="content-encoding br"):
                await client.request("POST", server.url(), {}, b"{}")
            # A header that would split the request is refused before anything is sent.
            before = len(server.bodies)
            with pytest.raises(UpstreamError, match="character"):
                await client.request("POST", server.url(), {"idempotency-key": "a\r\nx-evil: 1"}, b"{}")
            assert len(server.bodies) == before
        closed = Server(silent)
        async with closed:
            port = closed.port
        with pytest.raises(UpstreamError, match="could not connect"):
            await client.request("POST", f"http://127.0.0.1:{port}/v1/models", {}, b"")
        with pytest.raises(UpstreamError, match="not an http"):
            await client.request("GET", "ftp://127.0.0.1/v1/models", {})
        # Every failure gave its connection slot back: ten more calls still fit the bound of ten.
        assert client._slots._value == 10
        await client.close()

    asyncio.run(scenario())


def test_open_connections_are_bounded_and_a_closed_idle_one_is_replaced() -> None:
    async def scenario() -> None:
        async def slow(_: bytes, writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            return True

        client = _client(max_connections=3)
        async with Server(slow) as server:

            async def one() -> bytes:
                async with await client.request("POST", server.url(), {}, b"{}") as response:
                    return await response.read()

            assert await asyncio.gather(*(one() for _ in range(12))) == [b"ok"] * 12
            assert server.most_open == 3
            # Calls abandoned mid-answer, and a fourth abandoned while it waits for a slot, give their slots
            # back: all three are free again (a leaked one would leave the next three waiting forever).
            abandoned = [asyncio.create_task(one()) for _ in range(4)]
            await asyncio.sleep(0.01)
            for task in abandoned:
                task.cancel()
            outcomes = await asyncio.gather(*abandoned, return_exceptions=True)
            assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
            assert await asyncio.wait_for(asyncio.gather(*(one() for _ in range(3))), 5) == [b"ok"] * 3
        await client.close()

        async def answer_then_close(_: bytes, writer: asyncio.StreamWriter) -> bool:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.02)
            return False  # kept alive by the answer, then closed as idle (as servers do after their keep-alive)

        client = _client()
        async with Server(answer_then_close) as server:
            for _ in range(4):
                async with await client.request("POST", server.url(), {}, b"{}") as response:
                    assert await response.read() == b"ok"
                await asyncio.sleep(0.1)
            # Each call noticed its idle connection had been closed and opened another, instead of failing.
            assert server.connections == 4
        await client.close()

    asyncio.run(scenario())


def test_tls_is_verified_against_the_trust_store(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def handler(_: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret")
        return True

    async def scenario() -> None:
        async with Server(handler, server_context) as server:
            client = _client(ssl_context=trusting)
            for _ in range(3):
                async with await client.request("POST", server.url(), {}, b"{}") as response:
                    assert await response.read() == b"secret"
            assert server.connections == 1
            await client.close()
            # The system's trust store does not know this certificate: no answer, no key sent.
            stranger = _client()
            sent = len(server.bodies)
            with pytest.raises(UpstreamError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await stranger.request("POST", server.url(), {"authorization": "Bearer sk-x"}, b"{}")
            assert len(server.bodies) == sent
            await stranger.close()

    asyncio.run(scenario())
