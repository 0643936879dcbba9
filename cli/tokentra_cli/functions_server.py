"""Start the functions (`functions.app`) in a child process and wait until they answer.

Used by the demo, the benchmarks and the tests, so all of them run the real server the same way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import IO

import httpx


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def start_functions(port: int, env: dict[str, str] | None = None, log: IO | None = None,
                    log_level: str = "warning", workers: int = 1) -> tuple[subprocess.Popen, str]:
    """Serve on `port` (the next free one if taken); return the process and the base URL."""
    while not port_free(port):
        port += 1
    proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
        [sys.executable, "-m", "uvicorn", "tokentra_functions.app:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", log_level, "--workers", str(workers),
         # 431 for oversized headers; no access log of the server's own (it quotes query strings: values).
         "--http", "tokentra_functions._http:HttpToolsProtocol", "--no-access-log"],
        env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT if log else None,
    )
    url = f"http://127.0.0.1:{port}/functions/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the functions server did not start")


def stop_functions(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
