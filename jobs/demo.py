"""`latte demo`: the whole method on the embedded CPU world, on a local Ray cluster.

Generates train / validation / test problems and a shifted query set (another
operator mix, jobs/shift.py), labels them all in one Ray Data job (batched; resumable:
rerun with the same --out to continue), trains the probe on train (early stopping and
calibration on validation), evaluates the router on test and on the shifted set, and
prints the headline numbers and the report folders.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ttc.paths import CPU_RECIPE

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
        recipe: str, strategies: list[str] | None = None, shift_per_level: int = 0,
        featurizer: str | None = None) -> dict:
    from jobs import evaluate, label, train_probe
    from jobs.shift import evaluate_shift, shift_table, shifted_queries
    from ttc.arithmetic import generate_problems
    from ttc.queries import write_queries

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    queries = []
    for split, s in SPLIT_SEEDS.items():
        queries += [p.to_query() for p in generate_problems(per_level[split], seed=s + seed, prefix=split)]
    if shift_per_level:
        queries += shifted_queries(shift_per_level, seed=seed)
    qpath = write_queries(queries, out / "queries.parquet")
    print(f"[demo] {len(queries)} queries ({per_level}, shifted {shift_per_level}/level) -> {qpath}", flush=True)
    lab = label.run(label.LabelConfig(queries=str(qpath), out_dir=str(out / "labels"), recipe=recipe,
                                      resamples=resamples, seed=seed, replicas=replicas,
                                      strategies=strategies))
    t_label = time.perf_counter() - t0
    paths = split_table(Path(lab["table"]), out / "labels")
    probe = train_probe.run(train_probe.TrainProbeConfig(
        train_labels=str(paths["train"]), val_labels=str(paths["val"]), out_dir=str(out / "probe"),
        recipe=recipe, seed=seed, **({"featurizer": featurizer} if featurizer else {})))
    ev = evaluate.run(evaluate.EvaluateConfig(test_labels=str(paths["test"]), artifact=str(out / "probe"),
                                              out_dir=str(out / "report"), recipe=recipe,
                                              train_labels=str(paths["train"])))
    headline = {
        "report": str(out / "report"),
        "queries": {k: len([q for q in queries if q.query_id.startswith(f"{k}-")]) for k in SPLIT_SEEDS},
        "labeling": {k: lab.get(k) for k in ("labeling_mode", "rows", "latency_model_error")},
        "label_seconds": round(t_label, 1),
        "token_saving_ratio_of_shared_pool": lab.get("token_saving_ratio"),
        "featurizer": probe["featurizer"],
        "test": headline_of(ev),
        "cost_errors_validation": probe["cost_errors_validation"],
    }
    if shift_per_level:
        shift_path = shift_table(lab["table"], out / "labels" / "labels_shift.parquet")
        sev = evaluate_shift(shift_path, out / "probe", out / "report_shift", paths["train"], recipe=recipe)
        headline["shift"] = {"report": str(out / "report_shift"), **headline_of(sev)}
    headline["total_seconds"] = round(time.perf_counter() - t0, 1)
    (out / "headline.json").write_text(json.dumps(headline, indent=2))
    return headline


def headline_of(ev: dict) -> dict:
    """The figures of one evaluation report that say whether routing pays."""
    def area(key):
        return round(ev[key]["value"], 4)

    lm = ev.get("learned_minus_lookup_area")
    return {
        "query_set": ev["query_set"], "queries": ev["test_queries"],
        "best_static": ev["best_static"],
        "static_configs_matched_or_beaten": f"{ev['static_configs_matched_or_beaten']}/{len(ev['static'])}",
        "normalized_area": {"tokens_all": area("normalized_area_tokens"),
                            "latency_all": area("normalized_area_latency"),
                            "tokens_paper": area("normalized_area_tokens_paper"),
                            "latency_paper": area("normalized_area_latency_paper")},
        "learned_minus_lookup_area": lm,
        "split_oracle_area_tokens_all": (ev["areas"]["all"]["split_oracle"]["tokens"]["value"]
                                         if "split_oracle" in ev["areas"]["all"] else None),
        "tokens_to_match": {f: {n: r.get("ratio") for n, r in rows.items()}
                            for f, rows in ev["tokens_to_match"].items()},
        "latency_budgets_adaptive_at_least_best_static":
            f"{ev['latency_budgets_adaptive_at_least_best_static']}/{len(ev['latency_budgets'])}",
        "latency_mean_budgets_adaptive_at_least_best_static":
            f"{ev.get('latency_mean_budgets_adaptive_at_least_best_static', 'n/a')}/{len(ev['latency_budgets'])}",
        "probe_auc": ev["probe_calibration_test"]["after"]["auc"],
        "probe_ece": {"before": ev["probe_calibration_test"]["before"]["ece"],
                      "after": ev["probe_calibration_test"]["after"]["ece"]},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(prog="latte demo", description=__doc__)
    ap.add_argument("--out", default="runs/demo", help="output folder (rerun with the same folder to resume)")
    # 8 levels: 1,512 queries in the splits, plus 128 shifted.
    ap.add_argument("--train-per-level", type=int, default=125)
    ap.add_argument("--val-per-level", type=int, default=32)
    ap.add_argument("--test-per-level", type=int, default=32)
    ap.add_argument("--shift-per-level", type=int, default=16, help="shifted query set (0: none)")
    ap.add_argument("--featurizer", default=None, help="probe featurizer (default: the probe job's)")
    ap.add_argument("--replicas", type=int, default=2, help="labeling actors (each holds both engines)")
    ap.add_argument("--resamples", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipe", default=CPU_RECIPE)
    ap.add_argument("--strategy", action="append", help="label only these strategy ids (repeatable)")
    args = ap.parse_args(argv)
    for name in ("train_per_level", "val_per_level", "test_per_level", "replicas", "resamples"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.shift_per_level < 0:
        ap.error("--shift-per-level must be >= 0")
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    headline = run(Path(args.out), {"train": args.train_per_level, "val": args.val_per_level,
                                    "test": args.test_per_level},
                   args.replicas, args.resamples, args.seed, args.recipe, args.strategy,
                   shift_per_level=args.shift_per_level, featurizer=args.featurizer)
    print(json.dumps(headline, indent=2))
    print(f"\nreport: {headline['report']}/report.md")
    if "shift" in headline:
        print(f"shifted set: {headline['shift']['report']}/report.md")


if __name__ == "__main__":
    main()
