"""Serving overhead and throughput of the Serve application on the CPU world.

    python -m benchmarks.serve --json [--router-config cluster/serve/router_cpu.yaml]

Two HTTP runs at concurrency 1/4/16. The OVERHEAD run gives every request a latency budget
no strategy misses (`max_latency_s`, a knob of /v1/solve), so the router answers all of them
and the direct baseline replays the same number of (question, strategy) pairs at the same
concurrency: the like-for-like comparison the HTTP / direct bar is judged on. The AS-SERVED
run uses the default preset's SLO budget as a client would, so at a burst the load-aware
router sheds (429); it reports answered and shed counts, goodput and the answered p95 against
the SLO, beside the overhead run's p95 at the same concurrency (what serving every request
would have cost). A ratio over a run that shed would compare unlike loads: the direct run
would replay only the answered pairs, which the HTTP run served spread over more time.

Prints, per run: requests/s and p50/p95 latency at concurrency 1/4/16 over HTTP; the router's
decision time as it reports it per request (its share of the batched featurizer + probe
pass, plus selection; and the wall time from entering the router to the decision, batch
wait included) and both as shares of the mean request latency at each concurrency; the
same strategy mix at the SAME concurrency directly on in-process engines (vLLM AsyncLLM,
so concurrent queries share batches as in the pools); the HTTP / direct ratio per
concurrency; and, when the app streams, time-to-first-byte p50 of streamed chat requests.
Needs a probe artifact (run `latte demo` first).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import json
import time

import numpy as np

from ttc.paths import CPU_SERVE_CONFIG


def _pct(xs, q):
    return float(np.percentile(xs, q)) if xs else float("nan")


# A budget no strategy misses on this world, even queued 16 deep: nothing is shed on latency.
NO_SHED_BUDGET_S = 3600.0


def http_load(base: str, questions: list[str], concurrency: int, headers: dict, extra: dict | None = None) -> dict:
    import httpx

    def one(q):
        t0 = time.perf_counter()
        r = httpx.post(base + "/v1/solve", json={"question": q, **(extra or {})}, headers=headers, timeout=300)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        return time.perf_counter() - t0, r.status_code, body

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(concurrency) as ex:
        res = list(ex.map(one, questions))
    wall = time.perf_counter() - t0
    lat = [r[0] for r in res if r[1] == 200]
    mean = float(np.mean(lat)) if lat else float("nan")
    dec = [r[2].get("decision_s") for r in res if r[1] == 200]
    wall_dec = [r[2].get("decision_wall_s", r[2].get("decision_s")) for r in res if r[1] == 200]
    return {"concurrency": concurrency, "requests": len(questions), "ok": len(lat), "not_ok": len(questions) - len(lat),
            "shed_429": sum(r[1] == 429 for r in res), "requests_per_s": len(lat) / wall,
            "shed_reasons": [r[2].get("error", {}).get("message") for r in res if r[1] == 429][:4],
            "p50_s": _pct(lat, 50), "p95_s": _pct(lat, 95),
            "mean_s": mean, "decision_p50_s": _pct(dec, 50),
            "decision_share_of_mean_latency": float(np.mean(dec)) / mean if dec else None,
            "decision_wall_share_of_mean_latency": float(np.mean(wall_dec)) / mean if wall_dec else None,
            "strategies": [r[2].get("strategy") for r in res if r[1] == 200]}


def streaming_ttfb(base: str, questions: list[str], headers: dict, model: str) -> dict:
    """Time to the first byte of streamed chat answers, when the app streams (optional)."""
    import httpx

    ttfb = []
    for q in questions:
        body = {"model": model, "messages": [{"role": "user", "content": q}], "stream": True}
        t0 = time.perf_counter()
        try:
            with httpx.stream("POST", base + "/v1/chat/completions", json=body, headers=headers, timeout=120) as r:
                if r.status_code != 200 or not r.headers.get("content-type", "").startswith("text/event-stream"):
                    return {"available": False, "reason": f"stream=true answered {r.status_code} "
                                                          f"{r.headers.get('content-type')}"}
                first = True
                for chunk in r.iter_bytes():  # read the stream to its end, time the first byte
                    if chunk and first:
                        ttfb.append(time.perf_counter() - t0)
                        first = False
        except httpx.HTTPError as exc:
            return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    return {"available": True, "requests": len(ttfb), "p50_s": _pct(ttfb, 50), "p95_s": _pct(ttfb, 95)}


async def direct_load(runner, grid, questions: list[str], mix: list[str], concurrency: int) -> dict:
    """The HTTP run's (question, strategy) pairs on in-process engines, `concurrency` at a time."""
    from ttc.queries import Query

    jobs = list(zip(questions, mix))
    lat: list[float] = []

    async def worker():
        while jobs:
            q, sid = jobs.pop(0)
            t1 = time.perf_counter()
            await runner.run(grid[sid], [Query("d", q)])
            lat.append(time.perf_counter() - t1)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"concurrency": concurrency, "requests": len(lat), "requests_per_s": len(lat) / wall,
            "p50_s": _pct(lat, 50), "p95_s": _pct(lat, 95), "mean_s": float(np.mean(lat))}


