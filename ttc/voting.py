"""Pure answer-selection rules shared by the strategies and the label resampler."""

from __future__ import annotations

import math
from collections.abc import Sequence


def aggregate(rewards: Sequence[float], how: str = "last") -> float:
    """One score per solution from its step rewards; a solution with no steps scores 0."""
    if not rewards:
        return 0.0
    if how == "last":
        return float(rewards[-1])
    if how == "min":
        return float(min(rewards))
    if how == "prod":
        return float(math.prod(rewards))
    raise ValueError(f"unknown aggregation {how!r}; use last, min or prod")


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """Most frequent answer; ties go to the answer seen first; None votes are ignored."""
    counts: dict[str, int] = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in counts if counts[a] == best)


def best_scored(answers: Sequence[str | None], scores: Sequence[float]) -> int:
    """Index of the highest-scoring solution that has an answer (else the highest overall)."""
    if len(answers) != len(scores):
        raise ValueError("answers and scores differ in length")
    if not answers:
        raise ValueError("no solutions to choose from")
    idx = [i for i, a in enumerate(answers) if a is not None] or list(range(len(answers)))
    return max(idx, key=lambda i: (scores[i], -i))


def weighted_vote(answers: Sequence[str | None], scores: Sequence[float]) -> str | None:
    """Answer with the largest summed score (PRM-weighted best-of-N); ties go to the first seen."""
    if len(answers) != len(scores):
        raise ValueError("answers and scores differ in length")
    weight: dict[str, float] = {}
    for a, s in zip(answers, scores):
        if a is not None:
            weight[a] = weight.get(a, 0.0) + s
    if not weight:
        return None
    best = max(weight.values())
    return next(a for a in weight if weight[a] == best)
