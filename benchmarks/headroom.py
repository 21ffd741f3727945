"""Where is the headroom for a router on this world, and what keeps the learned one from it?

    python -m benchmarks.headroom --json [--train runs/demo/labels/labels_train.parquet]
                                         [--val runs/demo/labels/labels_val.parquet]

Training and validation tables only (the test table is never read). Four measurements:

1. Per-query pass@1 (`majority/n=1`'s soft label over its runs), training split: its
   variance, the part between difficulty levels, the part within them, and the binomial
   noise of the label itself; then how much of the within-level part the question's
   structure predicts (5-fold CV, gradient boosting on the level plus per-operation counts,
   subtraction borrows, addition carries, two-digit intermediates). Those structure features
   come from knowing how the world's policy fails (96% of its errors are wrong step results,
   mostly subtractions); no deployable featurizer has them, so they bound what the question
   alone can tell.
2. The probe fitted as `benchmarks.featurizers` fits it, on those structure features and on
   the log length alone (the reference row there): validation AUC and the router's
   normalized tokens area.
3. The same areas when the router is handed the true per-query costs, of the escalation
   configs only or of every other config. An escalation's mean tokens on a query are set by
   how often its first sample fails the PRM check, i.e. by that query's own pass@1: the
   oracle (the area's upper end) chooses with them, a router must predict them from the
   question, as it predicts accuracy.
4. The top of the curve: the best static accuracy on validation against the most accurate
   points of the split-label oracle (chooses on half of each cell's resamples, scored on
   the other half) and of the full oracle.

Writes headroom.json and headroom.png into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def structure_features(questions: list[str]) -> np.ndarray:
    """What a featurizer that knew the world's failure modes would read off a question."""
    from probe.features import length_feature
    from ttc.arithmetic import apply_op, parse_question

    rows = []
    for q in questions:
        value, ops = parse_question(q)
        f = np.zeros(12, dtype=np.float32)
        for op, b in ops:
            a, value = value, apply_op(value, op, b)
            f["+-*/".index(op)] += 1
            f[4] += op == "-" and a % 10 < b % 10  # a borrow
            f[5] += op == "+" and a % 10 + b % 10 >= 10  # a carry
            f[6] += op == "*" and value >= 10
            f[7] += value >= 10
            f[8] = max(f[8], value / 100)
            f[9] += value / 100
        f[10] = len(ops)
        f[11] = f[9] / max(1, len(ops))
        rows.append(f)
    return np.hstack([np.array(rows), length_feature(questions)])


class Structure:
    name, dim = "world_structure", 13

    def embed(self, questions):
        return structure_features(list(questions))


