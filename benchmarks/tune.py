"""Offline lambda tuning: replay speed and how close Optuna gets to an exhaustive grid.

    python -m benchmarks.tune --json [--labels runs/demo/labels/labels_val.parquet]
                              [--artifact runs/demo/probe] [--trials 100]

Prints trials per second of offline replay (Optuna study on an in-memory journal,
SLO constraints on), and, under the same SLO, the accuracy of the point Optuna
chooses against the best point of a 40 x 40 log grid of (lambda_T, lambda_L) — and
how many replays each needed. The SLO defaults to mean tokens at the geometric middle
of the static configs' costs and p95 latency at their median, so it binds. Needs the
demo's outputs (`latte demo`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def run(labels: str, artifact: str, trials: int, seed: int) -> dict:
    from jobs import tune
    from probe.tuning import grid_search_best

    with tempfile.TemporaryDirectory() as tmp:
        probe_cfg = tune.TuneConfig(labels=labels, artifact=artifact, out_dir=tmp, slo={"mean_tokens": 1e12},
                                    slo_margin=0.0)
        replay, _ = tune.load_replay(probe_cfg)
        tok = replay.truth.tokens.mean(axis=0)
        lat = replay.truth.latency
        slo = {"mean_tokens": float(np.sqrt(tok.min() * tok.max())),
               "p95_latency_s": float(np.median(np.percentile(lat, 95, axis=0)))}
        cfg = probe_cfg.model_copy(update={"slo": tune.SLOTargets(**slo), "n_trials": trials, "seed": seed,
                                           "out_dir": str(Path(tmp) / "study")})
        t0 = time.perf_counter()
        summary = tune.run(cfg)
        tune_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        replay.outcome(0.0, 0.0)
        one_replay_s = time.perf_counter() - t0
        grid_t = np.logspace(np.log10(cfg.lambda_tokens_range[0]), np.log10(cfg.lambda_tokens_range[1]), 40)
        grid_l = np.logspace(np.log10(cfg.lambda_latency_range[0]), np.log10(cfg.lambda_latency_range[1]), 40)
        t0 = time.perf_counter()
        best = grid_search_best(replay, cfg.slo, grid_t, grid_l, margin=cfg.slo_margin)
        grid_s = time.perf_counter() - t0
    chosen = summary["chosen"]
    return {
        "queries": int(replay.truth.acc.shape[0]), "strategies": len(replay.ids), "slo": slo,
        "slo_margin": cfg.slo_margin,
        "optuna": {"trials": summary["trials"], "seconds": tune_s, "trials_per_s": summary["trials"] / tune_s,
                   "chosen": {k: chosen[k] for k in ("lambda_tokens", "lambda_latency", "accuracy", "mean_tokens",
                                                     "p95_latency_s")}},
        "replay_only": {"seconds_per_replay": one_replay_s, "replays_per_s": 1 / one_replay_s},
        "grid_search": {"points": len(grid_t) * len(grid_l), "seconds": grid_s,
                        "best": {k: best[k] for k in ("lambda_tokens", "lambda_latency", "accuracy", "mean_tokens",
                                                      "p95_latency_s")} if best else None},
        "accuracy_gap_vs_grid": (chosen["accuracy"] - best["accuracy"]) if best else None,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", default="runs/demo/labels/labels_val.parquet")
    ap.add_argument("--artifact", default="runs/demo/probe")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run(args.labels, args.artifact, args.trials, args.seed)
    print(json.dumps(out, indent=2 if args.json else None))


if __name__ == "__main__":
    main()
