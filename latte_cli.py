"""`latte` command line: one entry point for the jobs, benchmarks and the demo."""

from __future__ import annotations

import argparse
import sys


def cmd_solve(args) -> int:
    """Solve a handful of generated problems with every strategy of the grid."""
    import asyncio
    import json

    from ttc.arithmetic import generate_problems
    from ttc.grading import answers_match
    from ttc.queries import load_queries
    from ttc.recipe import load_recipe
    from ttc.strategies import StrategyRunner

    recipe = load_recipe(args.recipe)
    if args.queries:
        queries = load_queries(args.queries, limit=args.limit)
    else:
        queries = [p.to_query() for p in generate_problems(args.per_level, seed=args.seed, levels=args.levels)]
    grid = recipe.strategy_grid()
    ids = args.strategy or grid.ids
    from ttc.grid import StrategySpec

    for sid in ids:  # malformed or unknown ids fail here, before any engine starts
        StrategySpec.from_id(sid)
        grid[sid]
    runner = StrategyRunner(recipe.build_generator(args.seed), recipe.build_scorer(args.seed),
                            recipe.format(), recipe.sampling.config(args.seed))
    summary = []
    print(f"{'strategy':34s} {'acc':>5s} {'tokens/q':>9s} {'latency s':>9s}")
    for sid in ids:
        spec = grid[sid]
        results = asyncio.run(runner.run(spec, queries))
        correct = [answers_match(r.answer, q.answer) for r, q in zip(results, queries)]
        row = {"strategy": sid, "accuracy": sum(correct) / len(correct),
               "tokens_per_query": sum(r.tokens for r in results) / len(results),
               "batch_latency_s": results[0].latency_s,
               "answers": [{"question": q.question, "answer": r.answer, "reference": q.answer,
                            "tokens": r.tokens} for q, r in zip(queries, results)]}
        summary.append(row)
        print(f"{sid:34s} {row['accuracy']:5.2f} {row['tokens_per_query']:9.1f} {row['batch_latency_s']:9.2f}")
    if args.verbose:
        for row in summary:
            for a in row["answers"]:
                print(f"  {row['strategy']:30s} {a['question']:40s} -> {a['answer']} (ref {a['reference']}, {a['tokens']} tok)")
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


def cmd_demo(rest: list[str]) -> int:
    from jobs import demo

    demo.main(rest)
    return 0


def cmd_world(rest: list[str]) -> int:
    from jobs import world

    world.main(rest)
    return 0


def cmd_bench(rest: list[str]) -> int:
    import importlib

    if not rest or rest[0].startswith("-"):
        raise ValueError("usage: latte bench NAME [args]  (NAME: world_quality, beam_batching, ...)")
    mod = importlib.import_module(f"benchmarks.{rest[0]}")
    mod.main(rest[1:])
    return 0


def cmd_serve(rest: list[str]) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="latte serve", description="serve the router over HTTP on a local Ray cluster")
    ap.add_argument("--config", default="cluster/serve/cpu_world.yaml", help="Serve config file")
    ap.add_argument("--router-config", help="router config (overrides the Serve config's app args)")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--reload", action="store_true",
                    help="apply --router-config to the app already running on this Ray cluster, in place "
                         "(no replica restarts), then exit")
    args = ap.parse_args(rest)
    import ray

    from serve_app.deploy import deploy, reload_router

    if args.reload:
        if not args.router_config:
            raise ValueError("--reload needs --router-config (e.g. the tuning job's router.yaml)")
        ray.init(address="auto")
        reload_router(args.config, args.router_config, http_port=args.port)
        print(f"router config {args.router_config} applied to the running app")
        return 0
    ray.init(ignore_reinit_error=True)
    data = deploy(args.config, {"router_config": args.router_config} if args.router_config else None, args.port)
    http = data.get("http_options", {})
    print(f"latte is serving on http://{http.get('host', '127.0.0.1')}:{http.get('port', 8000)}/ "
          "(POST /v1/solve, /v1/chat/completions; GET /v1/models, /v1/strategies, /healthz); Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def cmd_cluster(rest: list[str]) -> int:
    from cluster import local

    return local.main(rest)


PASSTHROUGH = {"demo": cmd_demo, "world": cmd_world, "bench": cmd_bench, "serve": cmd_serve,
               "cluster": cmd_cluster}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="latte", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    # Listed for --help; their own parsers take their flags (see PASSTHROUGH).
    sub.add_parser("demo", help="label, train the probe and evaluate on the CPU world (local Ray)")
    sub.add_parser("world", help="train the tiny policy and PRM (jobs.world)")
    sub.add_parser("bench", help="run benchmarks.NAME")
    sub.add_parser("serve", help="serve the router over HTTP (cluster/serve/cpu_world.yaml)")
    sub.add_parser("cluster", help="up-local / status-local / down-local: a one-machine Ray cluster for `ray job submit`")

    for name, help_ in (("solve", "solve generated problems or a query file with each strategy"),):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--per-level", type=int, default=2)
        p.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8])
        p.add_argument("--recipe", default="cluster/recipes/cpu_world.yaml",
                       help="models, prompt format, grid and sampling (cluster/recipes/)")
        p.add_argument("--queries", help="query file (.jsonl/.json/.parquet) instead of generated problems")
        p.add_argument("--limit", type=int, help="use the first N queries of --queries")
        p.add_argument("--strategy", action="append", help="strategy id (repeatable); default: whole grid")
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--json", action="store_true")
        p.add_argument("-v", "--verbose", action="store_true")
        p.set_defaults(func=cmd_solve)

    return ap


def main(argv=None) -> int:
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # Sub-commands that own their flags get the rest of the line untouched.
        if argv and argv[0] in PASSTHROUGH:
            return PASSTHROUGH[argv[0]](argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (ValueError, KeyError) as exc:  # bad input from the user: one clear line, no traceback
        print(f"latte: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
