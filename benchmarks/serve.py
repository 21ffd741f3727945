"""Serving overhead and throughput of the Serve application on the CPU world.

    python -m benchmarks.serve --json [--router-config cluster/serve/router_cpu.yaml]

Prints: router decision time (embed + probe over the grid + argmax) p50/p95 and its
share of the mean request latency; requests/s and p50/p95 latency at concurrency
1/4/16 over HTTP; the same strategy mix run directly on in-process engines
(one query at a time); and the ratio. Needs a probe artifact (run `latte demo` first).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import json
import time

import numpy as np


def _pct(xs, q):
    return float(np.percentile(xs, q)) if xs else float("nan")


def http_load(base: str, questions: list[str], concurrency: int, headers: dict) -> dict:
    import httpx

    def one(q):
        t0 = time.perf_counter()
        r = httpx.post(base + "/v1/solve", json={"question": q}, headers=headers, timeout=300)
        return time.perf_counter() - t0, r.status_code, (r.json() if r.status_code == 200 else {})

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(concurrency) as ex:
        res = list(ex.map(one, questions))
    wall = time.perf_counter() - t0
    lat = [r[0] for r in res if r[1] == 200]
    return {"concurrency": concurrency, "requests": len(questions), "ok": len(lat),
            "requests_per_s": len(lat) / wall, "p50_s": _pct(lat, 50), "p95_s": _pct(lat, 95),
            "mean_s": float(np.mean(lat)) if lat else float("nan"),
            "strategies": [r[2].get("strategy") for r in res if r[1] == 200],
            "decision_s": [r[2].get("decision_s") for r in res if r[1] == 200]}


def run(router_config: str, n_requests: int, seed: int) -> dict:
    import ray

    from probe.router_config import RouterConfig
    from serve_app.deploy import deploy
    from ttc.arithmetic import generate_problems

    cfg = RouterConfig.load(router_config)
    token = cfg.resolved_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    port = 8765
    deploy("cluster/serve/cpu_world.yaml", {"router_config": router_config}, http_port=port)
    base = f"http://127.0.0.1:{port}"
    per_level = -(-n_requests // 8)
    questions = [p.question for p in generate_problems(per_level, seed=seed)][:n_requests]
    http_load(base, questions[:4], 2, headers)  # warm-up
    loads = [http_load(base, questions, c, headers) for c in (1, 4, 16)]
    # Decision time in isolation (same featurizer + artifact as the router).
    from probe.artifact import load_artifact
    from probe.decider import Decider
    from probe.features import get_featurizer
    from ttc.recipe import load_recipe

    recipe = load_recipe(cfg.recipe)
    art = load_artifact(cfg.artifact_path())
    decider = Decider(art, get_featurizer(art.featurizer, recipe.policy.resolved_model(), recipe.format()))
    decider.decide(["warm-up"])
    dts = []
    for q in questions:
        t0 = time.perf_counter()
        decider.decide([q])
        dts.append(time.perf_counter() - t0)
    from ray import serve

    serve.shutdown()
    # The concurrency-1 strategy mix, directly on in-process engines, one query at a time.
    from ttc.strategies import StrategyRunner
    from ttc.queries import Query

    runner = StrategyRunner(recipe.build_generator(seed), recipe.build_scorer(seed), recipe.format(),
                            recipe.sampling.config(seed))
    grid = art.grid
    mix = loads[0]["strategies"]
    asyncio.run(runner.run(grid[mix[0]], [Query("w", questions[0])]))
    t0 = time.perf_counter()
    direct_lat = []
    for q, sid in zip(questions, mix):
        t1 = time.perf_counter()
        asyncio.run(runner.run(grid[sid], [Query("d", q)]))
        direct_lat.append(time.perf_counter() - t1)
    direct_wall = time.perf_counter() - t0
    direct = {"requests_per_s": len(mix) / direct_wall, "p50_s": _pct(direct_lat, 50),
              "p95_s": _pct(direct_lat, 95), "mean_s": float(np.mean(direct_lat))}
    for load in loads:
        load.pop("decision_s")
        load["strategy_mix"] = {s: load["strategies"].count(s) for s in sorted(set(load["strategies"]))}
        load.pop("strategies")
    return {
        "decision_time": {"p50_s": _pct(dts, 50), "p95_s": _pct(dts, 95),
                          "share_of_mean_request_latency_c1": float(np.mean(dts)) / loads[0]["mean_s"]},
        "http": loads,
        "direct_inprocess_c1": direct,
        "ratio_http_c1_over_direct_requests_per_s": loads[0]["requests_per_s"] / direct["requests_per_s"],
        "grid": art.grid.name, "strategies": len(art.grid.ids),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--router-config", default="cluster/serve/router_cpu.yaml")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    result = run(args.router_config, args.requests, args.seed)
    print(json.dumps(result, indent=2 if args.json else None))


if __name__ == "__main__":
    main()
