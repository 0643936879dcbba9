"""The consensus score of a round, in [0, 1], from the agents' structured positions alone.

    score = 0.5 * V + 0.3 * S + 0.2 * K

V, agreement of verdicts: verdicts are ordered accept < modify < reject; each pair of agents scores
    1 - |rank_a - rank_b| / 2 (same verdict 1, one step apart 0.5, accept against reject 0), V is the
    mean over pairs.
S, agreement of savings: 1 - (max - min) / max of the adjusted monthly savings (1 when all are 0), so
    1000/900/800 gives 0.8 and 1000/500/0 gives 0.
K, overlap of key points: each agent's key points as a set of (topic, stance) pairs; K is the mean
    pairwise Jaccard index |A ∩ B| / |A ∪ B| (two empty sets count as agreeing, 1).

Verdicts weigh most because they decide what the customer sees; identical verdicts and savings alone
reach 0.8, the default stop score, whatever the key points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from tokentra_worker.consensus.models import Position

__all__ = ["WEIGHTS", "Score", "consensus_score"]

WEIGHTS = {"verdict": 0.5, "savings": 0.3, "key_points": 0.2}
_RANK = {"accept": 0, "modify": 1, "reject": 2}


@dataclass(frozen=True)
class Score:
    value: float
    verdict_agreement: float
    savings_agreement: float
    key_point_overlap: float


def _jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def consensus_score(positions: Sequence[Position]) -> Score:
    """The score of a round's positions (at least two)."""
    if len(positions) < 2:
        raise ValueError("a consensus score needs at least two positions")
    pairs = list(combinations(positions, 2))
    verdicts = sum(1 - abs(_RANK[a.verdict] - _RANK[b.verdict]) / 2 for a, b in pairs) / len(pairs)
    savings = [p.adjusted_monthly_savings for p in positions]
    top = max(savings)
    spread = 1.0 if top <= 0 else 1 - (top - min(savings)) / top
    points = [{(k.topic, k.stance) for k in p.key_points} for p in positions]
    overlap = sum(_jaccard(a, b) for a, b in combinations(points, 2)) / len(pairs)
    value = WEIGHTS["verdict"] * verdicts + WEIGHTS["savings"] * spread + WEIGHTS["key_points"] * overlap
    return Score(round(value, 3), round(verdicts, 3), round(spread, 3), round(overlap, 3))
