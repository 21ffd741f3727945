"""Engine wrappers that never draw the same seeded sample, or score the same steps, twice.

vLLM draws the i-th of a request's n samples with seed + i (v1 parallel sampling), and
a request of n = 1 with seed s draws what the first sample of any request with seed s
and the same prompt and settings draws. So a seeded request is a run of samples keyed
(prompt, settings, seed + i), and a later request that repeats some of them needs only
the rest. Labeling meets such repeats between beam configs: beam 8/2 and 8/4 expand the
root with the same request (seed "beam0.0", n = 8), beam 4/2 asks for its first four, and
later iterations repeat while the configs keep the same best beams. The PRM is
deterministic, so repeated step lists score the same.

Only for batched labeling runs, whose rows record tokens, not time: a memo hit still
counts the sample's tokens for the strategy that asked, so labels and token accounting
are those of a run without the memo. Timed runs (per-query mode, calibration) and
serving never go through these: a hit would make a request look faster than it is.
"""

from __future__ import annotations

from dataclasses import replace

from ttc.interfaces import Completion, GenerationRequest, Generator, ScoreRequest, StepScorer


class MemoGenerator:
    """A Generator that serves repeated seeded samples from memory (unseeded and greedy
    requests always go to the engine)."""

    def __init__(self, inner: Generator):
        self.inner = inner
        self._samples: dict[tuple, Completion] = {}
        self.requested = 0  # samples asked for
        self.drawn = 0  # samples the engine drew

    @staticmethod
    def _key(r: GenerationRequest) -> tuple | None:
        if r.seed is None or r.temperature == 0:
            return None
        return (r.prompt, r.max_tokens, r.temperature, r.top_p, r.stop)

    async def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        plan, todo = [], []
        for r in requests:
            key = self._key(r)
            have = 0
            if key is not None:
                while have < r.n and (key, r.seed + have) in self._samples:
                    have += 1
            plan.append((key, have))
            if have < r.n:
                # The missing samples are have..n-1: the same request from seed + have.
                todo.append(r if have == 0 else replace(r, n=r.n - have, seed=r.seed + have))
        fresh = iter(await self.inner.generate(todo)) if todo else iter(())
        out = []
        for r, (key, have) in zip(requests, plan):
            self.requested += r.n
            new = next(fresh) if have < r.n else []
            self.drawn += len(new)
            if key is None:
                out.append(new)
                continue
            for i, c in enumerate(new):
                self._samples[(key, r.seed + have + i)] = c
            out.append([self._samples[(key, r.seed + i)] for i in range(r.n)])
        return out


class MemoScorer:
    """A StepScorer that scores each distinct (question, steps, known) once."""

    def __init__(self, inner: StepScorer):
        self.inner = inner
        self._rewards: dict[ScoreRequest, list[float]] = {}
        self.requested = 0
        self.scored = 0

    async def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        todo = list(dict.fromkeys(r for r in requests if r not in self._rewards))
        if todo:
            for r, rew in zip(todo, await self.inner.score(todo)):
                self._rewards[r] = list(rew)
        self.requested += len(requests)
        self.scored += len(todo)
        return [list(self._rewards[r]) for r in requests]
