"""Label one query for every strategy of a grid: soft label, tokens and latency.

Parallel methods: the query is sampled once at every N of the grid (one engine
call each, timed, as a served request would run), and each run's completions are
PRM-scored (timed). Latency of (method, N) is the measured time of the run at N
(+ its scoring for PRM methods). All runs together form ONE pool of
M = sum(N) >= max N completions, from which soft labels and token means come by
resampling. Beam-search configs are run for real, one query at a time.
"""

from __future__ import annotations

import time

import numpy as np

from ttc.grading import answers_match
from ttc.grid import StrategyGrid
from ttc.queries import Query
from ttc.soft_labels import ScoredPool, pool_soft_label
from ttc.strategies import StrategyRunner, answer_of, request_seed

LABEL_SCHEMA_VERSION = 1
LABEL_COLUMNS = ("query_id", "strategy_id", "method", "n", "beam_width", "max_iterations",
                 "soft_label", "runs", "mean_tokens", "mean_latency_s", "difficulty", "question", "answer")


async def label_query(runner: StrategyRunner, grid: StrategyGrid, query: Query, resamples: int,
                      seed: int) -> tuple[list[dict], dict]:
    """Rows for every strategy of `grid` on `query`, plus token accounting for the pool."""
    parallel = [s for s in grid.strategies if s.method != "beam_search"]
    beams = [s for s in grid.strategies if s.method == "beam_search"]
    ns = sorted({s.n for s in parallel})
    answers, correct, tokens, rewards = [], [], [], []
    gen_s, score_s = {}, {}
    for n in ns:
        t0 = time.perf_counter()
        comps = (await runner.sample([query], n, salt=f"pool-n{n}"))[0]
        gen_s[n] = time.perf_counter() - t0
        texts = [c.text for c in comps]
        t0 = time.perf_counter()
        r = await runner.score_solutions([query.question] * n, texts) if runner.scorer else [[]] * n
        score_s[n] = time.perf_counter() - t0
        answers += [answer_of(t) for t in texts]
        correct += [answers_match(a, query.answer) for a in answers[-n:]]
        tokens += [c.tokens for c in comps]
        rewards += r
    pool = ScoredPool(answers, correct, tokens, rewards)
    rng = np.random.default_rng(request_seed(seed, query.query_id, "resample"))
    rows = []
    for spec in parallel:
        lab = pool_soft_label(pool, spec, resamples, rng)
        latency = gen_s[spec.n] + (score_s[spec.n] if spec.uses_prm else 0.0)
        rows.append(_row(query, spec, lab.soft_label, lab.runs, lab.mean_tokens, latency))
    for spec in beams:
        res = (await runner.run(spec, [query]))[0]
        rows.append(_row(query, spec, float(answers_match(res.answer, query.answer)), 1,
                         float(res.tokens), res.latency_s))
    per_completion = float(np.mean(tokens)) if tokens else 0.0
    accounting = {
        "pool_tokens": int(sum(tokens)),
        # The same soft labels by sampling every parallel config `resamples` times on its own.
        "separate_sampling_tokens": float(sum(s.n for s in parallel) * resamples * per_completion),
        # One run of every parallel config on its own (no soft labels, binary only).
        "one_run_each_tokens": float(sum(s.n for s in parallel) * per_completion),
    }
    return rows, accounting


def _row(query: Query, spec, soft_label: float, runs: int, mean_tokens: float, latency: float) -> dict:
    return {"query_id": query.query_id, "strategy_id": spec.id, "method": spec.method, "n": spec.n,
            "beam_width": spec.beam_width, "max_iterations": spec.max_iterations,
            "soft_label": float(soft_label), "runs": int(runs), "mean_tokens": float(mean_tokens),
            "mean_latency_s": float(latency), "difficulty": query.difficulty,
            "question": query.question, "answer": query.answer}
