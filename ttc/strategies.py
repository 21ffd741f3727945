"""The four test-time-compute strategies, written once against Generator + StepScorer.

Every strategy takes a batch of queries and puts all of them into as few engine
calls as it can: parallel methods make one generation call and one scoring call;
beam search makes one of each per iteration across all queries and beams.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from ttc.grading import extract_boxed, normalize_answer, split_steps
from ttc.grid import StrategySpec
from ttc.interfaces import GenerationRequest, Generator, ScoreRequest, StepScorer
from ttc.prompts import PromptFormat
from ttc.queries import Query
from ttc.voting import aggregate, best_scored, majority_vote, weighted_vote

STEP_STOP = "\n\n"


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.7
    max_tokens: int = 256  # per solution (parallel) or per remaining solution (beam)
    step_max_tokens: int = 48  # per beam-search step
    top_p: float = 1.0
    seed: int = 0


@dataclass
class StrategyResult:
    query_id: str
    strategy_id: str
    answer: str | None  # normalized final answer
    text: str  # the chosen solution
    tokens: int  # all generated tokens, pruned beams included
    latency_s: float  # wall-clock of the run this query was part of
    trace: dict = field(default_factory=dict)


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

    async def run(self, spec: StrategySpec, queries: list[Query]) -> list[StrategyResult]:
        if spec.uses_prm and self.scorer is None:
            raise ValueError(f"{spec.id} needs a step scorer (PRM) and none was given")
        if not queries:
            return []
        t0 = time.perf_counter()
        if spec.method == "beam_search":
            results = await self._beam_search(spec, queries)
        else:
            results = await self._parallel(spec, queries)
        elapsed = time.perf_counter() - t0
        for r in results:
            r.latency_s = elapsed
        return results

    # -- sampling helpers -------------------------------------------------
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

    # -- parallel methods ---------------------------------------------------
    async def _parallel(self, spec: StrategySpec, queries: list[Query]) -> list[StrategyResult]:
        pools = await self.sample(queries, spec.n, salt=f"n{spec.n}")
        step_rewards: list[list[list[float]]] = [[] for _ in queries]
        prm_steps = [0] * len(queries)
        if spec.uses_prm:
            flat_q = [q.question for q, pool in zip(queries, pools) for _ in pool]
            flat_t = [c.text for pool in pools for c in pool]
            flat = await self.score_solutions(flat_q, flat_t)
            k = 0
            for i, pool in enumerate(pools):
                step_rewards[i] = flat[k:k + len(pool)]
                prm_steps[i] = sum(len(r) for r in step_rewards[i])
                k += len(pool)
        results = []
        for q, pool, rewards, nsteps in zip(queries, pools, step_rewards, prm_steps):
            texts = [c.text for c in pool]
            answers = [answer_of(t) for t in texts]
            scores = [aggregate(r, spec.aggregation) for r in rewards] if rewards else []
            answer, text = select(spec.method, texts, answers, scores)
            results.append(StrategyResult(
                query_id=q.query_id, strategy_id=spec.id, answer=answer, text=text,
                tokens=sum(c.tokens for c in pool), latency_s=0.0,
                trace={"answers": answers, "scores": scores, "prm_steps": nsteps}))
        return results

    # -- PRM-guided beam search --------------------------------------------
    async def _beam_search(self, spec: StrategySpec, queries: list[Query]) -> list[StrategyResult]:
        s = self.sampling
        keep = spec.n // spec.beam_width
        prompts = [self.format.policy_prompt(q.question) for q in queries]
        # Per query: active beams (list of step lists) with their step rewards, finished
        # beams, tokens spent. Known rewards let the PRM score only each candidate's new steps.
        active: list[list[list[str]]] = [[[]] for _ in queries]
        known: list[list[list[float]]] = [[[]] for _ in queries]
        finished: list[list[tuple[list[str], float]]] = [[] for _ in queries]
        last_scores: list[list[float]] = [[0.0] for _ in queries]
        tokens = [0] * len(queries)
        prm_steps = [0] * len(queries)
        iterations = [0] * len(queries)
        for it in range(spec.max_iterations):
            final = it == spec.max_iterations - 1
            reqs, owners = [], []
            for qi, beams in enumerate(active):
                if len(finished[qi]) >= keep:
                    continue
                # The first iteration expands the empty root N ways; later ones each kept beam m ways.
                per_beam = spec.n if it == 0 else spec.beam_width
                for bi, steps in enumerate(beams):
                    prefix = prompts[qi] + "".join(st + STEP_STOP for st in steps)
                    reqs.append(GenerationRequest(
                        prompt=prefix, n=per_beam, temperature=s.temperature, top_p=s.top_p,
                        max_tokens=s.max_tokens if final else s.step_max_tokens,
                        stop=() if final else (STEP_STOP,),
                        seed=request_seed(s.seed, queries[qi].query_id, f"beam{it}.{bi}")))
                    owners.append((qi, bi))
            if not reqs:
                break
            outs = await self.generator.generate(reqs)
            cands: list[list[tuple[list[str], bool, list[float]]]] = [[] for _ in queries]
            for (qi, bi), comps in zip(owners, outs):
                iterations[qi] = it + 1
                for c in comps:
                    tokens[qi] += c.tokens
                    new_steps = split_steps(c.text)
                    steps = active[qi][bi] + new_steps
                    done = (final or c.finish_reason != "stop" or not new_steps
                            or "\\boxed" in c.text)
                    cands[qi].append((steps, done, known[qi][bi]))
            flat = [(qi, k) for qi in range(len(queries)) for k in range(len(cands[qi]))]
            rewards = await self.scorer.score([
                ScoreRequest(question=queries[qi].question, steps=tuple(cands[qi][k][0]),
                             known=len(cands[qi][k][2]))
                for qi, k in flat])
            scored: list[list[tuple[list[str], bool, float, list[float]]]] = [[] for _ in queries]
            for (qi, k), new in zip(flat, rewards):
                steps, done, prev = cands[qi][k]
                prm_steps[qi] += len(new)
                r = prev + new
                scored[qi].append((steps, done, aggregate(r, spec.aggregation), r))
            for qi in range(len(queries)):
                if not scored[qi]:
                    continue
                for steps, done, sc, _ in scored[qi]:
                    if done:
                        finished[qi].append((steps, sc))
                alive = sorted([x for x in scored[qi] if not x[1]], key=lambda x: -x[2])[:keep]
                active[qi] = [x[0] for x in alive]
                known[qi] = [x[3] for x in alive]
                last_scores[qi] = [x[2] for x in alive]
        results = []
        for qi, q in enumerate(queries):
            pool = finished[qi] or list(zip(active[qi], last_scores[qi]))
            texts = [STEP_STOP.join(steps) for steps, _ in pool]
            answers = [answer_of(t) for t in texts]
            scores = [sc for _, sc in pool]
            i = best_scored(answers, scores) if pool else None
            results.append(StrategyResult(
                query_id=q.query_id, strategy_id=spec.id,
                answer=answers[i] if i is not None else None,
                text=texts[i] if i is not None else "", tokens=tokens[qi], latency_s=0.0,
                trace={"iterations": iterations[qi], "finished": len(finished[qi]), "prm_steps": prm_steps[qi],
                       "answers": answers, "scores": scores}))
        return results


def select(method: str, texts: list[str], answers: list[str | None],
           scores: list[float]) -> tuple[str | None, str]:
    """(answer, chosen text) for a parallel method over one pool of solutions."""
    if not texts:
        return None, ""
    if method == "majority":
        ans = majority_vote(answers)
    elif method == "best_of_n":
        i = best_scored(answers, scores)
        return answers[i], texts[i]
    elif method == "weighted_best_of_n":
        ans = weighted_vote(answers, scores)
    else:
        raise ValueError(f"{method} is not a parallel method")
    text = next((t for t, a in zip(texts, answers) if a == ans), texts[0])
    return ans, text
