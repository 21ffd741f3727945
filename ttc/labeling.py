"""Label queries for every strategy of a grid: soft label, tokens and latency.

Every query gets ONE pool of completions: one sample run at each N the grid's pool-labeled
strategies need (N = 1, 2, 4, 8, 16 on the CPU grid, so M = 31 samples), all PRM-scored.
Soft labels and token means of the pool-labelable strategies (majority, best-of-N,
weighted best-of-N, escalation) come from resampling that pool; strategies that must
run (beam search) are run `beam_runs` times with independent seeds.

Two modes of `measure_shard`, same labels:
- per query: one query at a time (`measure_one`), every engine call timed, so a row's
  latency is measured as a request served alone would see it;
- batched: all queries of a shard in one generation call and one scoring
  call, beam search batched across queries and runs. Latency is not measured there; the
  rows record what they wait for (`latency_parts`) and `ttc.latency_model` fills it in
  from calibration queries whose pools and one run of each must-run strategy are timed alone.

Latency of a row is the sum of its components (Method.latency_parts): `sample/n=N` (the
call that draws N samples), `score/n=N` (their scoring) and beam runs.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ttc.grading import answers_match
from ttc.grid import StrategyGrid, StrategySpec
from ttc.queries import Query
from ttc.soft_labels import RunOutcome, ScoredPool, from_runs, pool_soft_label
from ttc.strategies import StrategyRunner, request_seed

LABEL_SCHEMA_VERSION = 2
LABEL_COLUMNS = ("query_id", "strategy_id", "method", "n", "beam_width", "max_iterations",
                 "soft_label", "soft_label_a", "soft_label_b", "runs", "mean_tokens", "mean_latency_s",
                 "stage2_rate", "latency_measured", "latency_parts", "difficulty", "question", "answer")


@dataclass(frozen=True)
class LabelPlan:
    """What labeling a grid takes per query: pool runs and strategies to run for real."""

    pool_ns: tuple[int, ...]
    pooled: tuple[StrategySpec, ...]  # grid strategies labeled from the pool
    run_specs: tuple[StrategySpec, ...]  # strategies run for real (the grid's and components)

    @classmethod
    def of(cls, grid: StrategyGrid) -> "LabelPlan":
        pooled = tuple(s for s in grid.strategies if s.impl.pool_labelable)
        runs: dict[str, StrategySpec] = {}
        for s in grid.strategies:
            for r in ([] if s.impl.pool_labelable else [s]) + s.impl.components(s):
                runs.setdefault(r.id, r)
        ns = sorted(set().union(*[s.impl.pool_sizes(s) for s in pooled])) if pooled else []
        return cls(tuple(ns), pooled, tuple(runs.values()))


def run_query(query: Query, run: int) -> Query:
    """The query as seen by its run-th independent run (seeds derive from the query id)."""
    if run == 0:
        return query
    return Query(f"{query.query_id}#run{run}", query.question, query.answer, query.source, query.difficulty)


@dataclass
class QueryMeasure:
    """One query's pool, real runs, per-component tokens and (per-query mode) timings."""

    pool: ScoredPool
    runs: dict[str, list[RunOutcome]]
    component_tokens: dict[str, float]
    timings: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # comp -> [(tokens, s)]


def _pool(query: Query, runs_by_n: list[tuple[list, list[list[float]]]]) -> tuple[ScoredPool, dict]:
    from ttc.strategies import answer_of

    answers, correct, tokens, rewards, comp = [], [], [], [], {}
    for comps, rew in runs_by_n:
        n = len(comps)
        comp[f"sample/n={n}"] = comp[f"score/n={n}"] = float(sum(c.tokens for c in comps))
        for c, r in zip(comps, rew):
            a = answer_of(c.text)
            answers.append(a)
            correct.append(answers_match(a, query.answer))
            tokens.append(c.tokens)
            rewards.append(r)
    return ScoredPool(answers, correct, tokens, rewards), comp


