"""Quality of the CPU world: is there something for test-time compute to buy?

    python -m benchmarks.world_quality --json [--per-level 100] [--temperature 0.7]

Per difficulty level, on held-out problems: pass@1 (mean over 8 samples), greedy
pass@1, pass@8, majority@8, PRM best-of-8, PRM-weighted best-of-8, one beam-search
config, and the PRM's step-level ROC AUC on the same held-out policy samples.
Checks the world's bars (docs/architecture.md#two-worlds-one-code-path) and writes a
PNG beside the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

BARS = {
    "step_auc_min": 0.90,
    "prm_over_majority_points": 3.0,
    "pass1_drop_points": 30.0,
    "pass8_minus_pass1_hardest_points": 15.0,
}


def measure(per_level: int, temperature: float, seed: int, beam: str, samples: int = 8,
            aggregation: str = "last", levels: list[int] | None = None) -> dict:
    from ttc.arithmetic import MAX_LEVEL, MIN_LEVEL, generate_problems, step_labels
    from ttc.grading import answers_match, split_steps
    from ttc.grid import AGGREGATIONS, StrategySpec
    from ttc.prompts import get_format
    from ttc.strategies import SamplingConfig, StrategyRunner, answer_of, select
    from ttc.voting import aggregate
    from world.engines import world_generator, world_scorer
    from world.train_prm import roc_auc

    levels_asked = list(range(MIN_LEVEL, MAX_LEVEL + 1)) if levels is None else sorted(set(levels))
    in_world = levels_asked == list(range(MIN_LEVEL, MAX_LEVEL + 1))
    problems = generate_problems(per_level, seed=seed, levels=levels_asked, max_level=max(levels_asked + [MAX_LEVEL]))
    queries = [p.to_query() for p in problems]
    gen, scorer = world_generator(seed=seed), world_scorer(seed=seed)
    runner = StrategyRunner(gen, scorer, get_format("world"),
                            SamplingConfig(temperature=temperature, seed=seed))
    greedy = StrategyRunner(gen, scorer, get_format("world"), SamplingConfig(temperature=0.0, seed=seed))
    t0 = time.perf_counter()
    pools = asyncio.run(runner.sample(queries, samples))
    greedy_pools = asyncio.run(greedy.sample(queries, 1, salt="greedy"))
    texts = [[c.text for c in pool] for pool in pools]
    flat_q = [q.question for q, ts in zip(queries, texts) for _ in ts]
    flat_t = [t for ts in texts for t in ts]
    flat_r = asyncio.run(runner.score_solutions(flat_q, flat_t))
    sample_s = time.perf_counter() - t0
    spec = StrategySpec.from_id(beam)
    t0 = time.perf_counter()
    beam_res = asyncio.run(runner.run(spec, queries))
    beam_s = time.perf_counter() - t0

    rows: dict[int, dict[str, list]] = {}
    k = 0
    for qi, (p, ts) in enumerate(zip(problems, texts)):
        rewards = flat_r[k:k + len(ts)]
        k += len(ts)
        answers = [answer_of(t) for t in ts]
        correct = [answers_match(a, p.answer) for a in answers]
        row = rows.setdefault(p.difficulty, {m: [] for m in (
            "pass@1", "greedy", "pass@8", "majority@8", "prm_best_of_8", "weighted_best_of_8",
            "beam", "step_scores", "step_labels", "tokens_per_sample", "beam_tokens")
            + tuple(f"{m}[{a}]" for m in ("prm_best_of_8", "weighted_best_of_8") for a in AGGREGATIONS)})
        row["pass@1"].append(np.mean(correct))
        row["greedy"].append(float(answers_match(answer_of(greedy_pools[qi][0].text), p.answer)))
        row["pass@8"].append(float(any(correct)))
        ans, _ = select("majority", ts, answers, [])
        row["majority@8"].append(float(answers_match(ans, p.answer)))
        for agg in AGGREGATIONS:
            scores = [aggregate(r, agg) for r in rewards]
            for name, method in (("prm_best_of_8", "best_of_n"), ("weighted_best_of_8", "weighted_best_of_n")):
                ans, _ = select(method, ts, answers, scores)
                row[f"{name}[{agg}]"].append(float(answers_match(ans, p.answer)))
                if agg == aggregation:
                    row[name].append(float(answers_match(ans, p.answer)))
        row["beam"].append(float(answers_match(beam_res[qi].answer, p.answer)))
        row["beam_tokens"].append(beam_res[qi].tokens)
        row["tokens_per_sample"].append(np.mean([c.tokens for c in pools[qi]]))
        for t, r in zip(ts, rewards):
            steps = split_steps(t)
            row["step_labels"] += step_labels(p.question, steps)[:len(r)]
            row["step_scores"] += r[:len(steps)]

    levels = {}
    all_scores, all_labels = [], []
    for lvl in sorted(rows):
        r = rows[lvl]
        all_scores += r["step_scores"]
        all_labels += r["step_labels"]
        levels[lvl] = {m: round(float(np.mean(v)), 4) for m, v in r.items()
                       if m not in ("step_scores", "step_labels")}
        levels[lvl]["step_auc"] = round(roc_auc(r["step_scores"], r["step_labels"]), 4)
    lv = sorted(levels)
    mean = {m: float(np.mean([levels[lvl][m] for lvl in lv])) for m in levels[lv[0]]}
    hardest = lv[-2:]
    auc = roc_auc(all_scores, all_labels)
    checks = {
        "step_auc": auc,
        "prm_best_of_8_minus_majority_points": 100 * (mean["prm_best_of_8"] - mean["majority@8"]),
        "weighted_best_of_8_minus_majority_points": 100 * (mean["weighted_best_of_8"] - mean["majority@8"]),
        "pass1_drop_points": 100 * (levels[lv[0]]["pass@1"] - levels[lv[-1]]["pass@1"]),
        "pass8_minus_pass1_hardest_points": 100 * float(np.mean(
            [levels[lvl]["pass@8"] - levels[lvl]["pass@1"] for lvl in hardest])),
    }
    passed = {
        "step_auc": checks["step_auc"] >= BARS["step_auc_min"],
        "prm_best_of_8": checks["prm_best_of_8_minus_majority_points"] >= BARS["prm_over_majority_points"],
        "weighted_best_of_8": checks["weighted_best_of_8_minus_majority_points"] >= BARS["prm_over_majority_points"],
        "pass1_drop": checks["pass1_drop_points"] >= BARS["pass1_drop_points"],
        "pass8_gain_hardest": checks["pass8_minus_pass1_hardest_points"] >= BARS["pass8_minus_pass1_hardest_points"],
    }
    return {"problems_per_level": per_level, "temperature": temperature, "seed": seed,
            "aggregation": aggregation,
            "beam_config": spec.id, "levels": levels, "mean_over_levels": mean, "checks": checks,
            "bars": BARS, "passed": passed if in_world else None,
            "all_passed": all(passed.values()) if in_world else None,
            # the bars are the world's: judged on its own levels only, not on a probe beyond them
            "bars_apply": in_world,
            "seconds": {"sample_and_score": sample_s, "beam": beam_s}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lv = sorted(result["levels"], key=int)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in ("pass@1", "greedy", "pass@8", "majority@8", "prm_best_of_8", "weighted_best_of_8", "beam"):
        ax.plot([int(x) for x in lv], [result["levels"][x][m] for x in lv], marker="o", label=m)
    ax.set_xlabel("difficulty (steps)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"CPU world, T={result['temperature']}, step AUC={result['checks']['step_auc']:.3f}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-level", type=int, default=100)
    ap.add_argument("--temperature", type=float, default=None,
                    help="sampling temperature (default: the one the strategies use)")
    ap.add_argument("--seed", type=int, default=12345, help="problem seed, disjoint from training seeds")
    ap.add_argument("--beam", default=None, help="beam config (default: the CPU grid's smallest)")
    ap.add_argument("--aggregation", default=None, help="PRM score aggregation (default: the CPU grid's)")
    ap.add_argument("--levels", type=int, nargs="+", default=None,
                    help="difficulty levels to measure (default: the world's 1..8); levels above 8 probe "
                         "the shipped models beyond their training range, and the bars are then not judged "
                         "(give a --beam whose it= covers the longest chain)")
    ap.add_argument("--out", default="runs/world_quality")
    ap.add_argument("--json", action="store_true", help="print the JSON result")
    args = ap.parse_args(argv)
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    from ttc.strategies import SamplingConfig

    temperature = SamplingConfig().temperature if args.temperature is None else args.temperature
    from ttc.grid import cpu_grid

    beams = [s for s in cpu_grid().strategies if s.method == "beam_search"]
    beam = args.beam or beams[0].id
    aggregation = args.aggregation or beams[0].aggregation
    if args.levels and min(args.levels) < 1:
        ap.error("--levels must be >= 1")
    result = measure(args.per_level, temperature, args.seed, beam, aggregation=aggregation, levels=args.levels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "world_quality.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "world_quality.png")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(json.dumps({"checks": result["checks"], "passed": result["passed"], "bars_apply": result["bars_apply"]},
                         indent=2))


if __name__ == "__main__":
    main()
