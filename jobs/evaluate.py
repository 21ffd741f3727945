"""Evaluate the adaptive router against static configs, the oracle and random choice.

    python -m jobs.evaluate --config cluster/jobs/evaluate_cpu.yaml

Writes summary.json, report.md, accuracy_vs_tokens.png, accuracy_vs_latency.png and
chosen_strategy_shares.png. With train_labels, also the per-difficulty lookup router.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.config import check_lambda_ranges, load_config
from ttc.config_types import RecipeFile
from ttc.paths import CPU_RECIPE


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_labels: str = Field(description="label table (Parquet folder/file) the report is scored on")
    artifact: str = Field(description="probe artifact folder (jobs.train_probe's out_dir)")
    out_dir: str = Field(description="where summary.json, report.md and the PNG plots go")
    recipe: RecipeFile = CPU_RECIPE
    train_labels: str | None = Field(None, description="training label table; fits the per-difficulty lookup router "
                                     "(no learning); None: no lookup baseline")
    query_set: str = Field("test split", description="what test_labels holds, named in the report (e.g. a shift)")
    lambda_tokens_range: tuple[float, float] = Field((1e-6, 1e-1), description="log-spaced sweep of lambda_T (per "
                                                     "token), lo < hi, both > 0")
    lambda_latency_range: tuple[float, float] = Field((1e-4, 10.0), description="log-spaced sweep of lambda_L (per "
                                                      "second), lo < hi, both > 0")
    sweep_points: int = Field(25, gt=1, description="lambdas per sweep")
    per_query_costs: bool = Field(True, description="per-query ridge costs (chosen on validation) instead of "
                                  "per-strategy means")
    # Lambdas of the chosen-strategy-shares plot: the CPU router's `latte` preset by default
    # (cluster/serve/router_cpu.yaml), fixed in advance, not picked on the test split.
    shares_lambda_tokens: float = Field(1e-4, ge=0, description="lambda_T of the chosen-strategy-shares plot (the CPU "
                                        "router's `latte` preset, fixed in advance)")
    shares_lambda_latency: float = Field(0.01, ge=0, description="lambda_L of the chosen-strategy-shares plot")

    @model_validator(mode="after")
    def _ranges(self):
        check_lambda_ranges(self)
        return self


def run(cfg: EvaluateConfig) -> dict:
    from probe.artifact import load_artifact
    from probe.calibration import report
    from probe.evaluation import LevelLookup, Truth, evaluate, log_grid, strategy_methods
    from probe.features import get_featurizer
    from probe.training import embed_table
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    test = LabelTable.read(cfg.test_labels)
    art = load_artifact(cfg.artifact)
    train = LabelTable.read(cfg.train_labels) if cfg.train_labels else None
    for name, table in (("test", test), ("train", train)):
        if table is not None and table.meta.get("grid_hash") != art.grid.hash:
            raise ValueError(f"{name} labels (grid hash {table.meta.get('grid_hash')}) and probe artifact "
                             f"(grid hash {art.grid.hash}) are for different grids")
    recipe = load_recipe(cfg.recipe)
    featurizer = get_featurizer(art.featurizer, recipe.policy.resolved_model(), recipe.format())
    qf = embed_table(featurizer, test)
    truth = Truth.from_table(test)
    acc_hat = art.predict_accuracy(qf)
    acc_raw = art.predict_accuracy(qf, calibrated=False)
    t_hat, l_hat = art.predict_costs(qf, per_query=cfg.per_query_costs)
    lookup = None
    if train is not None:
        diffs = train.difficulties()
        lookup = LevelLookup.fit([diffs[q] for q in train.query_ids], train.matrix("soft_label"),
                                 train.matrix("mean_tokens"), train.matrix("mean_latency_s"))
    test_diffs = test.difficulties()
    summary = evaluate(
        truth, art.grid.ids, strategy_methods(test), [test_diffs[q] for q in test.query_ids], (acc_hat, t_hat, l_hat),
        log_grid(*cfg.lambda_tokens_range, cfg.sweep_points), log_grid(*cfg.lambda_latency_range, cfg.sweep_points),
        lookup=lookup, shares_lambdas=(cfg.shares_lambda_tokens, cfg.shares_lambda_latency),
        extra_policies={"probe_with_oracle_costs": (acc_hat, truth.tokens, truth.latency),
                        "oracle_accuracy_with_predicted_costs": (truth.acc, t_hat, l_hat)},
        allowed=art.allowed())
    cal = {"before": report(acc_raw.ravel(), truth.acc.ravel()), "after": report(acc_hat.ravel(), truth.acc.ravel())}
    summary = {"query_set": cfg.query_set, "test_queries": len(test.query_ids), "strategies": len(art.grid.ids),
               "featurizer": art.featurizer, "per_query_costs": cfg.per_query_costs,
               "excluded_strategies": list(art.excluded),
               "probe_calibration_test": cal, **summary}
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot_curves(summary, "tokens", out / "accuracy_vs_tokens.png")
    plot_curves(summary, "latency", out / "accuracy_vs_latency.png")
    plot_shares(summary, out / "chosen_strategy_shares.png")
    (out / "report.md").write_text(markdown_report(summary))
    return summary


CURVE_STYLES = {  # name -> (color, line style, legend)
    "adaptive": ("C0", "-", "adaptive (probe + cost table)"),
    "lookup": ("C4", "-", "lookup router (per-level train means)"),
    "oracle": ("C3", "-", "oracle (sees its test labels)"),
    "split_oracle": ("C3", "--", "split-label oracle (choose on half A, score on half B)"),
    "probe_with_oracle_costs": ("C2", ":", "probe + oracle costs"),
    "oracle_accuracy_with_predicted_costs": ("C1", ":", "oracle accuracy + predicted costs"),
}


def plot_curves(summary: dict, cost: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from probe.evaluation import frontier, is_paper_method

    fig, ax = plt.subplots(figsize=(9, 5.5))
    st = summary["static"]
    paper = [p for p in st if is_paper_method(p["method"])]
    other = [p for p in st if not is_paper_method(p["method"])]
    ax.scatter([p[cost] for p in paper], [p["accuracy"] for p in paper], c="grey", s=18, zorder=3,
               label="static: paper's four methods")
    if other:
        ax.scatter([p[cost] for p in other], [p["accuracy"] for p in other], c="k", marker="^", s=22, zorder=3,
                   label="static: other configs (escalation)")
    for pts, ls, label in ((paper, "-", "static frontier (paper's methods)"), (st, "--", "static frontier (all configs)")):
        if pts:
            x, y = frontier(pts, cost)
            ax.step(x, y, where="post", color="grey", ls=ls, lw=1.2, alpha=0.8, label=label)
    for name, (color, ls, label) in CURVE_STYLES.items():
        if name in summary["curves"]:
            x, y = frontier(summary["curves"][name][cost], cost)
            ax.step(x, y, where="post", color=color, ls=ls, label=label)
    r = summary["random"]
    ax.scatter([r[cost]], [r["accuracy"]], marker="x", color="k", label="random")
    ax.set_xscale("log")
    ax.set_xlabel("mean generated tokens per query" if cost == "tokens" else "mean seconds per query")
    ax.set_ylabel(f"accuracy ({summary['query_set']})")
    a_all, a_paper = summary[f"normalized_area_{cost}"]["value"], summary[f"normalized_area_{cost}_paper"]["value"]
    ax.set_title(f"accuracy vs {cost} — adaptive's normalized area {a_paper:.2f} (paper frontier), "
                 f"{a_all:.2f} (all configs)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_shares(summary: dict, path: Path) -> None:
    """Stacked bars: which strategies a policy picks at each difficulty level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sh = summary["chosen_shares"]
    names = [n for n in ("adaptive", "lookup", "oracle") if n in sh]
    chosen = sorted({s for n in names for lv in sh[n]["by_difficulty"].values() for s in lv},
                    key=[p["strategy"] for p in summary["static"]].index)
    colors = {s: plt.get_cmap("tab20")(i % 20) for i, s in enumerate(chosen)}
    width = 4.2 * len(names) + 3.4  # 3.4 in on the right for the legend of strategy ids
    fig, axes = plt.subplots(1, len(names), figsize=(width, 4.5), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        by = sh[name]["by_difficulty"]
        levels = list(by)
        bottom = [0.0] * len(levels)
        for s in chosen:
            h = [by[lv].get(s, 0.0) for lv in levels]
            ax.bar(levels, h, bottom=bottom, color=colors[s], label=s)
            bottom = [b + x for b, x in zip(bottom, h)]
        o = sh[name]["outcome"]
        ax.set_title(f"{name}: acc {o['accuracy']:.3f}, {o['tokens']:.0f} tok", fontsize=9)
        ax.set_xlabel("difficulty (steps)")
    axes[0][0].set_ylabel("share of queries")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, fontsize=7, loc="center right")
    fig.suptitle(f"chosen strategy by difficulty at lambda_T={sh['lambda_tokens']:g}, "
                 f"lambda_L={sh['lambda_latency']:g} ({summary['query_set']})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1 - 3.4 / width, 0.95))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _f(x, fmt=".3f") -> str:
    return "n/a" if x is None or x != x else format(x, fmt)


def markdown_report(s: dict) -> str:
    cal = s["probe_calibration_test"]
    row = lambda name, p: (f"| {name} | {p['accuracy']:.3f} | {p['tokens']:.0f} | {p['latency']:.2f} |")  # noqa: E731
    bs, bsp = s["best_static"], s["best_static_paper"]
    lines = [
        "# latte evaluation report", "",
        f"Query set: **{s['query_set']}**. Queries: {s['test_queries']}, strategies: {s['strategies']}, "
        f"featurizer: {s['featurizer']}. Every policy is scored with the true soft label and costs of the "
        "(query, strategy) it picks.", "",
        "| | accuracy | tokens | latency s |", "|---|---|---|---|",
        row(f"best static, all configs ({bs['strategy']})", bs),
    ]
    if bsp:
        lines.append(row(f"best static, paper's four methods ({bsp['strategy']})", bsp))
    lines.append(row("oracle (best point; sees its test labels)", s["oracle_best"]))
    sp = s["split_oracle"]
    if sp["available"]:
        lines.append(row("split-label oracle (best point)", sp["best_split_oracle"]))
    lines += [row("random", s["random"]), ""]
    lines += [f"Adaptive matches or beats {s['static_configs_matched_or_beaten']} of {len(s['static'])} static "
              "configs at their mean token cost.", "",
              "## Normalized area", "",
              "Static frontier = 0, oracle = 1, on a log cost axis over the shared cost range. "
              "Paper frontier: the paper's four methods only; all: every static config of the grid.", "",
              "| policy | tokens (paper) | latency (paper) | tokens (all) | latency (all) |", "|---|---|---|---|---|"]
    for name in s["areas"]["all"]:
        a = s["areas"]
        lines.append(f"| {name} | {_f(a['paper'][name]['tokens']['value'])} | {_f(a['paper'][name]['latency']['value'])} "
                     f"| {_f(a['all'][name]['tokens']['value'])} | {_f(a['all'][name]['latency']['value'])} |")
    lml = s["learned_minus_lookup_area"]
    lines.append("")
    if lml:
        lines.append(f"Learned minus lookup router area: tokens {_f(lml['paper']['tokens'], '+.3f')} (paper), "
                     f"{_f(lml['all']['tokens'], '+.3f')} (all); latency {_f(lml['paper']['latency'], '+.3f')} (paper), "
                     f"{_f(lml['all']['latency'], '+.3f')} (all).")
    else:
        lines.append(f"Lookup router: unavailable ({s['lookup_router']['reason']}).")
    lines += ["", "The lookup router has no learning: per difficulty level, the training split's mean soft label, "
              "tokens and latency of each strategy, swept over the same lambdas as the adaptive router.", "",
              "## Split-label oracle", ""]
    if sp["available"]:
        lines += [f"Chooses with the soft label of one half of each cell's samples and is scored with the other half "
                  f"(both ways, averaged). Best point {sp['best_split_oracle']['accuracy']:.3f} against the full "
                  f"oracle's {sp['best_oracle']['accuracy']:.3f} (full minus split: "
                  f"{sp['optimism_full_minus_split']:+.3f}); scored on the half it chose with: "
                  f"{sp['best_split_oracle_in_sample']['accuracy']:.3f} (optimism from label noise at half size: "
                  f"{sp['optimism_in_sample_minus_split']:+.3f})."]
        if sp["strategies_without_split_labels"]:
            lines.append(f"Strategies left out (no half labels): {', '.join(sp['strategies_without_split_labels'])}.")
    else:
        lines.append(f"Unavailable: {sp['reason']}.")
    lines += ["", "## Tokens to match the best static accuracy", "",
              "Least mean tokens at which a policy's curve reaches the best static accuracy, as a ratio to that "
              "config's tokens (< 1: cheaper).", "",
              "| policy | vs paper's best | ratio | vs all configs' best | ratio |", "|---|---|---|---|---|"]
    tm = s["tokens_to_match"]
    for name in tm["all"]:
        cells = []
        for f in ("paper", "all"):
            m = tm[f][name]
            cells.append(f"{m.get('target_strategy', 'n/a')} ({_f(m.get('target_accuracy'))}, "
                         f"{_f(m.get('target_tokens'), '.0f')} tok)")
            cells.append(_f(m["ratio"], ".2f") if m["reached"] else "never")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Accuracy under latency budgets", "",
              "Budget = a static config's mean latency, against the best static config whose mean latency fits. "
              "Per query: the router keeps, for each query, only strategies whose predicted latency fits "
              "(lambdas 0; a served request's SLO). Mean: the least latency weight whose predicted mean "
              "latency over the split fits (a batch's budget, the same kind of mean as the static config's). "
              "`over` marks a policy whose true mean latency exceeded the budget.", "",
              f"Adaptive >= best static within budget at {s['latency_budgets_adaptive_at_least_best_static']} of "
              f"{len(s['latency_budgets'])} budgets per query, at "
              f"{s['latency_mean_budgets_adaptive_at_least_best_static']} as a mean (true mean within budget).", "",
              "| budget s (of) | best static within | acc | adaptive per query | gain | adaptive mean | gain "
              "| lookup per query | lookup mean |", "|---|---|---|---|---|---|---|---|---|"]

    def acc_cell(o):
        return f"{o['accuracy']:.3f}{'' if o['within_budget'] else ' over'}"

    for b in s["latency_budgets"]:
        ad, lk = b["adaptive"], b.get("lookup")
        lines.append(f"| {b['budget']:.3f} ({b['budget_of']}) | {b['best_static_within']} | {b['best_static_accuracy']:.3f} "
                     f"| {acc_cell(ad)} | {ad['gain']:+.3f} | {acc_cell(ad['mean_budget'])} "
                     f"| {ad['mean_budget']['gain']:+.3f} | "
                     + (f"{acc_cell(lk)} | {acc_cell(lk['mean_budget'])}" if lk else "n/a | n/a") + " |")
    lines += ["", "## Probe", "",
              f"ECE {cal['before']['ece']:.3f} -> {cal['after']['ece']:.3f} after Platt, "
              f"Brier {cal['before']['brier']:.3f} -> {cal['after']['brier']:.3f}, AUC {cal['after']['auc']:.3f}.", "",
              "## Adaptive at each static config's tokens", "",
              "| static config | tokens | static acc | adaptive acc at same tokens | gain | lookup acc |",
              "|---|---|---|---|---|---|"]
    for m in s["adaptive_at_static_tokens"]:
        lines.append(f"| {m['strategy']} | {m['tokens']:.0f} | {m['static_accuracy']:.3f} | "
                     f"{m['adaptive_accuracy']:.3f} | {m['gain']:+.3f} | {_f(m.get('lookup_accuracy'))} |")
    sh = s["chosen_shares"]
    lines += ["", "## Chosen strategies by difficulty", "",
              f"At lambda_T = {sh['lambda_tokens']:g}, lambda_L = {sh['lambda_latency']:g} (fixed in the config, "
              "the CPU router's `latte` preset by default; not picked on this split): adaptive "
              f"{sh['adaptive']['outcome']['accuracy']:.3f} at {sh['adaptive']['outcome']['tokens']:.0f} tokens."
              + (f" Lookup {sh['lookup']['outcome']['accuracy']:.3f} at {sh['lookup']['outcome']['tokens']:.0f}."
                 if "lookup" in sh else ""), "",
              "![accuracy vs tokens](accuracy_vs_tokens.png)", "![accuracy vs latency](accuracy_vs_latency.png)",
              "![chosen strategy shares](chosen_strategy_shares.png)", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    s = run(load_config(EvaluateConfig, args.config))
    print(json.dumps({k: s[k] for k in ("static_configs_matched_or_beaten", "normalized_area_tokens",
                                        "normalized_area_latency", "normalized_area_tokens_paper",
                                        "normalized_area_latency_paper", "learned_minus_lookup_area",
                                        "probe_calibration_test")}, indent=2))


if __name__ == "__main__":
    main()
