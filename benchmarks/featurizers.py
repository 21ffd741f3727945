"""Which query featurizer should the probe use? Compared on the VALIDATION table only.

    python -m benchmarks.featurizers --json [--train runs/demo/labels/labels_train.parquet]
                                            [--val runs/demo/labels/labels_val.parquet]

For every featurizer the probe is fitted exactly as `jobs.train_probe` fits it
(probe.training.fit_artifact, the job's default hyperparameters), except that its
early-stopping and Platt rows come from a held-out quarter of the TRAINING queries,
so the validation table is never seen before it is scored. On validation it reports:
probe AUC and ECE after Platt, and the router's normalized area (tokens and latency;
adaptive = calibrated probe + per-query ridge costs (the router's default), against the static frontier and
the oracle, as jobs.evaluate computes them on test). Probe seeds are repeated and
reported as mean and std, since one 48-query split is noisy.

Featurization cost is measured per query with the models loaded: batched (the whole
validation set in one call, best of repeats) and one query per call. `length_only`
(log question length, which every featurizer includes) is a reference row, not a
candidate: a featurizer has to beat it to see more than the length.

The suggested default is the candidate with the best mean validation area
(mean of tokens and latency); the test table is never read. Writes featurizers.json
and featurizers.png into --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


CANDIDATES = ("minilm", "policy_hidden", "policy_prefill")
REFERENCE = "length_only"


class LengthOnly:
    """Reference row: only log(1 + question length), the feature every featurizer appends."""
    name = REFERENCE
    dim = 1

    def embed(self, questions):
        from probe.features import length_feature

        return length_feature(list(questions))


class Cached:
    """Precomputed features, so each probe seed does not re-run the featurizer."""

    def __init__(self, name: str, feats: dict[str, np.ndarray]):
        self.name, self.feats = name, feats

    def embed(self, questions):
        return np.vstack([self.feats[q] for q in questions])


def subset(table, query_ids: list[str]):
    import pyarrow as pa
    import pyarrow.compute as pc

    from ttc.label_table import LabelTable

    return LabelTable(table.table.filter(pc.is_in(table.table["query_id"], value_set=pa.array(query_ids))),
                      table.meta)


def split_train(table, holdout_every: int = 4):
    """Every k-th training query is held out for early stopping + Platt (spread over levels)."""
    qids = table.query_ids
    hold = [q for i, q in enumerate(qids) if i % holdout_every == holdout_every - 1]
    fit = [q for q in qids if q not in set(hold)]
    return subset(table, fit), subset(table, hold)


def time_featurizer(featurizer, questions: list[str], repeats: int = 3, singles: int = 16) -> dict:
    featurizer.embed(questions[:2])  # load the model and warm up outside the timing
    batched = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        featurizer.embed(questions)
        batched.append((time.perf_counter() - t0) * 1e3 / len(questions))
    one = []
    for q in questions[:singles]:
        t0 = time.perf_counter()
        featurizer.embed([q])
        one.append((time.perf_counter() - t0) * 1e3)
    return {"batched_ms_per_query_best": float(min(batched)),
            "batched_ms_per_query_median": float(np.median(batched)),
            "single_ms_per_query_median": float(np.median(one)), "batch_size": len(questions)}


def score_on_validation(art, qf_val: np.ndarray, val, sweep_points: int = 25) -> dict:
    from probe.calibration import report
    from probe.evaluation import Truth, log_grid, normalized_area, static_points, sweep

    truth = Truth.from_table(val)
    acc_hat = art.predict_accuracy(qf_val)
    t_hat, l_hat = art.predict_costs(qf_val)
    lt, ll = log_grid(1e-6, 1e-1, sweep_points), log_grid(1e-4, 10.0, sweep_points)
    static = static_points(truth, art.grid.ids)
    areas = {}
    for cost, (lts, lls) in {"tokens": (lt, [0.0]), "latency": ([0.0], ll)}.items():
        adaptive = sweep(truth, acc_hat, t_hat, l_hat, lts, lls)
        oracle = sweep(truth, truth.acc, truth.tokens, truth.latency, lts, lls)
        areas[cost] = normalized_area(static, adaptive, oracle, cost)["value"]
    after = report(acc_hat.ravel(), truth.acc.ravel())
    before = report(art.predict_accuracy(qf_val, calibrated=False).ravel(), truth.acc.ravel())
    return {"auc": after["auc"], "ece_after_platt": after["ece"], "ece_before_platt": before["ece"],
            "bce_after_platt": after["bce"], "area_tokens": areas["tokens"], "area_latency": areas["latency"],
            "epochs": len(art.probe.history)}


def compare(train_path: str, val_path: str, recipe_path: str, featurizers: list[str], seeds: int,
            holdout_every: int = 4) -> dict:
    from jobs.train_probe import TrainProbeConfig
    from probe.features import get_featurizer
    from probe.mlp import TrainConfig
    from probe.training import fit_artifact
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    recipe = load_recipe(recipe_path)
    train, val = LabelTable.read(train_path), LabelTable.read(val_path)
    if train.meta.get("grid_hash") != val.meta.get("grid_hash"):
        raise ValueError("train and validation label tables were made for different grids")
    if train.strategy_ids != val.strategy_ids:
        raise ValueError("train and validation label tables list different strategies")
    grid = recipe.strategy_grid()
    if train.strategy_ids != grid.ids:
        grid = grid.subset(train.strategy_ids)
    fit_part, hold_part = split_train(train, holdout_every)
    job = TrainProbeConfig(train_labels=train_path, val_labels=val_path, out_dir="-")  # the job's defaults
    tq, vq = train.questions(), val.questions()
    val_questions = [vq[q] for q in val.query_ids]
    all_questions = list(dict.fromkeys([tq[q] for q in train.query_ids] + val_questions))
    rows = {}
    for name in featurizers:
        f = LengthOnly() if name == REFERENCE else get_featurizer(name, recipe.policy.resolved_model(),
                                                                   recipe.format())
        timing = time_featurizer(f, val_questions)
        feats = f.embed(all_questions)
        cached = Cached(name, dict(zip(all_questions, feats)))
        qf_val = cached.embed(val_questions)
        runs = []
        for seed in range(seeds):
            art = fit_artifact(grid, cached, fit_part, hold_part,
                               TrainConfig(lr=job.lr, batch_size=job.batch_size, max_epochs=job.max_epochs,
                                           patience=job.patience, seed=seed),
                               cfg_components=job.pca_components)
            runs.append(score_on_validation(art, qf_val, val))
        summary = {k: {"mean": float(np.nanmean([r[k] for r in runs])), "std": float(np.nanstd([r[k] for r in runs]))}
                   for k in runs[0]}
        rows[name] = {"dim": int(feats.shape[1]), "timing": timing, "validation": summary, "per_seed": runs,
                      "reference": name == REFERENCE}
        print(f"[featurizers] {name}: AUC {summary['auc']['mean']:.3f}, ECE {summary['ece_after_platt']['mean']:.3f}, "
              f"area tokens {summary['area_tokens']['mean']:.3f}, latency {summary['area_latency']['mean']:.3f}, "
              f"{timing['batched_ms_per_query_best']:.2f} ms/query batched", flush=True)
    cands = [n for n in rows if not rows[n]["reference"]]

    def score(n):
        v = rows[n]["validation"]
        return (v["area_tokens"]["mean"] + v["area_latency"]["mean"]) / 2

    return {
        "train_table": train_path, "val_table": val_path,
        "sizes": {"train_queries_fit": len(fit_part.query_ids), "train_queries_stop_and_platt": len(hold_part.query_ids),
                  "validation_queries": len(val.query_ids), "strategies": len(grid.ids)},
        "seeds": seeds, "featurizers": rows,
        "choice_rule": "highest mean validation normalized area, (tokens + latency) / 2, over probe seeds",
        "suggested_default": max(cands, key=score) if cands else None,
        "timing_note": "featurization timed on this machine as it was; re-measure on a quiet machine",
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["featurizers"])
    panels = [("auc", "probe AUC (val)"), ("ece_after_platt", "ECE after Platt (val)"),
              ("area_tokens", "normalized area, tokens (val)"), ("area_latency", "normalized area, latency (val)")]
    fig, axes = plt.subplots(1, 5, figsize=(18, 3.8))
    colors = ["grey" if result["featurizers"][n]["reference"] else f"C{i}" for i, n in enumerate(names)]
    for ax, (key, title) in zip(axes, panels):
        m = [result["featurizers"][n]["validation"][key]["mean"] for n in names]
        s = [result["featurizers"][n]["validation"][key]["std"] for n in names]
        ax.bar(names, m, yerr=s, color=colors, capsize=3)
        ax.set_title(title, fontsize=9)
        ax.axhline(0, color="k", lw=0.5)
    ms = [result["featurizers"][n]["timing"]["batched_ms_per_query_best"] for n in names]
    axes[4].bar(names, ms, color=colors)
    axes[4].set_title("featurization ms/query (batched)", fontsize=9)
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    z = result["sizes"]
    fig.suptitle(f"featurizers on validation ({z['validation_queries']} queries; probe fitted on "
                 f"{z['train_queries_fit']} + {z['train_queries_stop_and_platt']} training queries; "
                 f"{result['seeds']} seeds, mean ± std) — default: {result['suggested_default']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    from benchmarks import add_label_table_args

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_label_table_args(ap)
    ap.add_argument("--featurizers", default=",".join(CANDIDATES + (REFERENCE,)))
    ap.add_argument("--seeds", type=int, default=5, help="probe training seeds per featurizer")
    ap.add_argument("--out", default="runs/featurizers")
    ap.add_argument("--json", action="store_true", help="print the JSON result")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be >= 1")
    result = compare(args.train, args.val, args.recipe, [n.strip() for n in args.featurizers.split(",") if n.strip()],
                     args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "featurizers.json").write_text(json.dumps(result, indent=2))
    plot(result, out / "featurizers.png")
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "featurizers"} |
                         {"featurizers": {n: {"dim": r["dim"], "timing": r["timing"], "validation": r["validation"]}
                                          for n, r in result["featurizers"].items()}}, indent=2))


if __name__ == "__main__":
    main()
