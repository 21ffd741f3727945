"""Closing the loop on the latency SLO: the p95 the router delivered, against the p95 it promised.

The SLO budget is checked on predictions (service + queue + z x spread). Under load those
predictions run short where the queue is hardest to foresee (beam search waits the pools once
per iteration, escalation's second stage waits again), so the delivered p95 can pass the SLO
while every request fitted its predicted tail: at 2x on the session-16 ramp, p95 2.05 s
against 2.0 s, with beam search in 15 of the 27 requests over it. The guard measures the
p95 of the requests the SLO governed over the last `window_s` and integrates its excess over
`target` x SLO into a scale: while the delivered tail runs over, the router prefers strategies
whose checked latency fits scale x the budget (`probe.online_costs.choose_or_shed`), and the
scale grows back to 1 once it is under. A preference, not a smaller budget: scaling the budget
itself shed 646 of 738 requests at 4x (session 16), where even the fastest strategy's predicted
tail passed the scaled budget. Latencies come in as shares of the SLO, so a reload
that changes the SLO keeps the guard meaningful. Pure (no Ray); `serve_app.load_control`
feeds it.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class TailGuard:
    def __init__(self, gain: float = 0.1, target: float = 0.95, window_s: float = 15.0,
                 min_samples: int = 40, min_scale: float = 0.5, max_step_s: float = 1.0):
        if gain < 0 or not 0 < target <= 1 or window_s <= 0 or not 0 < min_scale <= 1:
            raise ValueError(f"tail guard needs gain >= 0, 0 < target <= 1, window_s > 0, 0 < min_scale <= 1; "
                             f"got {gain}, {target}, {window_s}, {min_scale}")
        self.gain, self.target, self.window_s = gain, target, window_s
        self.min_samples, self.min_scale, self.max_step_s = int(min_samples), min_scale, max_step_s
        self.scale = 1.0
        self._seen: deque[tuple[float, float]] = deque()
        self._t: float | None = None

    def p95(self, now: float) -> float | None:
        """The p95 latency over the window as a share of the SLO, or None on too few requests."""
        while self._seen and self._seen[0][0] < now - self.window_s:
            self._seen.popleft()
        if len(self._seen) < self.min_samples:
            return None
        return float(np.percentile([lat for _, lat in self._seen], 95))

    def observe(self, latency_over_slo: float, now: float) -> float:
        """One served request's latency (as a share of the SLO) at time `now`; returns the
        budget scale then. A gap between observations counts for at most `max_step_s` (a
        quiet spell is no evidence)."""
        self._seen.append((now, float(latency_over_slo)))
        p95 = self.p95(now)
        if p95 is not None and self._t is not None and self.gain > 0:
            dt = min(max(0.0, now - self._t), self.max_step_s)
            err = p95 - self.target
            self.scale = min(1.0, max(self.min_scale, self.scale - self.gain * dt * err))
        self._t = now
        return self.scale