async def direct_all(recipe, grid, questions, loads, seed) -> list[dict]:
    from ttc.async_engines import AsyncVLLMGenerator, AsyncVLLMStepScorer
    from ttc.strategies import StrategyRunner

    gen = AsyncVLLMGenerator(recipe.policy.spec(seed))
    scorer = AsyncVLLMStepScorer(recipe.prm.spec(seed), recipe.format())
    runner = StrategyRunner(gen, scorer, recipe.format(), recipe.sampling.config(seed))
    await direct_load(runner, grid, questions[:2], loads[0]["strategies"][:2], 2)  # warm-up
    out = [await direct_load(runner, grid, questions, load["strategies"], load["concurrency"]) for load in loads]
    gen.shutdown()
    scorer.shutdown()
    return out


def run(router_config: str, n_requests: int, seed: int) -> dict:
    import ray

    from probe.router_config import RouterConfig
    from benchmarks import deploy_and_wait
    from ttc.arithmetic import generate_problems

    cfg = RouterConfig.load(router_config)
    token = cfg.resolved_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    port = 8765
    deploy_and_wait(CPU_SERVE_CONFIG, {"router_config": router_config}, port)
    base = f"http://127.0.0.1:{port}"
    per_level = -(-n_requests // 8)
    questions = [p.question for p in generate_problems(per_level, seed=seed)][:n_requests]
    no_shed = {"max_latency_s": NO_SHED_BUDGET_S}
    http_load(base, questions[:4], 2, headers, no_shed)  # warm-up
    loads = [http_load(base, questions, c, headers, no_shed) for c in (1, 4, 16)]
    served = [http_load(base, questions, c, headers) for c in (1, 4, 16)]
    ttfb = streaming_ttfb(base, questions[:8], headers, cfg.default_preset)
    from ray import serve

    serve.shutdown()
    from probe.artifact import load_artifact
    from ttc.recipe import load_recipe

    recipe = load_recipe(cfg.recipe)
    grid = load_artifact(cfg.artifact_path()).grid
    direct = asyncio.run(direct_all(recipe, grid, questions, loads, seed))
    for load in loads + served:
        load["strategy_mix"] = {s: load["strategies"].count(s) for s in sorted(set(load["strategies"]))}
        load.pop("strategies")
    slo = cfg.slo.p95_latency_s if cfg.slo else None
    as_served = [{**s, "slo_p95_s": slo,
                  "answered_p95_within_slo": bool(s["p95_s"] <= slo) if s["ok"] and slo else None,
                  "overhead_run_p95_s": o["p95_s"]} for s, o in zip(served, loads)]
    ratio = {str(h["concurrency"]): h["requests_per_s"] / d["requests_per_s"] for h, d in zip(loads, direct)}
    return {
        "http": loads,
        "direct_inprocess": direct,
        "http_as_served": as_served,
        "ratio_http_over_direct_requests_per_s": ratio,
        # like for like only when the overhead run answered every request at every concurrency
        "like_for_like": all(h["ok"] == h["requests"] == d["requests"] for h, d in zip(loads, direct)),
        "bars": {"ratio_c16_ge_0.7": ratio["16"] >= 0.7,
                 "decision_share_c16_le_1pct": (loads[-1]["decision_share_of_mean_latency"] or 1.0) <= 0.01},
        "decision_share_c16": loads[-1]["decision_share_of_mean_latency"],
        "decision_wall_share_c16": loads[-1]["decision_wall_share_of_mean_latency"],
        "streaming_ttfb": ttfb,
        "grid": grid.name, "strategies": len(grid.ids),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--router-config", default="cluster/serve/router_cpu.yaml")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm(bind_threads=False)  # the pools' setting: two engines, no pinning to one core set
    from benchmarks import LogsToStderr

    with LogsToStderr() as out:
        result = run(args.router_config, args.requests, args.seed)
        out.emit(json.dumps(result, indent=2 if args.json else None))


if __name__ == "__main__":
    main()
