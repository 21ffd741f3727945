"""Overload behaviour of the Serve app: an open-loop Poisson ramp against the latency SLO.

    python -m benchmarks.serve_load --json [--window-s 30] [--search-window-s 20]

1. Finds the rate the default preset sustains with p95 within the router config's SLO
   (load-awareness off: the plain router), doubling from --start-rate, then bisecting; each
   step pools --search-repeats windows, since a p95 of a few dozen requests is noisy; the
   found rate must then hold once more on fresh windows (else it steps down by a fifth).
2. At 0.5x, 1x, 2x, 4x that rate, replays CPU-world problems (they have answers) through
   `/v1/solve` with Poisson arrivals (the tuning job's online load code) for three routers,
   switched in place on one deployment (hot reload of the router config, same engines):
   (a) load-aware, (b) load-awareness off, (c) the best static config: the strategy with the
   best validation utility under the default preset's lambdas, forced on every request.
   Each router runs the levels in rising order before the next router starts; a switch
   restarts the load-aware estimates (the router rebuilds them on a changed load_control).
   `--repeats` pools several windows per (router, load).
Per router and load: p50/p95/p99 latency of answered requests (the p95 with a 95% bootstrap
interval), accuracy over every request sent (a shed one counts as not answered) and over
answered ones, mean tokens, counts of 200 / 429 / 5xx / lost (client timeout or connection
error), and the strategy mix. `accuracy_bound_at_2x` (benchmarks/load_bound.py): the
accuracy any router could keep at 2x if the engines' token throughput were the only limit.
Needs a probe artifact (`latte demo`) and its validation label table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import sys
import time
from pathlib import Path

import numpy as np

from ttc.paths import CPU_SERVE_CONFIG


# load_control fields the command line may override for every router of a run
OVERRIDES = ("congestion_gain", "congestion_target", "congestion_resource", "in_flight_queue", "max_in_flight",
             "concurrency_fill")


def _pct(xs, q):
    return float(np.percentile(xs, q)) if len(xs) else None


def best_static(val_labels: str, lambda_tokens: float, lambda_latency: float) -> dict:
    """The static config maximizing mean soft label - lambdas x mean costs on validation."""
    import pyarrow.parquet as pq

    t = pq.read_table(val_labels).to_pandas()
    g = t.groupby("strategy_id")[["soft_label", "mean_tokens", "mean_latency_s"]].mean()
    u = g["soft_label"] - lambda_tokens * g["mean_tokens"] - lambda_latency * g["mean_latency_s"]
    sid = str(u.idxmax())
    return {"strategy": sid, "val_accuracy": float(g.loc[sid, "soft_label"]),
            "val_tokens": float(g.loc[sid, "mean_tokens"]), "val_queries": int(t["query_id"].nunique())}


def p95_interval(lat: list[float], reps: int = 2000, seed: int = 0) -> list[float] | None:
    """95% bootstrap interval of the p95 of `lat` (how far one window's p95 can be trusted)."""
    if len(lat) < 2:
        return None
    x = np.asarray(lat)
    boot = np.percentile(np.random.default_rng(seed).choice(x, (reps, len(x))), 95, axis=1)
    return [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]


def shed_reasons(res: list[dict], examples: int = 3) -> dict:
    """429s by cause, from their OpenAI-shaped messages: the admission bound (too many in
    flight) or the latency budget (no strategy predicted to fit), with a few messages."""
    shed = [str(r.get("error") or "") for r in res if r["status"] == 429]
    admission = [m for m in shed if "its limit" in m]
    budget = [m for m in shed if "its limit" not in m]
    return {"admission": len(admission), "budget": len(budget), "budget_examples": budget[:examples]}


def _mix(rows: list[dict]) -> dict[str, int]:
    mix: dict[str, int] = {}
    for r in rows:
        mix[r["strategy"]] = mix.get(r["strategy"], 0) + 1
    return dict(sorted(mix.items(), key=lambda kv: -kv[1]))


def _outside(ok: list[dict]) -> dict | None:
    d = [r["latency_s"] - r["router_s"] for r in ok if r.get("router_s") is not None]
    return {"mean_s": float(np.mean(d)), "p95_s": _pct(d, 95)} if d else None


def summarize(res: list[dict], rate: float, window_s: float, slo: float | None = None) -> dict:
    ok = [r for r in res if r["status"] == 200]
    lat = [r["latency_s"] for r in ok]
    return {"rate_per_s": rate, "window_s": window_s, "sent": len(res), "ok_200": len(ok),
            "shed_429": sum(r["status"] == 429 for r in res), "shed_reasons": shed_reasons(res),
            "server_5xx": sum(r["status"] >= 500 for r in res),
            "other_4xx": sum(400 <= r["status"] < 500 and r["status"] != 429 for r in res),
            "lost": sum(r["status"] == 0 for r in res),
            "p50_s": _pct(lat, 50), "p95_s": _pct(lat, 95), "p99_s": _pct(lat, 99),
            "p95_ci95_s": p95_interval(lat),
            "p95_all_s": _pct([r["latency_s"] for r in res], 95),
            # where the tail is paid: inside the router (what its SLO guard sees) or outside it
            # (HTTP proxy, Serve's handle queue, the client), per answered request
            "p95_router_s": _pct([r["router_s"] for r in ok if r.get("router_s") is not None], 95),
            "outside_router_s": _outside(ok),
            "accuracy": float(np.mean([r["correct"] for r in res])) if res else None,
            "accuracy_answered": float(np.mean([r["correct"] for r in ok])) if ok else None,
            "mean_tokens": float(np.mean([r["tokens"] for r in ok])) if ok else None,
            "strategy_mix": _mix(ok),
            # which strategies the requests over the SLO ran (what the tail is made of)
            "over_slo_mix": _mix([r for r in ok if slo is not None and r["latency_s"] > slo])}


POOLS = ("PolicyPool", "PRMPool")


def pinned_serve_config(path: str, replicas: int | None, tmp: Path) -> str:
    """The Serve config with each engine pool fixed at `replicas` (None: as configured).

    The ramp measures the router, not the autoscaler: on a small machine a pool's second
    replica brings no cores of its own (the first engines already share them all), and its
    engine start-up (tens of CPU-seconds) lands inside the very windows that ask for it."""
    if replicas is None:
        return path
    import yaml

    from serve_app.deploy import load_serve_config

    data = load_serve_config(path)
    for app in data["applications"]:
        for dep in app.get("deployments", []):
            if dep["name"] in POOLS:
                dep["autoscaling_config"] = {"min_replicas": replicas, "max_replicas": replicas,
                                             "initial_replicas": replicas}
    out = tmp / "serve_pinned.yaml"
    out.write_text(yaml.safe_dump(data))
    return str(out)


class Bench:
    def __init__(self, args):
        self.args = args

    def setup(self):
        import ray
        import yaml

        from probe.router_config import RouterConfig
        from benchmarks import deploy_and_wait

        a = self.args
        self.cfg = RouterConfig.load(a.router_config)
        if not self.cfg.slo.p95_latency_s:
            raise SystemExit(f"{a.router_config} states no slo.p95_latency_s; the ramp is measured against it")
        self.slo = self.cfg.slo.p95_latency_s
        token = self.cfg.resolved_token()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.tmp = Path(tempfile.mkdtemp(prefix="serve_load-"))
        self.paths = {}
        for aware in (True, False):
            d = self.cfg.model_dump()
            d["load_control"]["aware"] = aware
            for field in OVERRIDES:
                if getattr(a, field) is not None:
                    d["load_control"][field] = getattr(a, field)
            d["artifact"] = str(self.cfg.artifact_path())
            p = self.tmp / f"router_{'aware' if aware else 'off'}.yaml"
            p.write_text(yaml.safe_dump(d))
            self.paths[aware] = p
        self.serve_config = pinned_serve_config(a.serve_config, a.pool_replicas, self.tmp)
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        self.app_args = {"router_config": str(self.paths[False])}
        deploy_and_wait(self.serve_config, self.app_args, a.port)
        self.current = False
        self.url = f"http://127.0.0.1:{a.port}"

    def use(self, aware: bool):
        from serve_app.deploy import reload_router

        if aware != self.current:
            reload_router(self.serve_config, self.paths[aware], self.app_args, http_port=self.args.port)
            self.current = aware
            time.sleep(2.0)

    def queries(self, n: int, salt: int) -> list:
        import random

        from ttc.arithmetic import generate_problems

        per_level = -(-n // 8)
        probs = [p.to_query() for p in generate_problems(per_level, seed=self.args.seed + salt, prefix="load")]
        random.Random(salt).shuffle(probs)
        return probs[:n]

    def window(self, rate: float, window_s: float, aware: bool, strategy: str | None, salt: int,
               repeats: int = 1) -> dict:
        """`repeats` windows of Poisson arrivals at `rate` (arrival seeds and queries differ per
        repeat), summarized together: more requests behind one p95."""
        from benchmarks import cpu_share
        from jobs.online_load import replay_stream

        self.use(aware)
        n = max(4, int(round(rate * window_s)))
        extra = {"strategy": strategy} if strategy else {}
        res, share, busy_s = [], {}, 0.0
        for k in range(repeats):
            before = cpu_share.snapshot()
            res += asyncio.run(replay_stream(self.url, self.queries(n, salt + 7919 * k), rate, extra,
                                             self.headers, self.args.timeout_s, seed=salt + 7919 * k))
            after = cpu_share.snapshot()  # arrivals and their answers only, not the drain
            for c, v in cpu_share.cores(before, after).items():
                share[c] = share.get(c, 0.0) + v * (after["t"] - before["t"])
            busy_s += after["t"] - before["t"]
            time.sleep(self.args.drain_s)  # let the pools drain before the next window
        out = summarize(res, rate, window_s * repeats, self.slo)
        out["cpu"] = cpu_share.summary({c: v / busy_s for c, v in share.items()}, len(res), busy_s)
        print(f"[serve_load] {rate:.2f} req/s, aware={aware}, strategy={strategy}: p95 {out['p95_s']} "
              f"(95% CI {out['p95_ci95_s']}), accuracy {out['accuracy']}", file=sys.stderr, flush=True)
        return out

    def find_rate(self) -> dict:
        """Largest rate whose plain-router p95 is within the SLO: doubling from --start-rate
        while it holds (halving while it does not), then bisecting between the last rate
        that held and the first that did not."""
        a, trace = self.args, []

        def holds(r):
            s = self.window(r, a.search_window_s, False, None, salt=len(trace) + 1, repeats=a.search_repeats)
            trace.append(s)
            return s["p95_s"] is not None and s["p95_s"] <= self.slo and s["server_5xx"] == 0 and s["lost"] == 0

        good, bad, r = None, None, a.start_rate
        if holds(r):
            good = r
            while good * 2 <= a.max_rate and holds(good * 2):
                good *= 2
            bad = good * 2 if good * 2 <= a.max_rate else None
        else:
            bad = r
            while bad / 2 >= a.min_rate:
                if holds(bad / 2):
                    good = bad / 2
                    break
                bad /= 2
        if good is None:
            return {"sustained_rate_per_s": bad, "note": "even --min-rate exceeded the SLO", "trace": trace}
        for _ in range(a.bisect_steps if bad else 0):
            mid = (good + bad) / 2
            if holds(mid):
                good = mid
            else:
                bad = mid
        # Near capacity p95 rises as a cliff, so one lucky pair of windows can pass a rate the
        # plain router does not sustain (session 12: 8 req/s passed, then took 4.5 s at 1x).
        # The rate must hold again on fresh windows; each failure steps down by a fifth.
        confirmations = 0
        while confirmations < a.confirm_tries and good >= a.min_rate:
            confirmations += 1
            if holds(good):
                return {"sustained_rate_per_s": good, "confirmed": True, "trace": trace}
            good *= 0.8
        return {"sustained_rate_per_s": good, "confirmed": False, "trace": trace}

    def run(self) -> dict:
        a = self.args
        self.setup()
        preset = self.cfg.preset(None)
        static = (best_static(a.val_labels, preset.lambda_tokens, preset.lambda_latency) if a.static is None
                  else {"strategy": a.static, "given": True})
        self.window(1.0, 4, False, None, salt=0)  # warm-up
        t0 = time.perf_counter()
        found = self.find_rate() if a.rate is None else {"sustained_rate_per_s": a.rate, "given": True}
        rate = found["sustained_rate_per_s"]
        routers = {"a_load_aware": (True, None), "b_load_awareness_off": (False, None),
                   "c_best_static": (False, static["strategy"])}
        routers = {k: v for k, v in routers.items() if k[0] in a.routers}
        ramp = {name: [] for name in routers}
        # Each router sees the load rise, as a deployment would; switching routers restarts
        # the load-aware estimates (a changed load_control), so none inherits another's.
        for name, (aware, strategy) in routers.items():
            if a.router_warmup_s > 0:  # unrecorded: the estimates a switch restarted settle first
                self.window(rate * min(a.levels), a.router_warmup_s, aware, strategy, salt=500)
            for k, mult in enumerate(a.levels):
                s = self.window(rate * mult, a.window_s, aware, strategy, salt=1000 + k,  # same queries per level
                                repeats=a.repeats)
                s["load_multiple"] = mult
                ramp[name].append(s)
        import ray
        from ray import serve

        serve.shutdown()
        ray.shutdown()  # before the JSON is printed: no late Ray log lines on stdout
        out = {"slo_p95_s": self.slo, "preset": self.cfg.default_preset,
                "budget_fraction": self.cfg.load_control.slo_budget_fraction,
                "repeats": a.repeats, "router_warmup_s": a.router_warmup_s, "pool_replicas": a.pool_replicas,
                "cpu_count": len(os.sched_getaffinity(0)),
                **{f: (getattr(a, f) if getattr(a, f) is not None else getattr(self.cfg.load_control, f))
                   for f in OVERRIDES},
                "best_static": static,
                "rate_search": found, "ramp": ramp, "bar": bar(ramp, a.levels, self.slo),
                "wall_s": time.perf_counter() - t0}
        if 2.0 in a.levels and 0.5 in a.levels:
            from benchmarks.load_bound import bound, offline_curves

            # what the engines' token throughput leaves for any router at 2x (an optimistic bound);
            # a failure here (another grid's labels, a featurizer that will not load) must not lose the ramp
            try:
                out["accuracy_bound_at_2x"] = bound(out, offline_curves(str(self.cfg.artifact_path()), a.val_labels,
                                                                        str(self.cfg.recipe)), 2.0)
            except Exception as exc:  # noqa: BLE001 - reported in the result instead
                out["accuracy_bound_at_2x"] = {"error": repr(exc)}
        return out


def bar(ramp: dict, levels: list[float], slo: float) -> dict:
    if 2.0 not in levels or 0.5 not in levels or len(ramp) < 3:
        return {"checked": False, "why": "the bar needs the 0.5x and 2x levels and all three routers"}
    at = {name: {s["load_multiple"]: s for s in rows} for name, rows in ramp.items()}
    a2, a05 = at["a_load_aware"][2.0], at["a_load_aware"][0.5]

    def over(s):
        return s["p95_s"] is None or s["p95_s"] > slo

    return {"checked": True,
            "a_p95_within_slo_at_2x": a2["p95_s"] is not None and a2["p95_s"] <= slo,
            "a_accuracy_2x_over_0_5x": a2["accuracy"] / a05["accuracy"] if a05["accuracy"] else None,
            "a_accuracy_at_least_90pct": bool(a05["accuracy"] and a2["accuracy"] >= 0.9 * a05["accuracy"]),
            "b_exceeds_slo_at_2x": over(at["b_load_awareness_off"][2.0]),
            "c_exceeds_slo_at_2x": over(at["c_best_static"][2.0]),
            "no_5xx": all(s["server_5xx"] == 0 for rows in ramp.values() for s in rows),
            "none_lost": all(s["lost"] == 0 for rows in ramp.values() for s in rows)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--router-config", default="cluster/serve/router_cpu.yaml")
    ap.add_argument("--serve-config", default=CPU_SERVE_CONFIG)
    ap.add_argument("--val-labels", default="runs/demo/labels/labels_val.parquet")
    ap.add_argument("--window-s", type=float, default=30.0, help="seconds of arrivals per (router, load)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="windows pooled per (router, load): one 30-s window's ratio moves by +-0.1")
    ap.add_argument("--search-window-s", type=float, default=20.0, help="seconds per rate-search window")
    ap.add_argument("--start-rate", type=float, default=2.0)
    ap.add_argument("--max-rate", type=float, default=64.0)
    ap.add_argument("--min-rate", type=float, default=0.25)
    ap.add_argument("--search-repeats", type=int, default=2,
                    help="windows pooled per rate-search step (the slowest 5%% of one 20-s window at 1.5 "
                         "req/s is 1-2 requests)")
    ap.add_argument("--bisect-steps", type=int, default=3)
    ap.add_argument("--confirm-tries", type=int, default=3,
                    help="fresh windows the found rate must hold on (stepping down by a fifth after each failure)")
    ap.add_argument("--levels", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0])
    ap.add_argument("--rate", type=float, default=None,
                    help="the 1x rate, measured before (skips the rate search)")
    ap.add_argument("--static", default=None, help="the strategy router (c) forces (default: the best "
                    "validation utility under the default preset)")
    ap.add_argument("--routers", default="abc", help="which of a (load-aware), b (awareness off), c (static)")
    ap.add_argument("--congestion-gain", type=float, default=None,
                    help="override the router config's load_control.congestion_gain")
    ap.add_argument("--congestion-target", type=float, default=None,
                    help="override the router config's load_control.congestion_target")
    ap.add_argument("--congestion-resource", choices=["latency", "work"], default=None,
                    help="override the router config's load_control.congestion_resource")
    ap.add_argument("--in-flight-queue", type=lambda v: v.lower() in ("1", "true", "on", "yes"), default=None,
                    help="override load_control.in_flight_queue (true/false)")
    ap.add_argument("--max-in-flight", type=int, default=None,
                    help="override load_control.max_in_flight (keep it below the Router's max_ongoing_requests)")
    ap.add_argument("--concurrency-fill", type=float, default=None,
                    help="override load_control.concurrency_fill (0: the admission limit is not a budget)")
    ap.add_argument("--pool-replicas", type=lambda v: None if v == "auto" else int(v), default=1,
                    help="replicas of each engine pool, fixed for the run; 'auto': the Serve config's "
                         "autoscaling (on a 2-core machine a second engine adds no cores, only its start-up)")
    ap.add_argument("--router-warmup-s", type=float, default=20.0,
                    help="seconds at the lowest level before each router's recorded windows (a switch "
                    "restarts the load-aware estimates, whose first requests would otherwise pay for it "
                    "in the 0.5x figure the bar divides by); 0: none")
    ap.add_argument("--timeout-s", type=float, default=60.0, help="client timeout (a request past it is lost)")
    ap.add_argument("--drain-s", type=float, default=5.0)
    ap.add_argument("--port", type=int, default=8766)
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="also write ramp.json and ramp.png (benchmarks/ramp_plot.py) here")
    args = ap.parse_args(argv)
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    from benchmarks import LogsToStderr

    with LogsToStderr() as out:
        result = Bench(args).run()
        if args.out:
            from benchmarks.ramp_plot import plot

            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "ramp.json").write_text(json.dumps(result, indent=2))
            plot(result, Path(args.out) / "ramp.png")
        out.emit(json.dumps(result, indent=2 if args.json else None))


if __name__ == "__main__":
    main()
