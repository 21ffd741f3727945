"""Best-of-N: the sample with the highest aggregated PRM score."""

from __future__ import annotations

from ttc.methods.parallel import ParallelMethod
from ttc.methods.registry import register
from ttc.voting import best_scored


@register
class BestOfN(ParallelMethod):
    name = "best_of_n"

    def choose(self, answers, scores):
        return best_scored(answers, scores)
