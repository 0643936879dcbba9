"""Detectors key on the canonical model: a snapshot's successes and its bare name's failures are one
scope for the recommendations and one series for the anomalies, so neither sees two half-models."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
from series import hour_now, load_hours

from org_fixtures import Org
from tokentra_core.db import connect
from tokentra_worker.anomalies import _SERIES_SQL


def _mixed_names(dsn: str, org: Org, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    now = hour_now()
    ok, failed = rng.randint(24, 60), rng.randint(3, 12)
    load_hours(dsn, org.id, np.full(ok, 0.01), now, model="gpt-4o-2024-08-06", feature="chat")
    load_hours(dsn, org.id, np.zeros(failed), now, model="gpt-4o", feature="chat", status="error",
               output_tokens=0)
    with connect(dsn, autocommit=True) as conn:
        # as ingest would have stored them: priced, so canonical_model is the model the price resolves to
        conn.execute("update public.usage_records u set price_model = (select c.price_model from "
                     "private.usage_cost(u.provider, u.model, u.occurred_at, u.input_tokens, u.output_tokens, "
                     "0, 0, 0) c) where u.org_id = %s", (org.id,))
    return ok, failed


def test_recommendation_scopes_are_canonical_models(dsn: str, org: Org):
    ok, failed = _mixed_names(dsn, org, 4)
    with connect(dsn) as conn:
        scopes = conn.execute("select * from private.detector_scopes(%s::uuid[], %s)",
                              ([org.id], hour_now() - timedelta(days=30))).fetchall()
    assert [(s["feature"], s["provider"], s["model"]) for s in scopes] == [("chat", "openai", "gpt-4o")]
    assert (scopes[0]["requests"], scopes[0]["errors"]) == (ok + failed, failed)


def test_anomaly_series_are_canonical_models(dsn: str, org: Org):
    ok, failed = _mixed_names(dsn, org, 9)
    now = hour_now()
    with connect(dsn) as conn:
        rows = conn.execute(_SERIES_SQL.format(view="usage_hourly"),
                            {"grain": "hour", "org": org.id, "since": now - timedelta(days=5),
                             "until": now + timedelta(hours=1)}).fetchall()
    models = {r["value"] for r in rows if r["dimension"] == "model"}
    assert models == {"gpt-4o"}
    assert sum(r["errors"] for r in rows if r["dimension"] == "model") == failed
    assert sum(r["requests"] for r in rows if r["dimension"] == "model") == ok + failed
