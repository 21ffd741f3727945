"""The router's load-aware decisions: admission, served-cost estimates, queue polling, shedding.

Thin Ray-facing glue around `probe.online_costs` (the logic): it polls the pools'
`load_stats` every `stats_poll_s` (never per request), keeps the requests in flight
(bounded, and with the work each still has, for the in-flight queue estimate), and
turns "nothing fits the latency budget" into `Overloaded` (HTTP 429 + Retry-After,
OpenAI's error shape).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from probe.concurrency import ArrivalRate, concurrency_budget_s
from probe.online_costs import POOLS, CongestionPrice, InFlight, OnlineCosts, PoolStats, QueueModel, Verdict, \
    choose_or_shed, learn_queue, pool_rounds, retry_after, shed_wait
from probe.tail_guard import TailGuard
from serve_app.load_metrics import LoadMetrics

logger = logging.getLogger("ray.serve")


class Overloaded(HTTPException):
    """429 with Retry-After: the request was shed (too many in flight, or no strategy fits)."""

    def __init__(self, message: str, retry_after_s: int, reason: str):
        super().__init__(429, message, headers={"Retry-After": str(int(retry_after_s))})
        self.reason = reason


async def overloaded_response(request: Request, exc: Overloaded) -> JSONResponse:
    return JSONResponse(status_code=429, headers=exc.headers, content={"error": {
        "message": exc.detail, "type": "rate_limit_error", "param": None, "code": "overloaded"}})


class LoadControl:
    def __init__(self, cfg, grid, strategy_table: list[dict], pools: dict):
        """cfg: probe.router_config.LoadControl; strategy_table: Decider.strategy_table() rows;
        pools: {"policy": handle, "prm": handle} with a `load_stats` method."""
        self.cfg, self.pools = cfg, pools
        ids = [r["strategy"] for r in strategy_table]
        self.costs = OnlineCosts(ids, [r["predicted_tokens"] for r in strategy_table],
                                 [r["predicted_latency_s"] for r in strategy_table],
                                 [pool_rounds(grid[s]) for s in ids], alpha=cfg.ewma_alpha,
                                 latency_sd_s=[r.get("latency_sd_s") for r in strategy_table])
        self.queues = QueueModel()
        self.running = InFlight()
        self.congestion = CongestionPrice(cfg.congestion_gain, cfg.congestion_target, cfg.congestion_max_price,
                                          resource=cfg.congestion_resource)
        self.metrics = LoadMetrics()
        self.arrivals = ArrivalRate(cfg.arrival_window_s)
        self.guard = TailGuard(cfg.slo_guard_gain, cfg.slo_guard_target, cfg.slo_guard_window_s,
                               min_scale=cfg.slo_guard_min_scale)
        self.in_flight = 0
        self._poller: asyncio.Task | None = None
        self._read: asyncio.Task | None = None

    # --- admission -------------------------------------------------------------------
    @contextlib.contextmanager
    def admitted(self):
        """Hold one of `max_in_flight` slots for the request's lifetime, or shed it. Yields
        the slot: `start` puts the chosen strategy's work in the in-flight set, which the
        slot leaves when the request ends, however it ends."""
        self.arrivals.arrive(time.perf_counter())
        if self.in_flight >= self.cfg.max_in_flight:
            self.metrics.shed_request("admission")
            wait = max(self.queues.delays(time.perf_counter()).values(), default=0.0)
            raise Overloaded(f"the router is running {self.in_flight} requests, its limit; retry later",
                             retry_after(wait), "admission")
        self._ensure_poller()
        self.in_flight += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            self.in_flight -= 1
            if slot.key is not None:
                self.running.finish(slot.key)

    # --- decisions -------------------------------------------------------------------
    def budget(self, max_latency_s: float | None, slo_p95_s: float | None) -> tuple[float | None, float | None]:
        """(mean budget, tail budget): a request's own budget as given, on the mean; else the
        SLO's p95 scaled to what a mean may use, and the p95 itself for the tail."""
        if max_latency_s is not None:
            return float(max_latency_s), None
        if not slo_p95_s:
            return None, None
        return slo_p95_s * self.cfg.slo_budget_fraction, float(slo_p95_s)

    def delivered(self, latency_s: float, slo_p95_s: float | None) -> None:
        """A request the SLO's budget governed was served in `latency_s`: the guard learns its tail."""
        if slo_p95_s:
            self.metrics.slo_guard(self.guard.observe(latency_s / slo_p95_s, time.perf_counter()))

    def choose(self, acc_row: np.ndarray, lambda_tokens: float, lambda_latency: float,
               max_tokens: float | None, budget_s: float | None, allowed: np.ndarray | None = None,
               tail_budget_s: float | None = None) -> Verdict:
        now = time.perf_counter()
        delays, floor = self._queues_now(now)
        rate = self.arrivals.rate(now)
        soft = concurrency_budget_s(rate, self.cfg.max_in_flight, self.cfg.concurrency_fill)
        v = choose_or_shed(acc_row, self.costs, delays, lambda_tokens, lambda_latency,
                           max_tokens, budget_s, queue_floor=floor, allowed=allowed,
                           congestion=self.congestion if self.cfg.congestion_gain > 0 else None, now=now,
                           tokens_per_s=self.queues.rate.get("policy"), tail_budget_s=tail_budget_s,
                           tail_z=self.cfg.slo_tail_z, soft_budget_s=soft,
                           guard_scale=self.guard.scale if tail_budget_s is not None else 1.0)
        self.metrics.congestion_price(self.congestion.price)
        self.metrics.admission(rate, soft)
        return v

    def _queues_now(self, now: float | None = None) -> tuple[dict[str, float], np.ndarray]:
        """The pools' drained delays and the in-flight floor [S], as of `now` (default: now)."""
        now = time.perf_counter() if now is None else now
        floor = self.running.delay(self.costs.service_s, now) if self.cfg.in_flight_queue else None
        return self.queues.delays(now), floor

    def served_table(self) -> dict[str, dict]:
        """What a request arriving now is predicted to cost, per strategy: the online
        service estimate plus the current queue (pools' and in-flight)."""
        tok, lat, queue = self.costs.predict(*self._queues_now())
        tail = lat + self.costs.tail_margin_s(self.cfg.slo_tail_z, queue)
        return {sid: {"served_tokens": float(tok[j]), "served_latency_s": float(lat[j]),
                      "served_tail_s": float(tail[j]), "served_queue_s": float(queue[j])}
                for j, sid in enumerate(self.costs.ids)}

    def served_prediction(self, sid: str) -> dict:
        """What a request starting `sid` now is predicted to take served (online service +
        queue), the queue part, and the pools' raw part: what its observation is learned
        against, whether or not the decision used it (awareness off decides on the
        artifact's costs, but its requests still wait in the queues, so the service estimate
        must not absorb the queue)."""
        now = time.perf_counter()
        j = self.costs.index[sid]
        delays, floor = self._queues_now(now)
        _, lat, queue = self.costs.predict(delays, floor)
        return {"latency_s": float(lat[j]), "queue_s": float(queue[j]),
                "pool_queue_raw_s": float(self.pool_queue_raw(now)[j])}

    def stats_are_stale(self) -> bool:
        return self.queues.age_s(time.perf_counter()) > self.cfg.confirm_shed_after_s

    def pool_queue_raw(self, now: float | None = None) -> np.ndarray:
        """[S] the pools' queue each strategy would wait, before the learned scale."""
        now = time.perf_counter() if now is None else now
        return self.costs.queue_s(self.queues.delays(now, raw=True))

    def observe(self, sid: str, result, latency_s: float, predicted_tokens: float, predicted_latency_s: float,
                queue_s: float, slot: "Slot | None" = None, pool_queue_raw_s: float | None = None) -> None:
        key = slot.key if slot is not None else None
        excess = latency_s - float(self.costs.service_s[self.costs.index[sid]])  # before the service moves
        if self.cfg.in_flight_queue:
            learn_queue(self.queues, self.running, key, excess, pool_queue_raw_s, latency_s)
        else:  # the pools' term alone sets every prediction
            if pool_queue_raw_s is not None:
                self.queues.learn(excess, pool_queue_raw_s)
            if key is not None:
                self.running.finish(key)
        self.metrics.queue_scale(self.queues.scale, self.running.beta)
        if slot is not None:
            slot.key = None
        iters = result.trace.get("iterations")
        rounds = {"policy": float(iters), "prm": float(iters)} if isinstance(iters, (int, float)) else None
        self.costs.observe(sid, result.tokens, latency_s, predicted_tokens, predicted_latency_s, queue_s, rounds)
        self.metrics.cost_errors(self.costs.errors())
        self.metrics.queue_relative_spread(float(np.sqrt(self.costs.queue_rel_var)))

    # --- pool stats ------------------------------------------------------------------
    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _read_pools(self) -> None:
        for pool in POOLS:
            try:
                s = await asyncio.wait_for(self.pools[pool].load_stats.remote(), timeout=2.0)
                self.queues.update(pool, PoolStats(s["pending_work"], s["work_done"], s["busy_s"]),
                                   time.perf_counter())
            except Exception as exc:  # a pool restarting: keep the last estimate
                logger.debug("load_stats of %s failed: %s", pool, exc)
        self.metrics.queue_delays(self.queues.delays())

    async def refresh(self) -> None:
        """Read the pools' stats now; requests asking at once share one read."""
        if self._read is None or self._read.done():
            self._read = asyncio.get_running_loop().create_task(self._read_pools())
        await asyncio.shield(self._read)

    async def _poll(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.cfg.stats_poll_s)

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()


