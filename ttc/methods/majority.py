"""Majority vote over N samples (N = 1 is a single sample): no PRM."""

from __future__ import annotations

from ttc.methods.parallel import ParallelMethod
from ttc.methods.registry import register
from ttc.voting import majority_vote


@register
class Majority(ParallelMethod):
    name = "majority"
    uses_prm = False

    def choose(self, answers, scores):
        ans = majority_vote(answers)
        # The first sample giving the winning answer (sample 0 when nobody answered).
        return next((i for i, a in enumerate(answers) if a == ans), 0) if ans is not None else 0
