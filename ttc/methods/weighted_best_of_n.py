"""PRM-weighted best-of-N: PRM scores summed per answer, the heaviest answer wins."""

from __future__ import annotations

from ttc.methods.parallel import ParallelMethod
from ttc.methods.registry import register
from ttc.voting import weighted_vote


@register
class WeightedBestOfN(ParallelMethod):
    name = "weighted_best_of_n"

    def choose(self, answers, scores):
        ans = weighted_vote(answers, scores)
        return next((i for i, a in enumerate(answers) if a == ans), 0) if ans is not None else 0
