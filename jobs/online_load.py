"""Replay a query stream through the live Serve app at a set arrival rate.

Open loop (Poisson arrivals): requests are sent on schedule whether or not earlier
ones finished, so measured latency includes queueing, as under real traffic.
Used by the tuning job's online mode (one stream per candidate lambdas).
"""

from __future__ import annotations

import asyncio
import random
import time

import numpy as np


def stream_queries(online) -> list:
    from ttc.arithmetic import generate_problems
    from ttc.queries import load_queries

    if online.queries:
        return load_queries(online.queries, limit=online.n_queries)
    per_level = -(-online.n_queries // 8)
    probs = generate_problems(per_level, seed=online.seed + 909, prefix="online")
    return [p.to_query() for p in random.Random(online.seed).sample(probs, online.n_queries)]


async def replay_stream(url: str, queries: list, rate_per_s: float, body_extra: dict, headers: dict,
                        timeout_s: float, seed: int = 0) -> list[dict]:
    import httpx

    from ttc.grading import answers_match

    rng = random.Random(seed)
    offsets, t = [], 0.0
    for _ in queries:
        offsets.append(t)
        t += rng.expovariate(rate_per_s)

    # No client-side connection cap: under overload the wait must be the server's, not the pool's.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, headers=headers, limits=limits) as client:
        start = time.perf_counter()

        async def one(q, offset):
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/solve", json={"question": q.question, **body_extra})
                status, data = r.status_code, (r.json() if r.status_code == 200 else {"error": r.text[:200]})
            except httpx.HTTPError as exc:
                status, data = 0, {"error": f"{type(exc).__name__}: {exc}"}
            inside = ((data.get("latency_s") or 0.0) + (data.get("decision_wall_s") or 0.0)
                      if status == 200 and "latency_s" in data else None)
            return {"query_id": q.query_id, "status": status, "latency_s": time.perf_counter() - t0,
                    "router_s": inside,  # the part the router saw: decision wall + the strategy's run
                    "tokens": data.get("tokens", 0), "strategy": data.get("strategy"),
                    "correct": bool(status == 200 and q.answer is not None
                                    and answers_match(data.get("answer"), q.answer)),
                    "error": data.get("error")}

        return await asyncio.gather(*(one(q, o) for q, o in zip(queries, offsets)))


def summarize(results: list[dict]) -> dict:
    lat = [r["latency_s"] for r in results]
    ok = [r for r in results if r["status"] == 200]
    shares: dict[str, float] = {}
    for r in ok:
        shares[r["strategy"]] = shares.get(r["strategy"], 0) + 1 / len(ok)
    return {"accuracy": float(np.mean([r["correct"] for r in results])),
            "mean_tokens": float(np.mean([r["tokens"] for r in results])),
            "p50_latency_s": float(np.percentile(lat, 50)), "p95_latency_s": float(np.percentile(lat, 95)),
            "errors": len(results) - len(ok), "shed": sum(r["status"] == 429 for r in results),
            "strategy_share": shares}


def online_evaluator(online):
    """evaluate(lambda_T, lambda_L) -> outcome of one stream through the app (for the tuner)."""
    from probe.router_config import resolve_token

    queries = stream_queries(online)
    token = resolve_token(online.api_token) if online.api_token else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def evaluate(lambda_tokens: float, lambda_latency: float) -> dict:
        res = asyncio.run(replay_stream(online.url, queries, online.arrival_rate_per_s,
                                        {"lambda_tokens": lambda_tokens, "lambda_latency": lambda_latency},
                                        headers, online.timeout_s, online.seed))
        out = summarize(res)
        if out["errors"] == len(res):
            raise RuntimeError(f"every request of the stream failed, e.g. {res[0]['error']}")
        return out

    return evaluate
