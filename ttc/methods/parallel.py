"""What the three parallel methods share: N samples, optional PRM scores, one selection rule.

A parallel method differs from the others only in `choose`, so sampling, scoring and pool
resampling live here once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ttc.methods.registry import Method
from ttc.voting import aggregate

if TYPE_CHECKING:
    from ttc.soft_labels import LabelInputs, SoftLabel


class ParallelMethod(Method):
    def choose(self, answers: Sequence[str | None], scores: Sequence[float]) -> int:
        """Index of the chosen solution among N (scores are [] when the method needs no PRM)."""
        raise NotImplementedError

    def select(self, texts: list[str], answers: list[str | None], scores: list[float]) -> tuple[str | None, str]:
        if not texts:
            return None, ""
        i = self.choose(answers, scores)
        return answers[i], texts[i]

    def pool_sizes(self, spec):
        return {spec.n}

    def latency_parts(self, spec, stage2_rate):
        return [(f"sample/n={spec.n}", 1.0)] + ([(f"score/n={spec.n}", 1.0)] if self.uses_prm else [])

    async def run(self, runner, spec, queries):
        from ttc.strategies import StrategyResult

        pools = await runner.sample(queries, spec.n, salt=f"n{spec.n}")
        rewards = await runner.score_pools(queries, pools) if self.uses_prm else [[] for _ in pools]
        results = []
        for q, pool, rew in zip(queries, pools, rewards):
            texts = [c.text for c in pool]
            answers = [runner.answer_of(t) for t in texts]
            scores = [aggregate(r, spec.aggregation) for r in rew]
            answer, text = self.select(texts, answers, scores)
            results.append(StrategyResult(
                query_id=q.query_id, strategy_id=spec.id, answer=answer, text=text,
                tokens=sum(c.tokens for c in pool), latency_s=0.0,
                trace={"answers": answers, "scores": scores, "prm_steps": sum(len(r) for r in rew),
                       "stage": 1, "candidates": texts}))
        return results

    def label(self, spec, inputs: "LabelInputs") -> "SoftLabel":
        from ttc.soft_labels import resample

        pool = inputs.pool
        scores = pool.scores(spec.aggregation) if self.uses_prm else []

        def one(idx: np.ndarray) -> tuple[float, float]:
            i = self.choose([pool.answers[k] for k in idx], [scores[k] for k in idx] if scores else [])
            return float(pool.correct[idx[i]]), float(sum(pool.tokens[k] for k in idx))

        return resample(pool, spec.n, inputs, one)
