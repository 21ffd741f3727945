"""PRM-verified escalation: a cheap stage 1, and stage 2 only when the PRM doubts it.

Stage 1 draws n (1 or 2) samples and takes the best-scored one; if its aggregated PRM score
is >= tau that answer is returned. Otherwise stage 2 runs `then`:
- a parallel `then` with N > n draws N - n MORE samples and applies its own rule to all N
  (stage 1's samples included), so tokens are those of the N samples;
- a beam `then` runs the beam search from scratch; tokens are stage 1's plus the beam's.
Latency is the sum of the stages that ran.

Pool labels are exact in distribution: an ordered random subset of N samples of the pool
is N exchangeable samples, its first n are stage 1 and the rest what stage 2 would draw.
A beam `then` is labeled from that beam config's own real runs.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ttc.methods.registry import Method, get_method, register
from ttc.voting import aggregate, best_scored


@register
class Escalate(Method):
    name = "escalate"
    id_fields = (("tau", "tau"),)
    extra_feature_names = ("esc_tau", "esc_then_log2_n", "esc_then_beam_width", "esc_then_max_iterations",
                           "esc_then_is_beam")

    def validate(self, spec):
        if spec.beam_width != 1 or spec.max_iterations != 1:
            raise ValueError("escalate takes no beam_width / max_iterations (its stage 2 may)")
        if spec.n not in (1, 2):
            raise ValueError(f"escalate's stage 1 must be cheap: n=1 or n=2, got n={spec.n}")
        if spec.tau is None or not (math.isfinite(spec.tau) and 0.0 <= spec.tau <= 1.0):
            raise ValueError(f"escalate needs a threshold tau in [0, 1], got {spec.tau}")
        then = spec.then
        if then is None:
            raise ValueError("escalate needs a stage 2 (then=...)")
        if then.method == "escalate":
            raise ValueError(f"stage 2 {then.id} must be a parallel or beam config, not another escalation")
        if then.n <= spec.n:
            raise ValueError(f"stage 2 {then.id} is not bigger than stage 1 (n={spec.n}): it would not escalate")

    def extra_features(self, spec):
        t = spec.then
        return [float(spec.tau), math.log2(t.n), float(t.beam_width), float(t.max_iterations),
                float(not get_method(t.method).pool_labelable)]

    def components(self, spec):
        return [spec.then] if not get_method(spec.then.method).pool_labelable else []

    def pool_sizes(self, spec):
        second = get_method(spec.then.method)
        return {spec.n} | second.pool_sizes(spec.then)

    def latency_parts(self, spec, stage2_rate):
        # Stage 2 of a parallel `then` draws N - n more samples; it is timed as the run of N
        # (slightly pessimistic). Stage 2 runs in a share `stage2_rate` of requests.
        second = get_method(spec.then.method)
        stage1 = [(f"sample/n={spec.n}", 1.0), (f"score/n={spec.n}", 1.0)]
        return stage1 + [(c, w * stage2_rate) for c, w in second.latency_parts(spec.then, 0.0)]

    async def run(self, runner, spec, queries):
        from ttc.strategies import StrategyResult

        t0 = time.perf_counter()
        first = await runner.sample(queries, spec.n, salt=f"esc1-n{spec.n}")
        rewards = await runner.score_pools(queries, first)
        t1 = time.perf_counter() - t0
        results, doubtful = [], []
        for qi, (q, pool, rew) in enumerate(zip(queries, first, rewards)):
            texts = [c.text for c in pool]
            answers = [runner.answer_of(t) for t in texts]
            scores = [aggregate(r, spec.aggregation) for r in rew]
            i = best_scored(answers, scores)
            results.append(StrategyResult(
                query_id=q.query_id, strategy_id=spec.id, answer=answers[i], text=texts[i],
                tokens=sum(c.tokens for c in pool), latency_s=t1,
                trace={"stage": 1, "escalated": False, "stage1_score": scores[i], "tau": spec.tau,
                       "stage1_tokens": sum(c.tokens for c in pool), "prm_steps": sum(len(r) for r in rew),
                       "answers": answers, "scores": scores, "candidates": texts}))
            if scores[i] < spec.tau:
                doubtful.append(qi)
        if not doubtful:
            return results
        t0 = time.perf_counter()
        then, second = spec.then, get_method(spec.then.method)
        sub = [queries[qi] for qi in doubtful]
        if second.pool_labelable:
            more = await runner.sample(sub, then.n - spec.n, salt=f"esc2-n{then.n}")
            more_rewards = await runner.score_pools(sub, more)
            for qi, pool2, rew2 in zip(doubtful, more, more_rewards):
                r = results[qi]
                texts = r.trace["candidates"] + [c.text for c in pool2]
                answers = r.trace["answers"] + [runner.answer_of(c.text) for c in pool2]
                scores = r.trace["scores"] + [aggregate(x, then.aggregation) for x in rew2]
                r.answer, r.text = second.select(texts, answers, scores)
                r.tokens += sum(c.tokens for c in pool2)
                r.trace.update(answers=answers, scores=scores, candidates=texts,
                               prm_steps=r.trace["prm_steps"] + sum(len(x) for x in rew2))
        else:
            for qi, res2 in zip(doubtful, await second.run(runner, then, sub)):
                r = results[qi]
                r.answer, r.text = res2.answer, res2.text
                r.tokens += res2.tokens
                r.trace.update(answers=res2.trace["answers"], scores=res2.trace["scores"],
                               candidates=res2.trace["candidates"],
                               prm_steps=r.trace["prm_steps"] + res2.trace["prm_steps"])
        t2 = time.perf_counter() - t0
        for qi in doubtful:
            r = results[qi]
            r.latency_s += t2
            r.trace.update(stage=2, escalated=True, stage2_latency_s=t2)
        return results

    def outcome(self, spec, pool, idx, run=None) -> tuple[float, float, float]:
        """(correct, tokens, escalated) of one run whose samples are pool[idx] in order: the
        first n are stage 1, the rest what stage 2 draws; a beam `then` uses the real `run`."""
        then = spec.then
        s1, s2 = pool.scores(spec.aggregation), pool.scores(then.aggregation)
        head = idx[:spec.n]
        i = head[best_scored([pool.answers[k] for k in head], [s1[k] for k in head])]
        t1 = float(sum(pool.tokens[k] for k in head))
        if s1[i] >= spec.tau:
            return float(pool.correct[i]), t1, 0.0
        if run is not None:  # a real run of the beam config
            return float(run.correct), t1 + run.tokens, 1.0
        j = get_method(then.method).choose([pool.answers[k] for k in idx], [s2[k] for k in idx])
        return float(pool.correct[idx[j]]), float(sum(pool.tokens[k] for k in idx)), 1.0

    def label(self, spec, inputs):
        from ttc.soft_labels import resample

        then = spec.then
        second = get_method(then.method)
        runs = None if second.pool_labelable else inputs.runs[then.id]
        size = then.n if second.pool_labelable else spec.n
        return resample(inputs.pool, size, inputs, lambda idx, run=None: self.outcome(spec, inputs.pool, idx, run),
                        runs=runs, ordered=True)
