"""The demand-aware autoscaling policy as pure logic (contexts built by hand)."""

from types import SimpleNamespace

from serve_app.autoscaling import DemandPolicy
from serve_app.demand import DemandTracker


def ctx(name, requests=0.0, metrics=None, lo=1, hi=4):
    return SimpleNamespace(total_num_requests=requests, aggregated_metrics=metrics or {},
                           capacity_adjusted_min_replicas=lo, capacity_adjusted_max_replicas=hi,
                           config=SimpleNamespace(get_target_ongoing_requests=lambda: 8))


def ids(*names):
    from ray.serve._private.common import DeploymentID

    return {n: DeploymentID(name=n, app_name="latte") for n in names}


def decide(router_metrics, policy_requests=0.0, prm_requests=0.0):
    d = ids("Router", "PolicyPool", "PRMPool")
    ctxs = {d["Router"]: ctx("Router", metrics=router_metrics),
            d["PolicyPool"]: ctx("PolicyPool", policy_requests),
            d["PRMPool"]: ctx("PRMPool", prm_requests)}
    out, _ = DemandPolicy(policy_tokens_per_s=4000, prm_steps_per_s=400)(ctxs)
    return out[d["PolicyPool"]], out[d["PRMPool"]]


def test_beam_heavy_demand_grows_prm_pool_only():
    table = [{"strategy": "majority/n=1", "method": "majority", "predicted_tokens": 60.0},
             {"strategy": "beam_search/n=16/m=4/it=10", "method": "beam_search", "predicted_tokens": 1500.0}]
    cheap, heavy = DemandTracker(table), DemandTracker(table)
    for _ in range(40):
        cheap.routed("majority/n=1")
        heavy.routed("beam_search/n=16/m=4/it=10")
    rc, rh = cheap.rates(), heavy.rates()
    assert rc["prm_steps_per_s"] == 0 and rh["prm_steps_per_s"] > 400
    as_metrics = lambda r: {k: {"replica-1": v} for k, v in r.items()}  # noqa: E731
    assert decide(as_metrics(rc)) == (1, 1)
    policy_n, prm_n = decide(as_metrics(rh))
    assert prm_n >= 2 and prm_n <= 4


def test_queue_length_still_counts_and_bounds_hold():
    assert decide({}, policy_requests=40) == (4, 1)  # 40 queued / target 8 = 5, capped at max 4
    assert decide({"prm_steps_per_s": {"r": 1e9}}) == (1, 4)
