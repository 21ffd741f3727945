"""`latte demo`: the whole method on the embedded CPU world, on a local Ray cluster.

Generates train / validation / test problems, labels them all in one Ray Data job
(resumable: rerun with the same --out to continue), trains the probe, evaluates
the router and prints the headline numbers and the report folder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SPLIT_SEEDS = {"train": 101, "val": 202, "test": 303}  # disjoint from jobs.world and benchmark seeds


def split_table(table_path: Path, out_dir: Path) -> dict[str, Path]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(table_path)
    paths = {}
    for split in SPLIT_SEEDS:
        part = table.filter(pc.starts_with(table["query_id"], f"{split}-"))
        paths[split] = out_dir / f"labels_{split}.parquet"
        pq.write_table(part, paths[split])
    return paths


def run(out: Path, per_level: dict[str, int], replicas: int, resamples: int, seed: int,
        recipe: str, strategies: list[str] | None = None) -> dict:
    from jobs import evaluate, label, train_probe
    from ttc.arithmetic import generate_problems
    from ttc.queries import write_queries

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    queries = []
    for split, s in SPLIT_SEEDS.items():
        queries += [p.to_query() for p in generate_problems(per_level[split], seed=s + seed, prefix=split)]
    qpath = write_queries(queries, out / "queries.parquet")
    print(f"[demo] {len(queries)} queries ({per_level}) -> {qpath}", flush=True)
    lab = label.run(label.LabelConfig(queries=str(qpath), out_dir=str(out / "labels"), recipe=recipe,
                                      resamples=resamples, seed=seed, replicas=replicas,
                                      strategies=strategies))
    t_label = time.perf_counter() - t0
    paths = split_table(Path(lab["table"]), out / "labels")
    probe = train_probe.run(train_probe.TrainProbeConfig(
        train_labels=str(paths["train"]), val_labels=str(paths["val"]), out_dir=str(out / "probe"),
        recipe=recipe, seed=seed))
    ev = evaluate.run(evaluate.EvaluateConfig(test_labels=str(paths["test"]), artifact=str(out / "probe"),
                                              out_dir=str(out / "report"), recipe=recipe,
                                              train_labels=str(paths["train"])))
    headline = {
        "report": str(out / "report"),
        "queries": {k: 8 * v for k, v in per_level.items()},
        "label_seconds": round(t_label, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "token_saving_ratio_of_shared_pool": lab.get("token_saving_ratio"),
        "best_static": ev["best_static"],
        "static_configs_matched_or_beaten": f"{ev['static_configs_matched_or_beaten']}/{len(ev['static'])}",
        "normalized_area_tokens": ev["normalized_area_tokens"]["value"],
        "normalized_area_latency": ev["normalized_area_latency"]["value"],
        "probe_ece_test": {"before": ev["probe_calibration_test"]["before"]["ece"],
                           "after": ev["probe_calibration_test"]["after"]["ece"]},
        "probe_auc_test": ev["probe_calibration_test"]["after"]["auc"],
        "cost_errors_validation": probe["cost_errors_validation"],
    }
    (out / "headline.json").write_text(json.dumps(headline, indent=2))
    return headline


def main(argv=None):
    ap = argparse.ArgumentParser(prog="latte demo", description=__doc__)
    ap.add_argument("--out", default="runs/demo", help="output folder (rerun with the same folder to resume)")
    ap.add_argument("--train-per-level", type=int, default=20)
    ap.add_argument("--val-per-level", type=int, default=6)
    ap.add_argument("--test-per-level", type=int, default=12)
    ap.add_argument("--replicas", type=int, default=2, help="labeling actors (each holds both engines)")
    ap.add_argument("--resamples", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipe", default="cluster/recipes/cpu_world.yaml")
    ap.add_argument("--strategy", action="append", help="label only these strategy ids (repeatable)")
    args = ap.parse_args(argv)
    for name in ("train_per_level", "val_per_level", "test_per_level", "replicas", "resamples"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    headline = run(Path(args.out), {"train": args.train_per_level, "val": args.val_per_level,
                                    "test": args.test_per_level},
                   args.replicas, args.resamples, args.seed, args.recipe, args.strategy)
    print(json.dumps(headline, indent=2))
    print(f"\nreport: {headline['report']}/report.md")


if __name__ == "__main__":
    main()
