"""Soft labels for the parallel methods from ONE scored pool of completions.

For a query, M completions are sampled and PRM-scored once. The empirical
accuracy of (method, N) is estimated by drawing subsets of size N without
replacement from the pool and applying the method's selection rule to each, the
way the reference method bootstraps 30 resamples from a pool of 32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ttc.grid import StrategySpec
from ttc.strategies import select
from ttc.voting import aggregate


@dataclass(frozen=True)
class ScoredPool:
    answers: list[str | None]  # normalized final answers
    correct: list[bool]
    tokens: list[int]
    step_rewards: list[list[float]]

    def __post_init__(self):
        n = len(self.answers)
        if not (len(self.correct) == len(self.tokens) == len(self.step_rewards) == n):
            raise ValueError("pool fields differ in length")


@dataclass(frozen=True)
class SoftLabel:
    soft_label: float
    runs: int
    mean_tokens: float


def pool_soft_label(pool: ScoredPool, spec: StrategySpec, resamples: int,
                    rng: np.random.Generator) -> SoftLabel:
    if spec.method == "beam_search":
        raise ValueError("beam search cannot be labeled from a sample pool; run it")
    m = len(pool.answers)
    if spec.n > m:
        raise ValueError(f"pool of {m} completions is smaller than N={spec.n}")
    scores = [aggregate(r, spec.aggregation) for r in pool.step_rewards]
    texts = [""] * m  # selection only needs answers and scores
    by_answer = {a: c for a, c in zip(pool.answers, pool.correct) if a is not None}
    # With N = M every subset is the pool itself: one run says it all.
    runs = 1 if spec.n == m else resamples
    hits, toks = 0.0, 0.0
    for _ in range(runs):
        idx = rng.choice(m, size=spec.n, replace=False) if runs > 1 else np.arange(m)
        ans, _ = select(spec.method, [texts[i] for i in idx], [pool.answers[i] for i in idx],
                        [scores[i] for i in idx])
        hits += float(by_answer.get(ans, False)) if ans is not None else 0.0
        toks += float(sum(pool.tokens[i] for i in idx))
    return SoftLabel(soft_label=hits / runs, runs=runs, mean_tokens=toks / runs)