class Slot:
    """A request's place in the router: its key in the in-flight set once it has a strategy."""

    def __init__(self, load: LoadControl):
        self.load, self.key = load, None

    def start(self, sid: str, total_s: float) -> None:
        """The request runs `sid`, predicted to take `total_s`: count its work as in flight."""
        costs = self.load.costs
        j = costs.index[sid]
        now = time.perf_counter()
        x = costs.service_s[j:j + 1]
        self.key = self.load.running.start(now, float(x[0]), max(float(total_s), float(x[0])),
                                           float(self.load.running.interference(x, now)[0]))


async def decide_row(load: LoadControl, ids: list[str], acc, tok, lat, knobs: dict, slo_p95_s: float | None,
                     forced: str | None = None, top_k: int = 5, allowed: np.ndarray | None = None) -> dict:
    """One request's decision from its probe rows (acc/tok/lat: [S], the artifact's costs).

    Load-aware: served costs (online service + queue) against the budget, shedding when
    nothing fits (a forced strategy too, when it cannot fit); a shed on stale pool stats is
    decided again on a fresh read. Off: the artifact's costs and `select`'s budget rule, as
    before (never sheds)."""
    args = (load, ids, acc, tok, lat, knobs, slo_p95_s, forced, top_k, allowed)
    try:
        try:
            return _decide_once(*args)
        except Overloaded:
            if not load.stats_are_stale():
                raise
        await load.refresh()
        return _decide_once(*args)
    except Overloaded as exc:
        load.metrics.shed_request(exc.reason)
        raise


