"""Demand-aware autoscaling for the two engine pools (a Serve application-level policy).

The router knows, for every strategy it picks, the expected policy tokens and
PRM step-scorings it will cause (cost tables); it publishes that demand as
custom autoscaling metrics. This policy sizes each pool for the larger of
(a) its queue (Serve's usual ongoing-requests target) and (b) the routed demand
divided by what one replica sustains. So a burst of beam-search-heavy traffic
grows the PRM pool while a burst of single samples does not.
"""

from __future__ import annotations

import math

# What one replica sustains, per pool (CPU world defaults; the GPU config overrides them).
DEFAULT_CAPACITY = {"PolicyPool": ("policy_tokens_per_s", 4000.0),
                    "PRMPool": ("prm_steps_per_s", 400.0)}


def _router_demand(ctxs, metric: str) -> float:
    for dep_id, ctx in ctxs.items():
        if dep_id.name == "Router":
            return float(sum(ctx.aggregated_metrics.get(metric, {}).values()))
    return 0.0


def _queue_replicas(ctx) -> float:
    target = ctx.config.get_target_ongoing_requests()
    return ctx.total_num_requests / max(target, 1e-9)


def demand_policy(ctxs, capacity: dict | None = None):
    """App-level policy: {deployment id: desired replicas} for the two pools."""
    caps = {**DEFAULT_CAPACITY, **(capacity or {})}
    decisions, states = {}, {}
    for dep_id, ctx in ctxs.items():
        if dep_id.name not in caps:
            continue
        metric, per_replica = caps[dep_id.name]
        demand = _router_demand(ctxs, metric)
        by_demand = demand / per_replica if per_replica > 0 else 0.0
        desired = max(math.ceil(by_demand), math.ceil(_queue_replicas(ctx)), ctx.capacity_adjusted_min_replicas)
        decisions[dep_id] = min(desired, ctx.capacity_adjusted_max_replicas)
        states[dep_id] = {"demand": demand, "by_demand": by_demand}
    return decisions, states


class DemandPolicy:
    """Class form so per-pool capacities can come from the Serve config (policy_kwargs)."""

    def __init__(self, policy_tokens_per_s: float = 4000.0, prm_steps_per_s: float = 400.0):
        self.capacity = {"PolicyPool": ("policy_tokens_per_s", policy_tokens_per_s),
                         "PRMPool": ("prm_steps_per_s", prm_steps_per_s)}

    def __call__(self, ctxs):
        return demand_policy(ctxs, self.capacity)
