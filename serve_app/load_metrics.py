"""Prometheus series of the load-aware path (`ray.util.metrics`): shed requests, the
queue-delay estimate per pool, its learned scale and relative spread, the congestion price,
the arrival rate and the admission limit's latency budget, the SLO guard's scale, and the online cost estimate's error.

Kept apart from the router's other metrics so both can change independently; outside a
Ray worker (unit tests) every method is a no-op.
"""

from __future__ import annotations


class LoadMetrics:
    def __init__(self):
        try:
            from ray.util.metrics import Counter, Gauge

            self.shed = Counter("latte_shed_requests", "requests refused with 429, by reason (admission|budget)",
                                tag_keys=("reason",))
            self.queue_delay = Gauge("latte_queue_delay_seconds", "estimated queueing delay per pool",
                                     tag_keys=("pool",))
            self.price = Gauge("latte_congestion_price", "the load-aware router's congestion price "
                               "(accuracy per budget-length of latency; 0 when unloaded or off)")
            self.arrival_rate = Gauge("latte_arrival_rate", "requests per second arriving at the router "
                                      "(shed ones included), over load_control.arrival_window_s")
            self.soft_budget = Gauge("latte_concurrency_budget_seconds", "mean latency that keeps the "
                                     "admission limit unfilled at the arrival rate (0: no rate yet or off)")
            self.guard = Gauge("latte_slo_guard_scale", "share of the SLO budget the tail guard leaves "
                               "(below 1 while the delivered p95 has run over the SLO)")
            self.scale = Gauge("latte_queue_scale", "learned scale of the pools' queue-delay estimate "
                               "(observed wait beyond service / pending work over busy rate)")
            self.rel_spread = Gauge("latte_queue_relative_spread", "learned spread of the wait around the "
                                    "predicted queue, as a share of it (the tail the SLO budget leaves room for)")
            self.beta = Gauge("latte_in_flight_scale", "learned scale of the running requests' queue term "
                              "(observed wait beyond service / processor-sharing interference)")
            self.cost_error = Gauge("latte_online_cost_error",
                                    "running mean abs relative error of predicted vs observed served cost",
                                    tag_keys=("quantity",))
            self.enabled = True
        except Exception:
            self.enabled = False

    def shed_request(self, reason: str) -> None:
        if self.enabled:
            self.shed.inc(tags={"reason": reason})

    def queue_delays(self, delays: dict[str, float]) -> None:
        if self.enabled:
            for pool, s in delays.items():
                self.queue_delay.set(s, tags={"pool": pool})

    def congestion_price(self, price: float) -> None:
        if self.enabled:
            self.price.set(price)

    def admission(self, rate: float | None, budget_s: float | None) -> None:
        if self.enabled:
            self.arrival_rate.set(rate or 0.0)
            self.soft_budget.set(budget_s or 0.0)

    def slo_guard(self, scale: float) -> None:
        if self.enabled:
            self.guard.set(scale)

    def queue_scale(self, scale: float, beta: float) -> None:
        if self.enabled:
            self.scale.set(scale)
            self.beta.set(beta)

    def queue_relative_spread(self, rho: float) -> None:
        if self.enabled:
            self.rel_spread.set(rho)

    def cost_errors(self, errors: dict) -> None:
        if self.enabled:
            self.cost_error.set(errors["latency_mean_relative_error"], tags={"quantity": "latency"})
            self.cost_error.set(errors["tokens_mean_relative_error"], tags={"quantity": "tokens"})
