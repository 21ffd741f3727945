"""Tune lambda_T / lambda_L against SLO targets with Optuna; write the router config.

    python -m jobs.tune --config cluster/jobs/tune_cpu.yaml [--n-trials N] [--more N]

Modes: `constrained` (max accuracy s.t. SLOs, offline replay of the validation label
table), `pareto` (accuracy vs tokens vs p95 latency, returns the Pareto set) and
`online` (each trial replays a query stream at a set arrival rate through the live
Serve app, so latency includes queueing). Studies persist (journal file by default,
any Optuna storage URL otherwise; `optuna-dashboard <storage>` reads them) and a
second run continues the same study up to `n_trials`.

Writes router.yaml (loadable by the Serve app, hot-reloadable: serve_app.deploy.reload_router),
trials.png and summary.json under out_dir.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.config import check_lambda_ranges, load_config
from probe.router_config import SLOTargets
from ttc.config_types import RecipeFile
from ttc.paths import CPU_RECIPE


class OnlineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field("http://127.0.0.1:8000", description="base URL of the running Serve app")
    queries: str | None = Field(None, description="query file to replay; None: generated CPU-world problems")
    n_queries: int = Field(24, gt=0, description="requests per trial")
    arrival_rate_per_s: float = Field(2.0, gt=0, description="Poisson arrival rate of the replay")
    timeout_s: float = Field(120.0, gt=0, description="client timeout per request (past it the request counts as "
                             "lost)")
    seed: int = Field(0, description="seed of the arrivals and generated problems")
    api_token: str | None = Field(None, description="bearer token for the app; `env:NAME` reads it from the "
                                  "environment")
    warm_start_from: str | None = Field(None, description="offline tuning summary.json whose chosen point is tried "
                                        "first")


class TuneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: str = Field(description="validation label table, replayed offline")
    artifact: str = Field(description="probe artifact folder")
    out_dir: str = Field(description="where the study, summary.json, router.yaml and plots go")
    slo: SLOTargets = Field(description="targets the tuned lambdas must meet (mean tokens, p95 latency)")
    mode: Literal["constrained", "pareto", "online"] = Field("constrained", description="constrained: best accuracy "
                                                             "within the SLO; pareto: the accuracy/cost front; "
                                                             "online: trials against the live Serve app")
    slo_margin: float = Field(0.05, ge=0, lt=1, description="tune against targets tightened by this fraction, so they "
                              "also hold on unseen queries")
    recipe: RecipeFile = CPU_RECIPE
    base_router_config: str = Field("cluster/serve/router_cpu.yaml", description="router config the tuned preset is "
                                    "written into")
    preset: str = Field("latte", description="the preset that receives the tuned lambdas (and becomes the default)")
    n_trials: int = Field(80, gt=0, description="Optuna trials")
    seed: int = Field(0, description="sampler seed")
    study_name: str = Field("latte-lambdas", description="Optuna study name (resumed when the storage has it)")
    storage: str | None = Field(None, description="Optuna storage URL or journal file path; None: "
                                "out_dir/study.journal")
    lambda_tokens_range: tuple[float, float] = Field((1e-7, 1e-1), description="search range of lambda_T (log scale), "
                                                     "lo < hi, both > 0")
    lambda_latency_range: tuple[float, float] = Field((1e-5, 10.0), description="search range of lambda_L (log "
                                                      "scale), lo < hi, both > 0")
    per_query_costs: bool = Field(True, description="per-query ridge costs (chosen on validation) instead of "
                                  "per-strategy means")
    online: OnlineConfig | None = Field(None, description="settings of the online mode (required by mode: online)")

    @model_validator(mode="after")
    def _check(self):
        check_lambda_ranges(self)
        from probe.tuning import check_slo

        check_slo(self.slo)
        if self.mode == "online" and self.online is None:
            raise ValueError("mode 'online' needs an `online:` section (url, arrival_rate_per_s, ...)")
        return self

    def storage_url(self) -> str:
        return self.storage or str(Path(self.out_dir) / "study.journal")


def open_storage(url: str):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if "://" in url:
        return optuna.storages.RDBStorage(url)
    Path(url).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(url))


def load_replay(cfg: TuneConfig):
    """Validate the inputs (before any trial) and predict once over the validation queries."""
    from probe.artifact import load_artifact
    from probe.evaluation import Truth
    from probe.features import get_featurizer
    from probe.training import embed_table
    from probe.tuning import Replay, refuse_impossible
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    table = LabelTable.read(cfg.labels)
    art = load_artifact(cfg.artifact)
    if table.meta.get("grid_hash") != art.grid.hash or table.strategy_ids != art.grid.ids:
        raise ValueError(f"label table {cfg.labels} (grid {table.meta.get('grid_name')!r}, hash "
                         f"{table.meta.get('grid_hash')}) does not match the probe artifact's grid "
                         f"{art.grid.name!r} (hash {art.grid.hash}); label and train on the same grid")
    truth = Truth.from_table(table)
    if np.isnan(truth.acc).any():
        raise ValueError(f"label table {cfg.labels} is incomplete: some (query, strategy) rows are missing")
    refuse_impossible(truth, cfg.slo, cfg.slo_margin)
    recipe = load_recipe(cfg.recipe)
    featurizer = get_featurizer(art.featurizer, recipe.policy.resolved_model(), recipe.format())
    qf = embed_table(featurizer, table)
    t_hat, l_hat = art.predict_costs(qf, per_query=cfg.per_query_costs)
    return Replay(art.grid.ids, art.predict_accuracy(qf), t_hat, l_hat, truth, art.allowed()), art


def open_study(cfg: TuneConfig, grid_hash: str):
    """Create or continue the study; refuse one made for another SLO, mode or grid."""
    import optuna

    storage = open_storage(cfg.storage_url())
    directions = ["maximize", "minimize", "minimize"] if cfg.mode == "pareto" else ["maximize"]
    sampler = optuna.samplers.TPESampler(seed=cfg.seed, multivariate=True)
    study = optuna.create_study(study_name=cfg.study_name, storage=storage, directions=directions,
                                sampler=sampler, load_if_exists=True)
    ident = {"slo": cfg.slo.model_dump(), "slo_margin": cfg.slo_margin, "mode": cfg.mode,
             "grid_hash": grid_hash, "labels": str(cfg.labels),
             "lambda_tokens_range": list(cfg.lambda_tokens_range),
             "lambda_latency_range": list(cfg.lambda_latency_range)}
    if cfg.mode == "online":
        ident["online"] = cfg.online.model_dump(exclude={"warm_start_from"})
    prev = study.user_attrs.get("identity")
    if prev is None:
        study.set_user_attr("identity", ident)
    elif prev != ident:
        diff = sorted(k for k in set(prev) | set(ident) if prev.get(k) != ident.get(k))
        raise ValueError(f"study {cfg.study_name!r} in {cfg.storage_url()} was run with other settings "
                         f"({', '.join(diff)}); use another study_name or storage")
    # Trials a killed run left RUNNING are not resumable; mark them failed so they are not counted.
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return study


def run(cfg: TuneConfig, more: int | None = None) -> dict:
    import optuna

    from probe.tuning import choose, make_objective, trial_rows

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    replay, art = load_replay(cfg)
    study = open_study(cfg, art.grid.hash)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    todo = more if more is not None else max(0, cfg.n_trials - len(complete))
    if cfg.mode == "online":
        from jobs.online_load import online_evaluator

        evaluate = online_evaluator(cfg.online)
        if not complete and cfg.online.warm_start_from:
            prev = json.loads(Path(cfg.online.warm_start_from).read_text())["chosen"]
            study.enqueue_trial({k: prev[k] for k in ("lambda_tokens", "lambda_latency")})
    else:
        evaluate = replay.outcome
        if not complete:
            # The two corners first: the most accurate and the cheapest selector.
            study.enqueue_trial({"lambda_tokens": cfg.lambda_tokens_range[0],
                                 "lambda_latency": cfg.lambda_latency_range[0]})
            study.enqueue_trial({"lambda_tokens": cfg.lambda_tokens_range[1],
                                 "lambda_latency": cfg.lambda_latency_range[1]})
    objective = make_objective(evaluate, cfg.slo, cfg.lambda_tokens_range, cfg.lambda_latency_range,
                               multi_objective=cfg.mode == "pareto", margin=cfg.slo_margin)
    if todo:
        study.optimize(objective, n_trials=todo, show_progress_bar=True)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(trials)
    summary = {"mode": cfg.mode, "study": cfg.study_name, "storage": cfg.storage_url(), "trials": len(trials),
               "new_trials": todo, "slo": cfg.slo.model_dump(), "slo_margin": cfg.slo_margin,
               "grid_hash": art.grid.hash}
    if cfg.mode == "pareto":
        front = {t.number for t in study.best_trials}
        summary["pareto"] = [r for r in rows if r["number"] in front]
    try:
        best = choose(trials, cfg.slo)
    except ValueError as exc:  # InfeasibleSLO, or no finished trial: keep the trials on record
        summary["infeasible"] = {"error": str(exc), "binding": getattr(exc, "binding", None),
                                 "closest": getattr(exc, "closest", None)}
        (out / "summary.json").write_text(json.dumps({**summary, "all_trials": rows}, indent=1))
        plot_trials(rows, None, cfg.slo, out / "trials.png")
        raise
    chosen = {"number": best.number, **best.params, **best.user_attrs}
    summary["chosen"] = chosen
    summary["router_config"] = str(write_router_config(cfg, chosen, out / "router.yaml"))
    (out / "summary.json").write_text(json.dumps({**summary, "all_trials": rows}, indent=1))
    plot_trials(rows, chosen, cfg.slo, out / "trials.png")
    return summary


def write_router_config(cfg: TuneConfig, chosen: dict, path: Path) -> Path:
    import yaml

    from probe.router_config import Preset, RouterConfig

    base = RouterConfig.load(cfg.base_router_config)
    presets = dict(base.presets)
    presets[cfg.preset] = Preset(lambda_tokens=chosen["lambda_tokens"], lambda_latency=chosen["lambda_latency"])
    artifact = str(Path(cfg.artifact).resolve()) if Path(cfg.artifact).exists() else cfg.artifact
    tuned = base.model_copy(update={"presets": presets, "default_preset": cfg.preset, "slo": cfg.slo,
                                    "artifact": artifact})
    RouterConfig(**tuned.model_dump())  # what the Serve app will load must validate
    header = (f"# Written by jobs.tune ({cfg.mode}, study {cfg.study_name!r}, trial {chosen['number']}): "
              f"replayed accuracy {chosen['accuracy']:.3f}, mean tokens {chosen['mean_tokens']:.0f}, "
              f"p95 latency {chosen['p95_latency_s']:.2f} s\n")
    path.write_text(header + yaml.safe_dump(tuned.model_dump(), sort_keys=False))
    return path


def plot_trials(rows: list[dict], chosen: dict | None, slo: SLOTargets, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, metric, target, label in ((axes[0], "mean_tokens", slo.mean_tokens, "mean generated tokens per query"),
                                      (axes[1], "p95_latency_s", slo.p95_latency_s, "p95 latency per query (s)")):
        for ok, color, name in ((True, "C2", "feasible"), (False, "C3", "infeasible")):
            pts = [r for r in rows if r["feasible"] == ok]
            ax.scatter([r[metric] for r in pts], [r["accuracy"] for r in pts], s=16, c=color, alpha=0.7, label=name)
        if target is not None:
            ax.axvline(target, color="k", ls="--", lw=1, label="SLO target")
        if chosen is not None:
            ax.scatter([chosen[metric]], [chosen["accuracy"]], marker="*", s=220, c="gold", edgecolors="k",
                       zorder=5, label="chosen")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("replayed accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("latte lambda tuning: trials")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--n-trials", type=int, help="total trials the study should have (overrides the config)")
    ap.add_argument("--more", type=int, help="run this many trials more, whatever the study has")
    args = ap.parse_args(argv)
    cfg = load_config(TuneConfig, args.config)
    if args.n_trials:
        cfg = cfg.model_copy(update={"n_trials": args.n_trials})
    s = run(cfg, more=args.more)
    print(json.dumps({k: s[k] for k in ("mode", "trials", "chosen", "router_config") if k in s}, indent=2))


if __name__ == "__main__":
    main()
