"""The admission limit as a latency budget (Little's law), so the router degrades before it sheds.

The router runs at most `max_in_flight` requests; more get 429. At an arrival rate of
r requests/s the requests in flight average r x (mean latency), so a mix of strategies
whose mean latency exceeds max_in_flight / r fills the limit and sheds, even when every
strategy in it fits the SLO's budget on its own. Measured at 2x the sustained rate (session
15): 425 of 547 sheds came from the limit, while the cheapest strategy alone would have
answered every request. A request that must fit max_in_flight x fill / r (a "soft"
budget) keeps the mix where the limit is not reached: the router serves a cheaper strategy
rather than a 429, and sheds only when even the fastest one does not fit the SLO's budget.

Pure (no Ray): `serve_app.load_control` records arrivals and passes the budget to
`probe.online_costs.choose_or_shed`.
"""

from __future__ import annotations

from collections import deque


class ArrivalRate:
    """Requests per second over the last `window_s` seconds. Every arrival counts, shed ones
    included: they are the demand the limit has to hold, and not counting them would make
    the rate fall exactly when the router sheds."""

    def __init__(self, window_s: float = 2.0, min_arrivals: int = 4):
        if window_s <= 0 or min_arrivals < 1:
            raise ValueError(f"arrival rate needs window_s > 0 and min_arrivals >= 1; got {window_s}, {min_arrivals}")
        self.window_s, self.min_arrivals = float(window_s), int(min_arrivals)
        self._times: deque[float] = deque()

    def arrive(self, now: float) -> None:
        self._times.append(now)
        self._expire(now)

    def rate(self, now: float) -> float | None:
        """Arrivals per second in the window ending `now`; None on too few to tell (a quiet
        router has no limit to protect)."""
        self._expire(now)
        n = len(self._times)
        return n / self.window_s if n >= self.min_arrivals else None

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()


def concurrency_budget_s(rate: float | None, max_in_flight: int, fill: float) -> float | None:
    """The mean latency at which `rate` arrivals/s keep `fill` x `max_in_flight` requests in
    flight (Little's law), or None (no rate yet, or fill 0: the limit alone)."""
    if rate is None or rate <= 0 or fill <= 0:
        return None
    return fill * max_in_flight / rate