def pass1_variance(train, pool_size: int, sid: str = "majority/n=1", folds: int = 5, seed: int = 0) -> dict:
    """Variance decomposition of per-query pass@1 and the within-level share structure predicts.

    pool_size: the scored pool a label's resamples are drawn from (every pool run of the grid,
    `LabelPlan.pool_ns` summed), whose own sampling adds to the resamples' noise."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.model_selection import KFold, cross_val_predict

    j = train.strategy_ids.index(sid)
    y, runs = train.matrix("soft_label")[:, j], train.matrix("runs")[:, j]
    by_level, by_question = train.difficulties(), train.questions()
    level = np.array([by_level[q] for q in train.query_ids], dtype=int)
    questions = [by_question[q] for q in train.query_ids]
    level_mean = np.array([y[level == v].mean() for v in level])
    within = float(np.mean((y - level_mean) ** 2))
    # A label is the mean of R resamples from a pool of M samples: variance p(1-p)(1/M + 1/R),
    # and E[y(1-y)] = p(1-p)(1 - 1/M - 1/R + 1/(MR)), hence the correction.
    m, r = float(pool_size), np.maximum(runs, 1.0)
    noise = float(np.mean(y * (1 - y) * (1 / m + 1 / r) * (m * r) / np.maximum(m * r - m - r + 1, 1.0)))
    onehot = np.eye(level.max() + 1)[level]
    cv = KFold(folds, shuffle=True, random_state=seed)  # the table is ordered by level: shuffle the folds
    out = {"strategy": sid, "queries": int(len(y)), "resamples_per_label": float(runs.mean()), "pool_size": pool_size,
           "variance_total": float(np.var(y)), "variance_within_levels": within,
           "variance_between_levels": float(np.var(level_mean)), "label_noise_variance": noise}
    for name, x in (("level", onehot), ("level_plus_structure", np.hstack([onehot, structure_features(questions)]))):
        model = GradientBoostingRegressor(max_depth=3, n_estimators=200, learning_rate=0.05, random_state=seed)
        pred = cross_val_predict(model, x, y, cv=cv)
        mse = float(np.mean((y - pred) ** 2))
        out[name] = {"cv_r2": 1 - mse / float(np.var(y)),
                     # share of the within-level variance (less its label noise) the features predict
                     "within_level_explained": (1 - (mse - noise) / (within - noise)) if within > noise else None}
    return out


def router_areas(train_path: str, val_path: str, recipe_path: str, seeds: int) -> dict:
    from benchmarks.featurizers import Cached, LengthOnly, score_on_validation, split_train
    from jobs.train_probe import TrainProbeConfig
    from probe.evaluation import Truth, log_grid, normalized_area, static_points, sweep
    from probe.mlp import TrainConfig
    from probe.training import fit_artifact
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    train, val = LabelTable.read(train_path), LabelTable.read(val_path)
    if train.strategy_ids != val.strategy_ids:
        raise ValueError("train and validation label tables list different strategies")
    grid = load_recipe(recipe_path).strategy_grid().subset(train.strategy_ids)
    fit_part, hold_part = split_train(train)
    job = TrainProbeConfig(train_labels=train_path, val_labels=val_path, out_dir="-")
    truth = Truth.from_table(val)
    lts = log_grid(1e-6, 1e-1, 25)
    static = static_points(truth, grid.ids)
    oracle = sweep(truth, truth.acc, truth.tokens, truth.latency, lts, [0.0])
    esc = np.array([s.method == "escalate" for s in grid.strategies])

    def area(acc, tok, lat):
        return normalized_area(static, sweep(truth, acc, tok, lat, lts, [0.0]), oracle, "tokens")["value"]

    tq, vq = train.questions(), val.questions()
    val_questions = [vq[q] for q in val.query_ids]
    everything = list(dict.fromkeys([tq[q] for q in train.query_ids] + val_questions))
    rows = {}
    for featurizer in (Structure(), LengthOnly()):
        cached = Cached(featurizer.name, dict(zip(everything, featurizer.embed(everything))))
        qf = cached.embed(val_questions)
        per_seed = []
        for seed in range(seeds):
            art = fit_artifact(grid, cached, fit_part, hold_part,
                               TrainConfig(lr=job.lr, batch_size=job.batch_size, max_epochs=job.max_epochs,
                                           patience=job.patience, seed=seed), cfg_components=job.pca_components)
            acc = art.predict_accuracy(qf)
            tok, lat = art.predict_costs(qf)
            true_esc, true_rest = tok.copy(), tok.copy()
            true_esc[:, esc] = truth.tokens[:, esc]
            true_rest[:, ~esc] = truth.tokens[:, ~esc]
            s = score_on_validation(art, qf, val)  # AUC, and the area with predicted costs
            per_seed.append({"auc": s["auc"], "area_tokens": s["area_tokens"],
                             "area_tokens_true_escalation_tokens": area(acc, true_esc, lat),
                             "area_tokens_true_other_tokens": area(acc, true_rest, lat),
                             "area_tokens_all_true_costs": area(acc, truth.tokens, truth.latency)})
        rows[featurizer.name] = {k: {"mean": float(np.mean([r[k] for r in per_seed])),
                                     "std": float(np.std([r[k] for r in per_seed]))} for k in per_seed[0]}
        r = rows[featurizer.name]
        print(f"[headroom] {featurizer.name}: AUC {r['auc']['mean']:.3f}, area tokens {r['area_tokens']['mean']:.3f}"
              f" (true escalation tokens {r['area_tokens_true_escalation_tokens']['mean']:.3f})", file=sys.stderr, flush=True)
    return {"probe": rows, "top": top_of_curve(truth, static, oracle, lts), "train": train, "grid": grid}


def top_of_curve(truth, static: list[dict], oracle: list[dict], lts) -> dict:
    from probe.evaluation import split_label_strategies, split_oracle_sweep

    best = max(static, key=lambda p: p["accuracy"])
    out = {"best_static": best, "oracle_most_accurate": max(p["accuracy"] for p in oracle)}
    cols = split_label_strategies(truth)
    if cols is not None:
        split = split_oracle_sweep(truth, lts, [0.0], cols)
        out["split_label_oracle_most_accurate"] = max(p["accuracy"] for p in split)
        out["split_oracle_reaches_best_static"] = out["split_label_oracle_most_accurate"] >= best["accuracy"] - 1e-9
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = result["pass1_variance"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    explained = max(0.0, v["level_plus_structure"]["within_level_explained"] or 0.0)
    parts = {"between levels": v["variance_between_levels"],
             "within: structure predicts": (v["variance_within_levels"] - v["label_noise_variance"])
             * explained,
             "within: unexplained": (v["variance_within_levels"] - v["label_noise_variance"])
             * (1 - explained),
             "label noise": v["label_noise_variance"]}
    bottom = 0.0
    for i, (name, val) in enumerate(parts.items()):
        a1.bar(["pass@1 variance (train)"], [val], bottom=bottom, color=f"C{i}", label=name)
        bottom += val
    a1.legend(fontsize=8)
    a1.set_title("per-query pass@1: where its variance lies", fontsize=9)
    probe = result["probe"]
    keys = ["area_tokens", "area_tokens_true_other_tokens", "area_tokens_true_escalation_tokens",
            "area_tokens_all_true_costs"]
    x = np.arange(len(keys))
    for i, (name, r) in enumerate(probe.items()):
        a2.bar(x + 0.38 * i, [r[k]["mean"] for k in keys], 0.38, yerr=[r[k]["std"] for k in keys],
               label=f"{name} (AUC {r['auc']['mean']:.3f})", capsize=3)
    a2.set_xticks(x + 0.19, ["predicted costs", "true non-esc. tokens", "true esc. tokens", "all true costs"],
                  fontsize=8)
    a2.set_title("router tokens area on validation", fontsize=9)
    a2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    from benchmarks import add_label_table_args

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_label_table_args(ap)
    ap.add_argument("--seeds", type=int, default=3, help="probe training seeds")
    ap.add_argument("--out", default="runs/headroom")
    ap.add_argument("--json", action="store_true", help="print the JSON result")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    from ttc.labeling import LabelPlan

    areas = router_areas(args.train, args.val, args.recipe, args.seeds)
    result = {"train_table": args.train, "val_table": args.val, "seeds": args.seeds,
              "pass1_variance": pass1_variance(areas.pop("train"), sum(LabelPlan.of(areas.pop("grid")).pool_ns)),
              **areas}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "headroom.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "headroom.png")
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
