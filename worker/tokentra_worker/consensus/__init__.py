"""Multi-agent consensus on high-stakes recommendations: several models argue a recommendation before money moves.

- triggers: `private.consensus_candidates` in SQL: savings over TOKENTRA_CONSENSUS_MIN_SAVINGS, enterprise
  plan, conflicting signals, scope tagged production, detector confidence under
  TOKENTRA_CONSENSUS_MIN_CONFIDENCE; only recommendations without a standing review.
- models, prompts: the agents' structured positions and what they are told.
- score: the consensus score of a round, documented with its formula.
- orchestrator: rounds of analyst, skeptic and advocate in parallel, then the synthesizer.
- job: the worker job `consensus`, storing each run in one transaction.
"""

from tokentra_worker.consensus.job import Review, Summary, review_pending, run_consensus
from tokentra_worker.consensus.score import Score, consensus_score

__all__ = ["Review", "Score", "Summary", "consensus_score", "review_pending", "run_consensus"]