def _decide_once(load: LoadControl, ids: list[str], acc, tok, lat, knobs: dict, slo_p95_s: float | None,
                 forced: str | None, top_k: int, allowed: np.ndarray | None) -> dict:
    from probe.selection import select

    lt, ll = knobs.get("lambda_tokens", 0.0), knobs.get("lambda_latency", 0.0)
    budget = None
    if load.cfg.aware:
        budget, tail_budget = load.budget(knobs.get("max_latency_s"), slo_p95_s)
        v = load.choose(np.asarray(acc), lt, ll, knobs.get("max_tokens"), budget, allowed, tail_budget)
        if v.index is None:
            raise Overloaded(v.reason, v.retry_after_s, "budget")
        tok, lat, queue, feasible, j = v.tokens, v.latency_s, v.queue_s, v.feasible, v.index
        admission = {"admission_budget_s": v.soft_budget_s, "preference_fit": v.preference_fit,
                     "slo_guard_scale": load.guard.scale if tail_budget is not None else None}
    else:
        sel = select(np.asarray(acc)[None, :], tok, lat, lt, ll, knobs.get("max_tokens"), knobs.get("max_latency_s"),
                     allowed)
        queue, feasible, j = np.zeros(len(ids)), bool(sel.feasible[0]), int(sel.index[0])
        admission = {"admission_budget_s": None, "preference_fit": None, "slo_guard_scale": None}
    if forced is not None:
        j = ids.index(forced)
        if budget is not None and lat[j] > budget:
            wait = shed_wait(float(lat[j]), float(queue[j]), budget)
            raise Overloaded(f"strategy {forced} is predicted to take {lat[j]:.3g} s ({queue[j]:.3g} s of it "
                             f"queueing), over the {budget:.3g} s budget", retry_after(wait), "budget")
    u = np.asarray(acc) - lt * tok - ll * lat
    with np.errstate(invalid="ignore"):
        order = np.argsort(-np.nan_to_num(u, nan=-np.inf, neginf=-1e300), kind="stable")[:top_k]
    top = [{"strategy": ids[k], "utility": float(u[k]) if np.isfinite(u[k]) else None,
            "predicted_accuracy": float(acc[k]), "predicted_tokens": float(tok[k]),
            "predicted_latency_s": float(lat[k])} for k in order]
    return {"strategy": ids[j], "predicted_accuracy": float(acc[j]), "predicted_tokens": float(tok[j]),
            "predicted_latency_s": float(lat[j]), "predicted_queue_s": float(queue[j]), "feasible": feasible,
            "top": top, **admission}
