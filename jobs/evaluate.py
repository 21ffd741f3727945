"""Evaluate the adaptive router against static configs, the oracle and random choice.

    python -m jobs.evaluate --config cluster/jobs/evaluate_cpu.yaml

Writes summary.json, report.md, accuracy_vs_tokens.png and accuracy_vs_latency.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.config import check_lambda_ranges, load_config


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_labels: str
    artifact: str
    out_dir: str
    recipe: str = "cluster/recipes/cpu_world.yaml"
    lambda_tokens_range: tuple[float, float] = (1e-6, 1e-1)
    lambda_latency_range: tuple[float, float] = (1e-4, 10.0)
    sweep_points: int = Field(25, gt=1)
    per_query_costs: bool = False

    @model_validator(mode="after")
    def _ranges(self):
        check_lambda_ranges(self)
        return self


def run(cfg: EvaluateConfig) -> dict:
    from probe.artifact import load_artifact
    from probe.calibration import report
    from probe.evaluation import (Truth, accuracy_at, log_grid, normalized_area, random_point,
                                  static_points, sweep)
    from probe.features import get_featurizer
    from probe.training import embed_table
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    test = LabelTable.read(cfg.test_labels)
    art = load_artifact(cfg.artifact)
    if test.meta.get("grid_hash") != art.grid.hash:
        raise ValueError(f"test labels (grid hash {test.meta.get('grid_hash')}) and probe artifact "
                         f"(grid hash {art.grid.hash}) are for different grids")
    recipe = load_recipe(cfg.recipe)
    featurizer = get_featurizer(art.featurizer, recipe.policy.resolved_model(), recipe.format())
    qf = embed_table(featurizer, test)
    truth = Truth.from_table(test)
    acc_hat = art.predict_accuracy(qf)
    acc_raw = art.predict_accuracy(qf, calibrated=False)
    t_hat, l_hat = art.predict_costs(qf, per_query=cfg.per_query_costs)
    lt = log_grid(*cfg.lambda_tokens_range, cfg.sweep_points)
    ll = log_grid(*cfg.lambda_latency_range, cfg.sweep_points)
    static = static_points(truth, art.grid.ids)
    curves = {}
    for name, (a, t, l) in {
        "adaptive": (acc_hat, t_hat, l_hat),
        "oracle": (truth.acc, truth.tokens, truth.latency),
        "probe_with_oracle_costs": (acc_hat, truth.tokens, truth.latency),
        "oracle_accuracy_with_predicted_costs": (truth.acc, t_hat, l_hat),
    }.items():
        curves[name] = {"tokens": sweep(truth, a, t, l, lt, [0.0]), "latency": sweep(truth, a, t, l, [0.0], ll)}
    rand = random_point(truth)
    matched = []
    for p in static:
        adaptive_acc = accuracy_at(curves["adaptive"]["tokens"], "tokens", p["tokens"])
        matched.append({"strategy": p["strategy"], "static_accuracy": p["accuracy"], "tokens": p["tokens"],
                        "adaptive_accuracy": adaptive_acc, "gain": adaptive_acc - p["accuracy"]})
    wins = sum(1 for m in matched if m["gain"] >= 0)
    best_static = max(static, key=lambda p: p["accuracy"])
    cal = {"before": report(acc_raw.ravel(), truth.acc.ravel()), "after": report(acc_hat.ravel(), truth.acc.ravel())}
    summary = {
        "test_queries": len(test.query_ids), "strategies": len(art.grid.ids),
        "featurizer": art.featurizer, "per_query_costs": cfg.per_query_costs,
        "static": static, "random": rand, "best_static": best_static,
        "adaptive_at_static_tokens": matched, "static_configs_matched_or_beaten": wins,
        "normalized_area_tokens": normalized_area(static, curves["adaptive"]["tokens"], curves["oracle"]["tokens"], "tokens"),
        "normalized_area_latency": normalized_area(static, curves["adaptive"]["latency"], curves["oracle"]["latency"], "latency"),
        "probe_calibration_test": cal,
        "oracle_best": max(curves["oracle"]["tokens"], key=lambda p: p["accuracy"]),
        "curves": curves,
    }
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot_curves(summary, "tokens", out / "accuracy_vs_tokens.png")
    plot_curves(summary, "latency", out / "accuracy_vs_latency.png")
    (out / "report.md").write_text(markdown_report(summary))
    return summary


def plot_curves(summary: dict, cost: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from probe.evaluation import frontier

    fig, ax = plt.subplots(figsize=(8, 5))
    st = summary["static"]
    ax.scatter([p[cost] for p in st], [p["accuracy"] for p in st], c="grey", s=18, label="static configs", zorder=3)
    x, y = frontier(st, cost)
    ax.step(x, y, where="post", color="grey", lw=1, alpha=0.7, label="static frontier")
    styles = {"adaptive": ("C0", "-", "adaptive (probe + cost table)"), "oracle": ("C3", "-", "oracle"),
              "probe_with_oracle_costs": ("C2", "--", "probe + oracle costs"),
              "oracle_accuracy_with_predicted_costs": ("C1", ":", "oracle accuracy + predicted costs")}
    for name, (color, ls, label) in styles.items():
        x, y = frontier(summary["curves"][name][cost], cost)
        ax.step(x, y, where="post", color=color, ls=ls, label=label)
    r = summary["random"]
    ax.scatter([r[cost]], [r["accuracy"]], marker="x", color="k", label="random")
    ax.set_xscale("log")
    ax.set_xlabel("mean generated tokens per query" if cost == "tokens" else "mean seconds per query")
    ax.set_ylabel("accuracy (test split)")
    area = summary[f"normalized_area_{cost}"]["value"]
    ax.set_title(f"accuracy vs {cost} — normalized area {area:.2f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_report(s: dict) -> str:
    cal = s["probe_calibration_test"]
    lines = [
        "# latte evaluation report", "",
        f"Test queries: {s['test_queries']}, strategies: {s['strategies']}, featurizer: {s['featurizer']}.", "",
        "| | accuracy | tokens | latency s |", "|---|---|---|---|",
        f"| best static ({s['best_static']['strategy']}) | {s['best_static']['accuracy']:.3f} | "
        f"{s['best_static']['tokens']:.0f} | {s['best_static']['latency']:.2f} |",
        f"| oracle (best point) | {s['oracle_best']['accuracy']:.3f} | {s['oracle_best']['tokens']:.0f} | "
        f"{s['oracle_best']['latency']:.2f} |",
        f"| random | {s['random']['accuracy']:.3f} | {s['random']['tokens']:.0f} | {s['random']['latency']:.2f} |",
        "",
        f"Adaptive matches or beats {s['static_configs_matched_or_beaten']} of {len(s['static'])} static configs "
        "at their mean token cost.", "",
        f"Normalized area (static frontier = 0, oracle = 1): tokens {s['normalized_area_tokens']['value']:.3f}, "
        f"latency {s['normalized_area_latency']['value']:.3f}.", "",
        f"Probe on the test split: ECE {cal['before']['ece']:.3f} -> {cal['after']['ece']:.3f} after Platt, "
        f"Brier {cal['before']['brier']:.3f} -> {cal['after']['brier']:.3f}, AUC {cal['after']['auc']:.3f}.", "",
        "| static config | tokens | static acc | adaptive acc at same tokens | gain |", "|---|---|---|---|---|",
    ]
    for m in s["adaptive_at_static_tokens"]:
        lines.append(f"| {m['strategy']} | {m['tokens']:.0f} | {m['static_accuracy']:.3f} | "
                     f"{m['adaptive_accuracy']:.3f} | {m['gain']:+.3f} |")
    lines += ["", "![accuracy vs tokens](accuracy_vs_tokens.png)", "![accuracy vs latency](accuracy_vs_latency.png)", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    s = run(load_config(EvaluateConfig, args.config))
    print(json.dumps({k: s[k] for k in ("static_configs_matched_or_beaten", "normalized_area_tokens",
                                        "normalized_area_latency", "probe_calibration_test")}, indent=2))


if __name__ == "__main__":
    main()
