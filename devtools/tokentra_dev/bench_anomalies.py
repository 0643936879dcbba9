"""`tokentra bench anomalies`: precision, recall and F1 of the anomaly detector over anomaly windows.

Two corpora: labelled cost-shaped series generated here (hourly spend with daily and weekly seasonality
and multiplicative noise; planted spikes, planted level shifts, and clean seasonal noise), and with
`--nab DIR` any folder in NAB's layout (`data/<category>/<file>.csv` with `timestamp,value`, and
`combined_windows.json`). A window counts as found when a detection (an incident's first point) falls
inside it; a detection counts as true when it falls inside some window. Detections in NAB's probationary
first 15% of a file are not made, as NAB does not score them.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from tokentra_worker._anomaly_model import detect

__all__ = ["infer_periods", "run", "score_series", "synthetic_corpus"]

THRESHOLD = 6.0


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.strip().replace(" ", "T")).replace(tzinfo=None)


def infer_periods(stamps: list[datetime]) -> tuple[int | None, int | None]:
    """Points per day and per week from the sampling step, when the series holds three of them."""
    if len(stamps) < 3:
        return None, None
    step = float(np.median(np.diff([s.timestamp() for s in stamps[:1000]])))
    if step <= 0 or step > 3600 * 24:
        return None, None
    day = round(86400 / step)
    n = len(stamps)
    daily = day if day >= 2 and n >= 3 * day else None
    weekly = 7 * day if n >= 3 * 7 * day and 7 * day <= 2016 else None
    return daily, weekly


def score_series(
    stamps: list[datetime],
    values: list[float],
    windows: list[tuple[datetime, datetime]],
    probation: float = 0.0,
    direction: str = "both",
) -> dict:
    daily, weekly = infer_periods(stamps)
    warm = max(int(probation * len(values)), min(daily or 24, 168))
    incidents = detect(values, daily, weekly, threshold=THRESHOLD, direction=direction, warmup=warm)
    hits = [stamps[i.start] for i in incidents]
    found = sum(1 for a, b in windows if any(a <= h <= b for h in hits))
    true = sum(1 for h in hits if any(a <= h <= b for a, b in windows))
    return {"detections": hits, "windows": len(windows), "found": found, "true": true}


def _prf(tp_det: int, det: int, found: int, windows: int) -> dict:
    p = tp_det / det if det else (1.0 if not windows else 0.0)
    r = found / windows if windows else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f, 4),
        "detections": det,
        "true_detections": tp_det,
        "windows": windows,
        "windows_found": found,
    }


def synthetic_corpus(seed: int = 7, per_kind: int = 12, days: int = 42):
    """(category, name, stamps, values, windows): hourly spend with planted spikes, level shifts, or none."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 9, 1)
    n = days * 24
    stamps = [t0 + timedelta(hours=h) for h in range(n)]
    hours = np.arange(n)
    for kind in ("spikes", "level_shifts", "seasonal_noise"):
        for k in range(per_kind):
            level = rng.uniform(0.5, 50)
            daily = 1 + 0.6 * np.sin(2 * np.pi * ((hours % 24) - 8) / 24).clip(-0.7, 1)
            weekly = np.where((hours // 24) % 7 >= 5, 0.55, 1.0)
            noise = rng.lognormal(0, rng.uniform(0.05, 0.2), n)
            x = level * daily * weekly * noise
            windows = []
            if kind == "spikes":
                for at in rng.choice(np.arange(10 * 24, n - 24), size=2, replace=False):
                    length = int(rng.integers(1, 4))
                    x[at : at + length] *= rng.uniform(3, 6)
                    windows.append((stamps[at - 2], stamps[min(at + length + 6, n - 1)]))
            elif kind == "level_shifts":
                at = int(rng.integers(14 * 24, n - 5 * 24))
                x[at:] *= rng.uniform(1.8, 3)
                windows.append((stamps[at - 2], stamps[at + 12]))
            yield kind, f"{kind}_{k:02d}", stamps, x.tolist(), windows


def _nab_corpus(root: Path):
    labels = json.loads((root / "combined_windows.json").read_text())
    for rel in sorted(labels):
        path = root / "data" / rel
        if not path.exists():
            continue
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        stamps = [_parse(r["timestamp"]) for r in rows]
        values = [float(r["value"]) for r in rows]
        windows = [(_parse(a), _parse(b)) for a, b in labels[rel]]
        yield rel.split("/")[0], rel, stamps, values, windows


def _evaluate(corpus, probation: float, direction: str) -> dict:
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    detections = []
    for category, name, stamps, values, windows in corpus:
        s = score_series(stamps, values, windows, probation, direction)
        acc = per[category]
        acc[0] += s["true"]
        acc[1] += len(s["detections"])
        acc[2] += s["found"]
        acc[3] += s["windows"]
        detections += [{"file": name, "timestamp": h.isoformat(sep=" ")} for h in s["detections"]]
    total = [sum(v[i] for v in per.values()) for i in range(4)]
    return {
        "categories": {c: _prf(*v) for c, v in sorted(per.items())},
        "overall": _prf(*total),
        "detections": detections,
    }


def run(nab: str | None = None, as_json: bool = False, seed: int = 7) -> dict:
    out = {"threshold": THRESHOLD, "synthetic": _evaluate(synthetic_corpus(seed), 0.0, "up")}
    if nab:
        root = Path(nab)
        out["nab"] = {"path": str(root), **_evaluate(_nab_corpus(root), 0.15, "both")}
    if as_json:
        print(json.dumps(out, default=str))
        return out
    for corpus in ("synthetic", "nab"):
        if corpus not in out:
            continue
        print(f"{corpus}: precision / recall / F1 over anomaly windows (threshold {THRESHOLD} robust sigmas)")
        rows = {**out[corpus]["categories"], "OVERALL": out[corpus]["overall"]}
        for name, m in rows.items():
            print(
                f"  {name:24s} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f}  "
                f"({m['windows_found']}/{m['windows']} windows, "
                f"{m['true_detections']}/{m['detections']} detections)"
            )
    return out
