"""The strategy runner: one object binding a Generator + StepScorer to every method.

Each method (ttc/methods, one module each) is written once against this runner and
takes a batch of queries, putting all of them into as few engine calls as it can:
parallel methods make one generation call and one scoring call; beam search makes one
of each per iteration across all queries and beams; escalation one per stage.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from ttc.grading import extract_boxed, normalize_answer, split_steps
from ttc.grid import StrategySpec
from ttc.interfaces import GenerationRequest, Generator, ScoreRequest, StepScorer
from ttc.methods.beam_search import STEP_STOP  # noqa: F401  (re-exported)
from ttc.prompts import PromptFormat
from ttc.queries import Query
from ttc.sampling import SamplingConfig


@dataclass
class StrategyResult:
    query_id: str
    strategy_id: str
    answer: str | None  # normalized final answer
    text: str  # the chosen solution
    tokens: int  # all generated tokens, pruned beams and unchosen samples included
    latency_s: float  # wall-clock of the stages this query ran (the batch's, when it ran in one)
    trace: dict = field(default_factory=dict)  # method details; "stage" says which stage answered


def request_seed(base: int, query_id: str, salt: str = "") -> int:
    digest = hashlib.blake2b(f"{base}|{query_id}|{salt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def answer_of(text: str) -> str | None:
    return normalize_answer(extract_boxed(text))


class StrategyRunner:
    def __init__(self, generator: Generator, scorer: StepScorer | None,
                 prompt_format: PromptFormat, sampling: SamplingConfig = SamplingConfig()):
        self.generator = generator
        self.scorer = scorer
        self.format = prompt_format
        self.sampling = sampling

    answer_of = staticmethod(answer_of)

    def with_sampling(self, **changes) -> "StrategyRunner":
        """The same engines with other sampling settings (e.g. one request's token cap)."""
        return StrategyRunner(self.generator, self.scorer, self.format, self.sampling.replace(**changes))

    async def run(self, spec: StrategySpec, queries: list[Query]) -> list:
        if spec.uses_prm and self.scorer is None:
            raise ValueError(f"{spec.id} needs a step scorer (PRM) and none was given")
        if not queries:
            return []
        t0 = time.perf_counter()
        results = await spec.impl.run(self, spec, queries)
        elapsed = time.perf_counter() - t0
        for r in results:
            # Methods with stages time each query's own stages; the rest share the batch's time.
            if not r.latency_s:
                r.latency_s = elapsed
        return results

    # -- engine helpers shared by the methods ---------------------------------
    async def sample(self, queries: list[Query], n: int, salt: str = "pool"):
        s = self.sampling
        reqs = [GenerationRequest(prompt=self.format.policy_prompt(q.question), n=n,
                                  max_tokens=s.max_tokens, temperature=s.temperature,
                                  top_p=s.top_p, seed=request_seed(s.seed, q.query_id, salt))
                for q in queries]
        return await self.generator.generate(reqs)

    async def score_solutions(self, questions: list[str], texts: list[str]) -> list[list[float]]:
        reqs = [ScoreRequest(question=q, steps=tuple(split_steps(t))) for q, t in zip(questions, texts)]
        return await self.scorer.score(reqs)

    async def score_pools(self, queries: list[Query], pools) -> list[list[list[float]]]:
        """Step rewards of every completion of every query's pool, in one scoring call."""
        flat = await self.score_solutions([q.question for q, pool in zip(queries, pools) for _ in pool],
                                          [c.text for pool in pools for c in pool])
        out, k = [], 0
        for pool in pools:
            out.append(flat[k:k + len(pool)])
            k += len(pool)
        return out


def select(method: str, texts: list[str], answers: list[str | None],
           scores: list[float]) -> tuple[str | None, str]:
    """(answer, chosen text) for a parallel method over one pool of solutions."""
    from ttc.methods import get_method
    from ttc.methods.parallel import ParallelMethod

    impl = get_method(method)
    if not isinstance(impl, ParallelMethod):
        raise ValueError(f"{method} is not a parallel method")
    return impl.select(texts, answers, scores)
