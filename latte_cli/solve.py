"""`latte solve`: run generated problems (or a query file) through every strategy of a grid."""

from __future__ import annotations


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
