"""Batched PRM-guided beam search against the same search one query at a time.

    python -m benchmarks.beam_batching --json [--queries 32] [--strategy beam_search/n=8/m=4/it=10]

Same engines, same config, same problems, run side by side in one process:
throughput (queries/s) of one lockstep search over all queries versus a loop of
single-query searches, plus tokens and accuracy of each (they should agree).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time


def run(n_queries: int, strategy: str, seed: int) -> dict:
    from ttc.arithmetic import generate_problems
    from ttc.grading import answers_match
    from ttc.grid import StrategySpec
    from ttc.prompts import get_format
    from ttc.strategies import SamplingConfig, StrategyRunner
    from ttc.world.engines import world_generator, world_scorer

    per_level = -(-n_queries // 8)
    queries = [p.to_query() for p in generate_problems(per_level, seed=seed)][:n_queries]
    runner = StrategyRunner(world_generator(seed=seed), world_scorer(seed=seed), get_format("world"),
                            SamplingConfig(seed=seed))
    spec = StrategySpec.from_id(strategy)
    asyncio.run(runner.run(spec, queries[:2]))  # warm-up: first calls compile kernels

    t0 = time.perf_counter()
    batched = asyncio.run(runner.run(spec, queries))
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [asyncio.run(runner.run(spec, [q]))[0] for q in queries]
    single_s = time.perf_counter() - t0

    def acc(results):
        return sum(answers_match(r.answer, q.answer) for r, q in zip(results, queries)) / len(queries)

    return {
        "strategy": spec.id, "queries": len(queries),
        "batched": {"seconds": batched_s, "queries_per_s": len(queries) / batched_s,
                    "tokens": sum(r.tokens for r in batched), "accuracy": acc(batched)},
        "one_at_a_time": {"seconds": single_s, "queries_per_s": len(queries) / single_s,
                          "tokens": sum(r.tokens for r in single), "accuracy": acc(single),
                          "p50_latency_s": sorted(r.latency_s for r in single)[len(single) // 2]},
        "throughput_ratio": single_s / batched_s,
        "bar": 3.0,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--strategy", default="beam_search/n=8/m=4/it=10")
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    if args.queries < 1:
        ap.error("--queries must be >= 1")
    result = run(args.queries, args.strategy, args.seed)
    result["passed"] = result["throughput_ratio"] >= result["bar"]
    print(json.dumps(result, indent=2 if args.json else None))


if __name__ == "__main__":
    main()
