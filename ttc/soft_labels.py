"""Soft labels from ONE scored pool of completions per query (and real runs where needed).

For a query, M completions are sampled and PRM-scored once. The empirical accuracy
of a pool-labelable strategy is estimated by drawing subsets without replacement from
the pool and applying the method's rule to each, the way the reference method
bootstraps 30 resamples from a pool of 32. Methods that must run (beam search) are
labeled from several independent real runs. Every label also carries the two halves
(first / second half of the resamples or runs), for a split-label oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ttc.voting import aggregate


@dataclass(frozen=True)
class ScoredPool:
    answers: list[str | None]  # normalized final answers
    correct: list[bool]
    tokens: list[int]
    step_rewards: list[list[float]]
    _scores: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        n = len(self.answers)
        if not (len(self.correct) == len(self.tokens) == len(self.step_rewards) == n):
            raise ValueError("pool fields differ in length")

    def __len__(self) -> int:
        return len(self.answers)

    def scores(self, how: str) -> list[float]:
        if how not in self._scores:
            self._scores[how] = [aggregate(r, how) for r in self.step_rewards]
        return self._scores[how]


@dataclass(frozen=True)
class RunOutcome:
    """One real run of a strategy on a query."""

    correct: bool
    tokens: int
    latency_s: float = 0.0


@dataclass
class LabelInputs:
    pool: ScoredPool
    resamples: int
    rng: np.random.Generator
    runs: dict[str, list[RunOutcome]] = field(default_factory=dict)  # strategy id -> real runs


@dataclass(frozen=True)
class SoftLabel:
    soft_label: float
    runs: int
    mean_tokens: float
    soft_label_a: float  # first half of the resamples / runs
    soft_label_b: float  # second half
    stage2_rate: float = 0.0  # share of resamples that ran a second stage


def _halves(values: list[float]) -> tuple[float, float]:
    if len(values) == 1:
        return values[0], values[0]
    h = len(values) // 2
    return float(np.mean(values[:h])), float(np.mean(values[h:]))


def from_runs(outcomes: list[RunOutcome]) -> SoftLabel:
    if not outcomes:
        raise ValueError("no runs to label from")
    hits = [float(o.correct) for o in outcomes]
    a, b = _halves(hits)
    return SoftLabel(float(np.mean(hits)), len(outcomes), float(np.mean([o.tokens for o in outcomes])), a, b)


def resample(pool: ScoredPool, size: int, inputs: LabelInputs, one: Callable, runs: list[RunOutcome] | None = None,
             ordered: bool = False) -> SoftLabel:
    """Apply `one(idx[, run])` -> (correct, tokens[, stage2]) to random subsets of `size` pool
    indices (in random order). With `runs`, resample k of each half is paired with a real run
    of the same half, so the two halves stay independent."""
    m = len(pool)
    if size > m:
        raise ValueError(f"pool of {m} completions is smaller than N={size}")
    # With N = M every unordered subset is the pool itself: one run says it all.
    count = 1 if size == m and not ordered and runs is None else inputs.resamples
    half = count // 2 if count > 1 else 1
    outs = []
    for k in range(count):
        idx = inputs.rng.choice(m, size=size, replace=False) if count > 1 else np.arange(m)
        if runs is None:
            outs.append(one(idx))
        else:
            part = runs if len(runs) == 1 else (runs[:len(runs) // 2] if k < half else runs[len(runs) // 2:])
            outs.append(one(idx, part[k % len(part)]))
    hits = [o[0] for o in outs]
    a, b = _halves(hits)
    stage2 = float(np.mean([o[2] for o in outs])) if len(outs[0]) > 2 else 0.0
    return SoftLabel(float(np.mean(hits)), count, float(np.mean([o[1] for o in outs])), a, b, stage2)


def pool_soft_label(pool: ScoredPool, spec, resamples: int, rng: np.random.Generator,
                    runs: dict[str, list[RunOutcome]] | None = None) -> SoftLabel:
    """The soft label of `spec` on one query from its scored pool (and real runs of the
    strategies its method names as components)."""
    from ttc.methods import get_method

    method = get_method(spec.method)
    if not method.pool_labelable:
        raise ValueError(f"{spec.id} cannot be labeled from a sample pool; run it")
    return method.label(spec, LabelInputs(pool, resamples, rng, runs or {}))
