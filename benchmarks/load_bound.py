"""How much accuracy can any router keep at k x the sustained rate? An upper bound from the ramp.

    python -m benchmarks.load_bound --ramp serve_load.json [--multiple 2] [--json]

`benchmarks.serve_load` calls `bound` on its own ramp; run alone it reads a ramp JSON that
serve_load printed. The bound assumes the policy engine's token throughput is the only
limit (no per-request cost of HTTP, router or PRM calls, no queueing: an optimistic
bound):

1. capacity: the most tokens per second answered in any window of the ramp (the overloaded
   windows are the engines saturated), any router;
2. affordable tokens per request at k x the 1x rate: capacity / (k x rate), if every request
   is to be answered (the bar counts a shed request as wrong);
3. the artifact's own offline curve on the validation table (lambda_T swept, lambda_L 0,
   the probe's predicted accuracy and costs, scored on the labels): the best accuracy at a
   mean within those tokens, against the curve's accuracy at the tokens router (a) served
   at 0.5x. Their ratio bounds (a)'s 2x / 0.5x accuracy.
4. the same with one-round strategies only (each engine pool visited once: votes and
   best-of-N): under a queue every sequential round waits it again, so beam search and
   escalation's second stage are the first a latency budget excludes.
5. `cpu` (when the windows carry serve_load's CPU split, benchmarks/cpu_share.py): the same
   bound with the machine's CPU as the limit. Every request costs CPU outside the engines
   (proxy, router, pool front ends: the least any window at exactly k x paid per request sent), and
   that grows with the rate while the cores do not; what is left runs the engines at the
   most tokens per engine-core-second any window reached. Still optimistic (the cheapest
   overhead, the best engine efficiency, no queueing), but it counts what step 1 leaves out.
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def capacity_tokens_per_s(ramp: dict) -> dict:
    best = {"tokens_per_s": 0.0}
    for name, rows in ramp.items():
        for s in rows:
            if s.get("mean_tokens") and s.get("window_s"):
                tps = s["ok_200"] * s["mean_tokens"] / s["window_s"]
                if tps > best["tokens_per_s"]:
                    best = {"tokens_per_s": float(tps), "router": name, "load_multiple": s.get("load_multiple"),
                            # a window that shed or lost nothing may not have saturated the engines,
                            # and then its throughput understates capacity (the bound is then no bound)
                            "saturated": bool(s.get("shed_429", 0) or s.get("lost", 0))}
    return best


def cpu_capacity_tokens_per_s(ramp: dict, rate_per_s: float, cores: float | None = None) -> dict | None:
    """Engine tokens/s the machine's cores leave at `rate_per_s` after the per-request CPU
    outside the engines; None when the windows carry no CPU split."""
    rows = [s for rows in ramp.values() for s in rows if s.get("cpu") and s.get("sent") and s.get("window_s")]
    if not rows:
        return None
    cores = cores or max(s["cpu"]["total_cores"] for s in rows)
    # only windows at this rate: a higher load's windows shed most requests, and a shed one
    # costs far less CPU than an answered one, which would understate the overhead
    at = [s for s in rows if abs(s["rate_per_s"] - rate_per_s) <= 0.01 * rate_per_s] or \
        [max(rows, key=lambda s: s["rate_per_s"])]
    overhead_ms = min(s["cpu"]["other_ms_per_request"] for s in at)
    efficiency = []
    for s in rows:
        engine = s["cpu"]["cores"]["policy_engine"] + s["cpu"]["cores"]["prm_engine"]
        if engine > 0 and s.get("mean_tokens"):
            efficiency.append(s["ok_200"] * s["mean_tokens"] / s["window_s"] / engine)
    per_core = max(efficiency) if efficiency else 0.0
    left = max(0.0, cores - rate_per_s * overhead_ms / 1000.0)
    return {"cores": cores, "overhead_ms_per_request": overhead_ms, "overhead_cores": rate_per_s * overhead_ms / 1000.0,
            "engine_cores_left": left, "tokens_per_engine_core_s": per_core, "tokens_per_s": left * per_core}


def one_round(spec) -> bool:
    """Visits each engine pool at most once (one sample call, at most one scoring call)."""
    from ttc.methods.registry import get_method

    kinds = [name.split("/")[0] for name, _ in get_method(spec.method).latency_parts(spec, 1.0)]
    return set(kinds) <= {"sample", "score"} and len(kinds) == len(set(kinds))


def offline_curves(artifact_dir: str, val_labels: str, recipe_path: str, points: int = 40) -> dict[str, list[dict]]:
    """{"all": ..., "one_round": ...}: the artifact's lambda_T sweep on validation, scored on its labels."""
    from probe.artifact import load_artifact
    from probe.evaluation import Truth, log_grid, sweep
    from probe.features import get_featurizer
    from probe.training import embed_table
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    art = load_artifact(artifact_dir)
    val = LabelTable.read(val_labels)
    if val.meta.get("grid_hash") != art.grid.hash:
        raise ValueError(f"validation labels (grid hash {val.meta.get('grid_hash')}) and the probe artifact "
                         f"(grid hash {art.grid.hash}) are for different grids")
    recipe = load_recipe(recipe_path)
    qf = embed_table(get_featurizer(art.featurizer, recipe.policy.resolved_model(), recipe.format()), val)
    acc = art.predict_accuracy(qf)
    tok, lat = art.predict_costs(qf)
    allowed = art.allowed()
    allowed = np.ones(len(art.grid.ids), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    one = np.array([one_round(s) for s in art.grid.strategies])
    truth, lts = Truth.from_table(val), log_grid(1e-6, 1e-1, points)
    return {name: sweep(truth, acc, tok, lat, lts, [0.0], allowed=mask)
            for name, mask in (("all", allowed), ("one_round", allowed & one))}


def _accuracy_within(curve: list[dict], tokens: float) -> float | None:
    """The curve's best accuracy at mean tokens within `tokens`. When no point fits, the
    cheapest point served to the share of requests the tokens pay for (the rest shed and
    counted wrong); None for an empty curve."""
    from probe.evaluation import accuracy_at

    if not curve:
        return None
    acc = accuracy_at(curve, "tokens", tokens)
    if not np.isnan(acc):
        return acc
    cheapest = min(curve, key=lambda p: p["tokens"])
    return max(0.0, tokens) / cheapest["tokens"] * cheapest["accuracy"]


def _ratios(curves: dict[str, list[dict]], affordable: float, ref: float | None) -> dict[str, dict]:
    """Per curve: its accuracy within `affordable` tokens and that over `ref`, the full
    curve's accuracy at what (a) serves at 0.5x, where nothing queues."""
    out = {}
    for name, curve in curves.items():
        at = _accuracy_within(curve, affordable)
        out[name] = {"offline_accuracy_at_affordable": at, "ratio_bound": at / ref if at is not None and ref else None}
    return out


def bound(ramp_result: dict, curves: dict[str, list[dict]], multiple: float = 2.0) -> dict:
    ramp, rate = ramp_result["ramp"], ramp_result["rate_search"]["sustained_rate_per_s"]
    if not rate or rate <= 0:
        raise ValueError(f"the ramp's 1x rate is {rate!r}; the bound needs a positive rate")
    cap = capacity_tokens_per_s(ramp)
    affordable = cap["tokens_per_s"] / (multiple * rate)
    a = {s["load_multiple"]: s for s in ramp.get("a_load_aware", [])}
    out = {"capacity": cap, "rate_1x_per_s": rate, "multiple": multiple,
           "affordable_tokens_per_request": affordable}
    a05_tokens = a[0.5]["mean_tokens"] if 0.5 in a and a[0.5].get("mean_tokens") else None
    ref = _accuracy_within(curves["all"], a05_tokens) if a05_tokens else None
    out["a_tokens_at_0_5x"], out["offline_accuracy_at_a_0_5x_tokens"] = a05_tokens, ref
    for name, r in _ratios(curves, affordable, ref).items():
        out[name] = {**r, "curve_top": max(p["accuracy"] for p in curves[name])}
    cpu = cpu_capacity_tokens_per_s(ramp, multiple * rate, ramp_result.get("cpu_count"))
    if cpu is not None:
        cpu["affordable_tokens_per_request"] = cpu["tokens_per_s"] / (multiple * rate)
        cpu.update(_ratios(curves, cpu["affordable_tokens_per_request"], ref))
        out["cpu"] = cpu
    if multiple in a and 0.5 in a and a[0.5]["accuracy"]:
        out["measured_ratio"] = a[multiple]["accuracy"] / a[0.5]["accuracy"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ramp", required=True, help="a JSON that benchmarks.serve_load printed")
    ap.add_argument("--multiple", type=float, default=2.0)
    ap.add_argument("--artifact", default="runs/demo/probe")
    ap.add_argument("--val-labels", default="runs/demo/labels/labels_val.parquet")
    ap.add_argument("--recipe", default=None, help="default: the CPU world's")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from ttc.paths import CPU_RECIPE

    with open(args.ramp) as f:
        ramp_result = json.load(f)
    if "ramp" not in ramp_result or "rate_search" not in ramp_result:
        ap.error(f"{args.ramp} is not a serve_load result (no 'ramp' / 'rate_search')")
    res = bound(ramp_result, offline_curves(args.artifact, args.val_labels, args.recipe or CPU_RECIPE), args.multiple)
    print(json.dumps(res, indent=2) if args.json else
          f"capacity {res['capacity']['tokens_per_s']:.0f} tokens/s; at {args.multiple}x every request may use "
          f"{res['affordable_tokens_per_request']:.0f} tokens; ratio bound {res['all']['ratio_bound']}, one-round "
          f"strategies only {res['one_round']['ratio_bound']}; with the CPU as the limit "
          f"{(res.get('cpu') or {}).get('all', {}).get('ratio_bound')}; measured {res.get('measured_ratio')}")


if __name__ == "__main__":
    main()
