"""The consensus score on hand-made positions: each part of the formula, and its edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokentra_worker.consensus.models import KeyPoint, Position
from tokentra_worker.consensus.score import consensus_score


def pos(verdict: str, savings: float, *points: tuple[str, str], confidence: float = 0.8) -> Position:
    return Position(
        verdict=verdict,
        adjusted_monthly_savings=savings,
        confidence=confidence,
        key_points=[KeyPoint(topic=t, stance=s, text=f"{t} {s}") for t, s in points],
        risks=[],
    )


SAVE = ("savings_estimate", "supports")
QUALITY_RISK = ("quality_risk", "challenges")


def test_full_agreement_scores_one():
    s = consensus_score([pos("accept", 1000, SAVE), pos("accept", 1000, SAVE), pos("accept", 1000, SAVE)])
    assert (s.value, s.verdict_agreement, s.savings_agreement, s.key_point_overlap) == (1.0, 1.0, 1.0, 1.0)


def test_same_verdict_and_savings_reach_the_stop_score_without_shared_points():
    s = consensus_score([pos("accept", 500, SAVE), pos("accept", 500, QUALITY_RISK), pos("accept", 500)])
    assert s.key_point_overlap == 0
    assert s.value == 0.8


def test_verdicts_one_step_apart_count_half():
    s = consensus_score([pos("accept", 100), pos("modify", 100)])
    assert s.verdict_agreement == 0.5


def test_accept_against_reject_counts_nothing():
    s = consensus_score([pos("accept", 100), pos("accept", 100), pos("reject", 100)])
    # pairs: accept-accept 1, accept-reject 0 twice
    assert s.verdict_agreement == pytest.approx(1 / 3, abs=1e-3)


def test_savings_spread_is_relative_to_the_largest_estimate():
    assert consensus_score([pos("accept", 1000), pos("accept", 900), pos("accept", 800)]).savings_agreement == 0.8
    assert consensus_score([pos("accept", 1000), pos("accept", 500), pos("reject", 0)]).savings_agreement == 0.0


def test_all_zero_savings_agree():
    s = consensus_score([pos("reject", 0), pos("reject", 0), pos("reject", 0)])
    assert s.savings_agreement == 1.0 and s.value == 1.0


def test_key_points_overlap_is_mean_pairwise_jaccard_of_topic_and_stance():
    a = pos("accept", 10, SAVE, QUALITY_RISK)
    b = pos("accept", 10, SAVE)
    c = pos("accept", 10, ("savings_estimate", "challenges"))
    # a-b 1/2, a-c 0/3, b-c 0/2
    assert consensus_score([a, b, c]).key_point_overlap == pytest.approx(1 / 6, abs=1e-3)


def test_empty_key_points_agree_with_each_other_but_not_with_points():
    assert consensus_score([pos("accept", 10), pos("accept", 10)]).key_point_overlap == 1.0
    assert consensus_score([pos("accept", 10), pos("accept", 10, SAVE)]).key_point_overlap == 0.0


def test_full_disagreement_scores_low():
    s = consensus_score([pos("accept", 1000, SAVE), pos("reject", 0, QUALITY_RISK), pos("modify", 400)])
    assert s.value < 0.4


def test_one_position_is_not_a_consensus():
    with pytest.raises(ValueError, match="at least two"):
        consensus_score([pos("accept", 10)])


verdicts = st.sampled_from(["accept", "modify", "reject"])
points = st.lists(st.tuples(st.sampled_from(["savings_estimate", "latency", "other"]),
                            st.sampled_from(["supports", "challenges"])), max_size=4)


@given(st.lists(st.tuples(verdicts, st.floats(0, 1e6), points), min_size=2, max_size=5))
def test_score_is_in_unit_interval_and_order_free(raw):
    positions = [pos(v, s, *p) for v, s, p in raw]
    s = consensus_score(positions)
    assert 0 <= s.value <= 1
    assert consensus_score(list(reversed(positions))).value == pytest.approx(s.value, abs=1e-3)
