"""Labeling throughput: batched mode against one query at a time, on the same engines.

    python -m benchmarks.labeling --json [--per-level 6] [--shards 1] [--out runs/bench_labeling]

One labeling worker (the class the Ray Data job runs, built once, both engines in
process) labels the same shard of queries twice, with the job's own code path
(`LabelWorker.label_shard`):

- `per_query`: every query alone, each engine call timed (the old mode);
- `batched`: the job's default: one generation call and one scoring call for the whole
  shard's pools, beam search batched over queries x runs, and the calibration subset
  (`calibration_fraction` of each difficulty level, at least one per level, as the job
  picks it) timed one at a time for the latency model (its pool and one run of each
  beam config; its other runs join the batch).

rows/s = (queries x strategies) / wall seconds. A small benchmark shard over-represents
calibration (at least one query per level), so the batched figure is also reported
with the calibration share of a full job (`projected_at_fraction`), from the same
measured per-query and batched times; the bar is checked on the measured figure.

Agreement: per strategy, the paired per-query difference of the two modes' soft labels
must be within 3 standard errors of zero (sampling noise; identical seeds often give
identical labels, in which case the difference is exactly 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ttc.paths import CPU_RECIPE

BAR = 5.0


def agreement(rows_a: list[dict], rows_b: list[dict], z: float = 3.0) -> dict:
    """Per-strategy paired test of mean soft labels of two labelings of the same queries."""
    a = {(r["query_id"], r["strategy_id"]): r["soft_label"] for r in rows_a}
    b = {(r["query_id"], r["strategy_id"]): r["soft_label"] for r in rows_b}
    if set(a) != set(b):
        raise ValueError("the two modes labeled different (query, strategy) pairs")
    out = {}
    for sid in sorted({s for _, s in a}):
        d = np.array([a[k] - b[k] for k in a if k[1] == sid])
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
        mean = float(d.mean())
        out[sid] = {"mean_per_query": float(np.mean([a[k] for k in a if k[1] == sid])),
                    "mean_batched": float(np.mean([b[k] for k in b if k[1] == sid])),
                    "diff": mean, "se": se, "agrees": bool(abs(mean) <= z * se + 1e-12)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--per-level", type=int, default=6, help="queries per difficulty level in the shard")
    ap.add_argument("--shards", type=int, default=1,
                    help="label K x per-level queries per level as a job does: in shards of 48 in file "
                         "order, calibration picked over all of them (1: one shard of every level)")
    ap.add_argument("--recipe", default=CPU_RECIPE)
    ap.add_argument("--resamples", type=int, default=30)
    ap.add_argument("--beam-runs", type=int, default=4)
    ap.add_argument("--calibration-fraction", type=float, default=None,
                    help="default: the labeling job's default")
    ap.add_argument("--out", default="runs/bench_labeling")
    ap.add_argument("--curve-batches", type=int, nargs="*", default=[8, 32, 128, 512],
                    help="batch sizes of the policy engine's cost curve (none: skip it)")
    args = ap.parse_args(argv)
    from benchmarks import LogsToStderr

    with LogsToStderr() as out:
        res = measure(args)
        if args.json:
            out.emit(json.dumps(res, indent=2))
        else:
            out.emit(f"per-query {res['per_query']['rows_per_s']:.1f} rows/s, batched "
                     f"{res['batched']['rows_per_s']:.1f} rows/s: {res['ratio']:.1f}x (bar {BAR}x); "
                     f"soft labels agree: {res['soft_labels_agree']}")


def measure(args) -> dict:
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    from jobs.label import LabelConfig, LabelWorker, calibration_ids
    from ttc.arithmetic import generate_problems
    from ttc.label_table import shard_queries

    if args.shards < 1 or args.per_level < 1:
        raise SystemExit("--shards and --per-level must be >= 1")
    queries = [p.to_query() for p in generate_problems(args.per_level * args.shards, seed=9001, prefix="bench")]
    frac = (LabelConfig.model_fields["calibration_fraction"].default
            if args.calibration_fraction is None else args.calibration_fraction)
    cfg = LabelConfig(queries="-", out_dir="-", recipe=args.recipe, calibration_fraction=frac,
                      beam_runs=args.beam_runs, resamples=args.resamples)
    calib = calibration_ids(queries, cfg)
    shards = [queries] if args.shards == 1 else [qs for _, qs in shard_queries(queries, cfg.shard_size)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        worker = LabelWorker(args.recipe, None, tmp, args.resamples, 0, {}, args.beam_runs, [])
    startup_s = time.perf_counter() - t0
    n_strat = len(worker.grid.ids)

    def timed(mode: str, calibration: set) -> tuple[list[dict], float]:
        worker.mode, worker.calibration = mode, calibration
        print(f"[bench] {mode} ({len(calibration)} calibration queries) ...", flush=True, file=sys.stderr)
        rows, sec = [], 0.0
        for shard in shards:
            t = time.perf_counter()
            rows += worker.label_shard(shard)[0]
            sec += time.perf_counter() - t
        print(f"[bench] {mode}: {sec:.1f} s", flush=True, file=sys.stderr)
        return rows, sec

    # Batched first, then per-query: any warm-up left after the worker's own favours per-query.
    rows_b, sec_b = timed("batched", set(calib))
    rows_p, sec_p = timed("per_query", {q.query_id for q in queries})
    # Pure batched time (no calibration) for the projection at a full job's calibration share.
    rows_nb, sec_nb = timed("batched", set())

    curve = engine_curve(worker.runner.generator, args.curve_batches)
    n_rows = len(queries) * n_strat
    per_q_s, batch_q_s = sec_p / len(queries), sec_nb / len(queries)
    projected = 1.0 / (frac * per_q_s + (1 - frac) * batch_q_s) * n_strat
    agree = agreement(rows_p, rows_b)
    agree_pure = agreement(rows_p, rows_nb)
    res = {
        "queries": len(queries), "shards": len(shards), "strategies": n_strat, "rows": n_rows, "beam_runs": args.beam_runs,
        "resamples": args.resamples, "worker_startup_s": startup_s,
        "per_query": {"seconds": sec_p, "rows_per_s": n_rows / sec_p},
        "batched": {"seconds": sec_b, "rows_per_s": n_rows / sec_b, "calibration_queries": len(calib)},
        "batched_no_calibration": {"seconds": sec_nb, "rows_per_s": n_rows / sec_nb},
        "projected_at_fraction": {"calibration_fraction": frac, "rows_per_s": projected,
                                  "ratio": projected / (n_rows / sec_p)},
        "ratio": sec_p / sec_b, "ratio_no_calibration": sec_p / sec_nb, "bar": BAR,
        "meets_bar": bool(sec_p / sec_b >= BAR),
        "soft_labels_agree": all(v["agrees"] for v in agree.values())
        and all(v["agrees"] for v in agree_pure.values()),
        "agreement": agree,
        "engine_curve": curve,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "labeling.json").write_text(json.dumps(res, indent=2))
    _plot(res, out / "labeling.png")
    return res


def engine_curve(generator, batches: list[int], steps: int = 32) -> dict:
    """The policy engine's cost per generated token against the number of sequences decoded
    together (fixed length, same prompt shape), so the ceiling of batching is measured on
    the same engine: past the batch where us/token stops falling, batching more queries
    into one call buys nothing more."""
    from vllm import SamplingParams

    if not batches:
        return {}
    llm = generator.llm
    ids = generator.prompt_ids(["Evaluate left to right: 7 + 3 * 4 - 9\n\n"])[0]
    params = SamplingParams(temperature=0.7, max_tokens=steps, min_tokens=steps, ignore_eos=True, stop=["\n\n"])
    out = {}
    for b in batches:
        reqs = [{"prompt_token_ids": ids + [i % 200]} for i in range(b)]
        t = time.perf_counter()
        outs = llm.generate(reqs, params, use_tqdm=False)
        sec = time.perf_counter() - t
        # Counted, not assumed: the stop string (kept, as beam steps pay for its check) may end one early.
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        out[str(b)] = {"us_per_token": sec / tokens * 1e6, "tokens": tokens}
    first = out[str(batches[0])]["us_per_token"]
    for v in out.values():
        v["speedup_vs_smallest"] = first / v["us_per_token"]
    return {"steps": steps, "by_batch": out}


def _plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = ["per_query", "batched", "batched_no_calibration", "projected_at_fraction"]
    a.bar(range(len(names)), [res[k]["rows_per_s"] for k in names], color=["grey", "C0", "C1", "C2"])
    a.set_xticks(range(len(names)), ["per query", "batched", "batched\n(no calib.)",
                                     f"projected\n(calib. {res['projected_at_fraction']['calibration_fraction']:.0%})"])
    a.set_ylabel("label rows / s")
    a.set_title(f"{res['queries']} queries x {res['strategies']} strategies")
    ag = res["agreement"]
    ids = list(ag)
    b.errorbar(range(len(ids)), [ag[i]["diff"] for i in ids], yerr=[3 * ag[i]["se"] for i in ids], fmt="o")
    b.axhline(0, color="k", lw=0.5)
    b.set_xticks(range(len(ids)), ids, rotation=90, fontsize=6)
    b.set_ylabel("soft label: per-query - batched (±3 SE)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
