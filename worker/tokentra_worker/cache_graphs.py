"""The `cache_graphs` job: give each large semantic cache scope that shares its hash partition a graph of
its own, and drop those no longer needed.

A lookup in a large scope walks an HNSW graph. The partition's graph holds every scope hashed into it, so a
scope that is half its partition walks twice as far as one alone; a partial index on the scope is a graph of
its rows only, which the lookup uses once it is valid. What to build and drop is decided in SQL
(`private.semantic_cache_scope_graph_changes`); the statements run here because CREATE and DROP INDEX
CONCURRENTLY, which leave the cache open to writes while they run, cannot run inside a function.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from threading import Event

from tokentra_core.db import connect, one
from tokentra_core.settings import get_settings
from tokentra_worker.jobs import JobContext

__all__ = ["apply_cache_graph_changes", "run_cache_graphs"]

log = logging.getLogger("tokentra.worker.cache_graphs")


def apply_cache_graph_changes(
    dsn: str,
    build_memory_mb: int | None = None,
    stop: Event | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, int] | None:
    """Run the planned drops, then builds (largest scope first); return (built, dropped), or None when
    another run (a scheduled one, `--once`, a bench) is still at it.

    A failed build leaves an invalid index, which the next run drops and builds again."""
    memory = build_memory_mb or get_settings().cache_graph_build_memory_mb
    built = dropped = 0
    with connect(dsn, autocommit=True) as conn:
        # One run at a time: a second would take the first's build in progress (not yet valid) for a failed
        # one, and drop it. Held by this session, released when it ends.
        if not one(conn.execute("select pg_try_advisory_lock(hashtext('tokentra.cache_graphs')) as got"))["got"]:
            return None
        conn.execute(f"set maintenance_work_mem = '{int(memory)}MB'")
        # A large scope's build takes minutes: a timeout of the role's would fail it at every run.
        conn.execute("set statement_timeout = 0")
        changes = conn.execute(
            "select action, index_name, entries, share, statement from private.semantic_cache_scope_graph_changes()"
        ).fetchall()
        for change in changes:
            if stop is not None and stop.is_set():
                break
            started = time.monotonic()
            conn.execute(change["statement"])
            if change["action"] == "create":
                built += 1
            else:
                dropped += 1
            if progress is not None:
                share = f", {change['share']:.0%} of its partition" if change["share"] is not None else ""
                progress(f"{change['action']} {change['index_name']} ({change['entries'] or 0:,} entries{share}) "
                         f"in {time.monotonic() - started:.1f} s [{built + dropped}/{len(changes)}]")
    return built, dropped


def run_cache_graphs(ctx: JobContext) -> str:
    done = apply_cache_graph_changes(ctx.dsn, ctx.settings.cache_graph_build_memory_mb, ctx.stop, log.info)
    if done is None:
        return "scope graphs: another run is at it"
    return f"scope graphs built {done[0]}, dropped {done[1]}"
