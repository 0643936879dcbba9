"""Large semantic cache scopes that share a partition get graphs of their own, built by the real worker
(`tokentra worker --once cache_graphs`, CREATE INDEX CONCURRENTLY outside any transaction) in a database
of their own, and the real lookup walks them; graphs no longer needed are dropped by the next run."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from tokentra_core.db import connect
from tokentra_dev import testdb
from tokentra_dev.pooler import direct

SEEDS = [11, 23, random.randrange(1_000_000)]  # the last one differs at every run


@pytest.fixture
def clone(dsn: str) -> Iterator[str]:
    """A database of its own: a concurrent index build waits for every older transaction in its database."""
    db = testdb.create(direct(dsn))
    try:
        yield db
    finally:
        testdb.drop(db)


def _worker(db: str) -> str:
    out = subprocess.run([sys.executable, "-m", "tokentra_cli.cli", "worker", "--once", "cache_graphs"],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "DATABASE_URL": db, "TOKENTRA_DATABASE_URL": db})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"cache_graphs": "ok"}, out.stdout
    return out.stderr


def _orgs_in_one_partition(conn: psycopg.Connection, count: int) -> list[str]:
    """Organizations whose (model m, params p) scopes hash into one partition, so they share its graph."""
    first = str(uuid.uuid4())
    part = conn.execute("select private.cache_scope_partition(private.cache_scope_key(%s, 'm', 'p', '', ''))::oid p",
                        (first,)).fetchone()["p"]
    found = [first]
    while len(found) < count:
        candidate = str(uuid.uuid4())
        row = conn.execute("select private.cache_scope_partition(private.cache_scope_key(%s, 'm', 'p', '', ''))::oid "
                           "= %s as same", (candidate, part)).fetchone()
        if row["same"]:
            found.append(candidate)
    return found


def _literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


@pytest.mark.parametrize("seed", SEEDS)
def test_worker_builds_scope_graphs_that_lookups_walk(clone: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [int(rng.integers(2_100, 3_600)) for _ in range(int(rng.integers(2, 4)))]
    centres = rng.normal(size=(40, 384))
    with connect(clone, autocommit=True) as conn:
        orgs = _orgs_in_one_partition(conn, len(sizes))
        for org in orgs:
            conn.execute("insert into public.organizations (id, name) values (%s, %s)", (org, f"graphs {org[:8]}"))
            conn.execute("insert into public.semantic_cache_settings (org_id, enabled, store_responses) "
                         "values (%s, true, true)", (org,))
        vectors: dict[str, np.ndarray] = {}
        for org, n in zip(orgs, sizes, strict=True):
            # Embedding-like: points around a few dozen topics, with noise of random size.
            v = centres[rng.integers(0, len(centres), n)] + rng.normal(scale=rng.uniform(0.3, 0.8), size=(n, 384))
            vectors[org] = v / np.linalg.norm(v, axis=1, keepdims=True)
            key = conn.execute("select private.cache_scope_key(%s, 'm', 'p', '', '') k", (org,)).fetchone()["k"]
            with conn.cursor() as cur, cur.copy(
                    "copy public.semantic_cache (org_id, model, params_hash, embedding_model, embedding, prompt_hash, "
                    "expires_at, scope_key, guard_key) from stdin") as copy:
                for i, row in enumerate(vectors[org]):
                    copy.write_row((org, "m", "p", "local", _literal(row), f"{org}-{i}", "2099-01-01", key, "g"))
        conn.execute("analyze public.semantic_cache")
        names = [conn.execute("select private.cache_scope_graph_name(private.cache_scope_key(%s, 'm', 'p', '', ''), "
                              "384) n", (org,)).fetchone()["n"] for org in orgs]

    # While another run holds the job's lock, a run does nothing (it would take that run's build in
    # progress, not yet valid, for a failed one and drop it).
    with psycopg.connect(clone, autocommit=True) as other:
        other.execute("select pg_advisory_lock(hashtext('tokentra.cache_graphs'))")
        assert "another run is at it" in _worker(clone)
    with connect(clone) as conn:
        assert conn.execute("select count(*) n from private.semantic_cache_scope_graph_changes()").fetchone()["n"] \
            == len(orgs)

    log = _worker(clone)
    assert f"scope graphs built {len(orgs)}, dropped 0" in log
    with connect(clone) as conn:
        for org, name in zip(orgs, names, strict=True):
            key = conn.execute("select private.cache_scope_key(%s, 'm', 'p', '', '') k", (org,)).fetchone()["k"]
            assert conn.execute("select private.cache_scope_has_graph(%s, 384) g", (key,)).fetchone()["g"], name
        # The real lookup, noisy copies of random entries: the graph is walked, and its candidates are those
        # of an exact search of the scope.
        recalls = []
        for q in range(30):
            org = orgs[q % len(orgs)]
            target = vectors[org][int(rng.integers(0, len(vectors[org])))]
            noisy = target + rng.normal(scale=0.02, size=384)
            literal = _literal(noisy / np.linalg.norm(noisy))
            hit = conn.execute(
                "select outcome from private.cache_lookup(%s, 'm', 'p', '', '', %s, %s::extensions.vector, 'local', "
                "'g', '{}', '{}', '', '', 0.83, 10, 40)", (org, "0" * 64, literal)).fetchone()
            assert hit["outcome"] == "shadow_semantic"  # a semantic hit (stored without a response)
            approx = {r["entry_id"] for r in conn.execute(
                "select entry_id from private.cache_nearest(%s, 'm', 'p', '', '', %s::extensions.vector, 'local', "
                "10, 40)",
                (org, literal))}
            exact = {r["id"] for r in conn.execute(
                "select id from public.semantic_cache where org_id = %s and model = 'm' "
                "order by extensions.cosine_distance(embedding, %s::extensions.vector) limit 10", (org, literal))}
            recalls.append(len(approx & exact) / 10)
        scans = {name: conn.execute("select pg_stat_get_xact_numscans(to_regclass('public.' || %s)) n",
                                    (name,)).fetchone()["n"] for name in names}
        conn.rollback()
    assert all(n > 0 for n in scans.values()), scans
    assert sum(recalls) / len(recalls) >= 0.9, recalls

    # Nothing more to do: the next run builds nothing.
    assert "scope graphs built 0, dropped 0" in _worker(clone)

    # The first scope shrinks to 900 entries: its graph is dropped, the others stay.
    with connect(clone, autocommit=True) as conn:
        conn.execute("delete from public.semantic_cache where org_id = %s "
                     "and split_part(prompt_hash, '-', 6)::int >= 900", (orgs[0],))
    assert "dropped 1" in _worker(clone)
    with connect(clone) as conn:
        left = {r["relname"] for r in conn.execute(
            "select relname from pg_class where relname = any(%s)", (names,))}
    assert left == set(names[1:])