async def measure_one(runner: StrategyRunner, plan: LabelPlan, query: Query, beam_runs: int) -> QueryMeasure:
    """Per-query mode: every engine call is this query's alone, and timed."""
    runs_by_n, timings = [], {}
    for n in plan.pool_ns:
        t0 = time.perf_counter()
        comps = (await runner.sample([query], n, salt=f"pool-n{n}"))[0]
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rew = await runner.score_solutions([query.question] * n, [c.text for c in comps]) if runner.scorer else [[]] * n
        score_s = time.perf_counter() - t0
        toks = float(sum(c.tokens for c in comps))
        timings[f"sample/n={n}"] = [(toks, gen_s)]
        timings[f"score/n={n}"] = [(toks, score_s)]
        runs_by_n.append((comps, rew))
    pool, comp = _pool(query, runs_by_n)
    runs: dict[str, list[RunOutcome]] = {}
    for spec in plan.run_specs:
        outs = []
        for r in range(beam_runs):
            res = (await runner.run(spec, [run_query(query, r)]))[0]
            outs.append(RunOutcome(answers_match(res.answer, query.answer), res.tokens, res.latency_s))
        runs[spec.id] = outs
        comp[spec.id] = float(np.mean([o.tokens for o in outs]))
        timings[spec.id] = [(float(o.tokens), o.latency_s) for o in outs]
    return QueryMeasure(pool, runs, comp, timings)


async def measure_shard(runner: StrategyRunner, plan: LabelPlan, queries: list[Query], calibration: set[str],
                        beam_runs: int, mode: str = "batched") -> list[QueryMeasure]:
    """One shard's measurements, in query order.

    `per_query`: every query alone, every run timed. `batched`: the calibration queries'
    pools and ONE run of each must-run strategy are timed alone (the latency model's points);
    all other pools go in one generation + one scoring call, and all remaining runs (the
    calibration queries' other runs included) in one batched call per strategy. Runs keep
    their seeds (run r of a query is the same in both modes)."""
    if mode == "per_query":
        return [await measure_one(runner, plan, q, beam_runs) for q in queries]
    if mode != "batched":
        raise ValueError(f"unknown labeling mode {mode!r} (batched, per_query)")
    alone = {q.query_id: await measure_one(runner, plan, q, 1) for q in queries if q.query_id in calibration}
    rest = [q for q in queries if q.query_id not in alone]
    pooled = dict(zip([q.query_id for q in rest], await _batched_pools(runner, plan, rest)))
    measures = [alone.get(q.query_id) or pooled[q.query_id] for q in queries]
    todo = [(q, m, range(1 if q.query_id in alone else 0, beam_runs)) for q, m in zip(queries, measures)]
    await _batched_runs(runner, plan, todo)
    return measures


async def _batched_pools(runner: StrategyRunner, plan: LabelPlan, queries: list[Query]) -> list[QueryMeasure]:
    """Every query's pool (one sample run per pool size) in one generation call, scored in one call."""
    from ttc.interfaces import GenerationRequest

    s = runner.sampling
    keys = [(qi, n) for qi in range(len(queries)) for n in plan.pool_ns]
    reqs = [GenerationRequest(prompt=runner.format.policy_prompt(queries[qi].question), n=n,
                              max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                              seed=request_seed(s.seed, queries[qi].query_id, f"pool-n{n}"))
            for qi, n in keys]
    outs = await runner.generator.generate(reqs) if reqs else []
    if runner.scorer is not None and outs:
        rewards = await runner.score_pools([queries[qi] for qi, _ in keys], outs)
    else:
        rewards = [[[]] * len(o) for o in outs]
    per_query: list[list] = [[] for _ in queries]
    for (qi, _), comps, rew in zip(keys, outs, rewards):
        per_query[qi].append((comps, rew))
    measures = []
    for q, runs_by_n in zip(queries, per_query):
        pool, comp = _pool(q, runs_by_n)
        measures.append(QueryMeasure(pool, {}, comp))
    return measures


