"""What the router's choices will cost the pools, published for autoscaling and metrics."""

from __future__ import annotations

import time


class DemandTracker:
    """Expected policy tokens and PRM step-scorings per second of the traffic routed.

    Expected costs per strategy start from the cost table (tokens) and a rough
    PRM estimate, then follow what the strategy actually used (running mean)."""

    def __init__(self, strategy_table: list[dict], window_s: float = 10.0):
        self.window_s = window_s
        self.tokens = {r["strategy"]: r["predicted_tokens"] for r in strategy_table}
        # One PRM step per ~12 generated tokens for PRM methods until measured.
        self.prm_steps = {r["strategy"]: (0.0 if r["method"] == "majority" else r["predicted_tokens"] / 12)
                          for r in strategy_table}
        self.events: list[tuple[float, float, float]] = []
        self.counts: dict[str, int] = {}
        self._counter = None
        try:
            from ray.serve.metrics import Counter

            self._counter = Counter("latte_strategy_requests", description="requests routed per strategy",
                                    tag_keys=("strategy",))
        except Exception:  # outside a Serve replica (unit tests)
            self._counter = None

    def routed(self, sid: str) -> None:
        self.events.append((time.monotonic(), self.tokens.get(sid, 0.0), self.prm_steps.get(sid, 0.0)))
        self.counts[sid] = self.counts.get(sid, 0) + 1
        if self._counter is not None:
            self._counter.inc(tags={"strategy": sid})

    def observed(self, sid: str, result) -> None:
        steps = float(result.trace.get("prm_steps", self.prm_steps.get(sid, 0.0)))
        self.tokens[sid] = 0.8 * self.tokens.get(sid, result.tokens) + 0.2 * result.tokens
        self.prm_steps[sid] = 0.8 * self.prm_steps.get(sid, steps) + 0.2 * steps

    def rates(self) -> dict:
        now = time.monotonic()
        self.events = [e for e in self.events if now - e[0] <= self.window_s]
        return {"policy_tokens_per_s": sum(e[1] for e in self.events) / self.window_s,
                "prm_steps_per_s": sum(e[2] for e in self.events) / self.window_s,
                "requests_per_s": len(self.events) / self.window_s}