async def _batched_runs(runner: StrategyRunner, plan: LabelPlan, todo: list[tuple[Query, QueryMeasure, range]]) -> None:
    """Run each must-run strategy once over all (query, run) pairs of `todo`, appending the
    outcomes to each query's measure (after any runs it already has).

    The runs share one memo of samples and step scores (ttc.sample_memo): configs that
    repeat a seeded request (beam 8/2 and 8/4 expand the root alike) draw it once. These
    rows are not timed, and a hit counts its tokens all the same, so labels are unchanged."""
    from ttc.sample_memo import MemoGenerator, MemoScorer

    flat = [(k, run_query(q, r)) for k, (q, _, runs) in enumerate(todo) for r in runs]
    runner = StrategyRunner(MemoGenerator(runner.generator),
                            MemoScorer(runner.scorer) if runner.scorer is not None else None,
                            runner.format, runner.sampling)
    for spec in plan.run_specs:
        res = await runner.run(spec, [rq for _, rq in flat]) if flat else []
        for (k, _), x in zip(flat, res):
            q, m, _ = todo[k]
            m.runs.setdefault(spec.id, []).append(RunOutcome(answers_match(x.answer, q.answer), x.tokens))
        for q, m, _ in todo:
            m.component_tokens[spec.id] = float(np.mean([o.tokens for o in m.runs[spec.id]]))


def rows_for(query: Query, grid: StrategyGrid, m: QueryMeasure, resamples: int, seed: int) -> tuple[list[dict], dict]:
    """Label rows of every grid strategy from one query's measurements, plus token accounting."""
    rng = np.random.default_rng(request_seed(seed, query.query_id, "resample"))
    measured = bool(m.timings)
    rows = []
    for spec in grid.strategies:
        lab = pool_soft_label(m.pool, spec, resamples, rng, m.runs) if spec.impl.pool_labelable \
            else from_runs(m.runs[spec.id])
        parts = [(c, float(m.component_tokens[c]), w) for c, w in spec.impl.latency_parts(spec, lab.stage2_rate)]
        latency = (sum(w * float(np.mean([t for _, t in m.timings[c]])) for c, _, w in parts)
                   if measured else math.nan)
        rows.append({"query_id": query.query_id, "strategy_id": spec.id, "method": spec.method, "n": spec.n,
                     "beam_width": spec.beam_width, "max_iterations": spec.max_iterations,
                     "soft_label": lab.soft_label, "soft_label_a": lab.soft_label_a,
                     "soft_label_b": lab.soft_label_b, "runs": int(lab.runs),
                     "mean_tokens": float(lab.mean_tokens), "mean_latency_s": float(latency),
                     "stage2_rate": float(lab.stage2_rate), "latency_measured": measured,
                     "latency_parts": json.dumps(parts), "difficulty": query.difficulty,
                     "question": query.question, "answer": query.answer})
    parallel = [s for s in grid.strategies if s.impl.pool_labelable and s.method != "escalate"]
    per_completion = float(np.mean(m.pool.tokens)) if m.pool.tokens else 0.0
    accounting = {
        "pool_tokens": int(sum(m.pool.tokens)),
        # The same soft labels by sampling every parallel config `resamples` times on its own.
        "separate_sampling_tokens": float(sum(s.n for s in parallel) * resamples * per_completion),
        # One run of every parallel config on its own (no soft labels, binary only).
        "one_run_each_tokens": float(sum(s.n for s in parallel) * per_completion),
    }
    return rows, accounting


def timing_points(query: Query, m: QueryMeasure) -> list[dict]:
    """Calibration points (component, tokens, seconds) of a query labeled per query."""
    return [{"query_id": query.query_id, "component": c, "tokens": t, "seconds": sec,
             "prompt_chars": len(query.question)} for c, pts in m.timings.items() for t, sec in pts]
