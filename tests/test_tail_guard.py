"""The SLO guard: the delivered p95 (as a share of the SLO) shrinks the budget while it runs
over the target and lets it grow back once under."""

import time

import numpy as np
import pytest

from probe.tail_guard import TailGuard


def feed(guard, t0, seconds, rate, p95_share, rng):
    """`rate` requests/s for `seconds`; latencies whose p95 is about `p95_share` of the SLO."""
    t = t0
    for _ in range(int(seconds * rate)):
        t += 1.0 / rate
        guard.observe(float(rng.uniform(0, p95_share / 0.95)), t)
    return t


def test_too_few_requests_leave_the_budget_alone():
    g = TailGuard(min_samples=40)
    for k in range(39):
        g.observe(3.0, k * 0.1)  # far over the SLO, but only 39 requests
    assert g.scale == 1.0 and g.p95(3.9) is None


def test_a_tail_over_the_slo_shrinks_the_budget_to_its_floor_and_it_recovers():
    rng = np.random.default_rng(0)
    g = TailGuard(gain=0.1, target=0.95, window_s=15.0, min_scale=0.5)
    t = feed(g, 0.0, 20, 8, 1.05, rng)  # delivered p95 5% over the SLO
    assert g.p95(t) == pytest.approx(1.05, abs=0.05)
    over = g.scale
    assert 0.8 < over < 0.95  # about 0.1 x (1.05 - 0.95) per second, for ~15 s once it can tell
    t = feed(g, t, 200, 8, 3.0, rng)  # far over, for long: held at the floor
    assert g.scale == 0.5
    t = feed(g, t, 60, 8, 0.5, rng)  # well under: back to the whole budget
    assert g.scale == 1.0


def test_under_the_target_the_budget_is_never_raised_above_the_slos():
    rng = np.random.default_rng(1)
    g = TailGuard()
    feed(g, 0.0, 30, 8, 0.6, rng)
    assert g.scale == 1.0


def test_a_quiet_spell_counts_as_one_step_at_most():
    g = TailGuard(gain=0.1, min_samples=2, window_s=1000.0)
    g.observe(1.95, 0.0)
    g.observe(1.95, 0.1)
    before = g.scale
    g.observe(1.95, 500.0)  # 500 s of nothing: one max_step_s (1 s) of the 1.0 excess
    assert before - g.scale == pytest.approx(0.1 * 1.0 * 1.0, abs=1e-9)


def test_bad_settings_are_refused():
    for kw in ({"gain": -1}, {"target": 0}, {"target": 1.5}, {"window_s": 0}, {"min_scale": 0}):
        with pytest.raises(ValueError):
            TailGuard(**kw)


def test_the_guard_moves_the_router_cheaper_without_shedding():
    from probe.router_config import LoadControl as Cfg
    from serve_app.load_control import LoadControl
    from ttc.grid import StrategySpec

    ids = ["majority/n=1", "weighted_best_of_n/n=8", "beam_search/n=8/m=2/it=10"]
    table = [{"strategy": s, "predicted_tokens": t, "predicted_latency_s": lat}
             for s, t, lat in zip(ids, [60, 500, 900], [0.1, 0.3, 0.8])]
    load = LoadControl(Cfg(slo_tail_z=0.0), {s: StrategySpec.from_id(s) for s in ids}, table, pools={})
    acc = np.array([0.5, 0.8, 0.9])
    budget, tail = load.budget(None, 2.0)
    assert (budget, tail) == pytest.approx((1.4, 2.0))  # the budget itself stays the SLO's
    assert load.choose(acc, 0.0, 0.0, None, budget, tail_budget_s=tail).index == 2
    load.guard.scale = 0.5  # the beam's 0.8 s is over 0.5 x 1.4 s: n=8 instead
    v = load.choose(acc, 0.0, 0.0, None, budget, tail_budget_s=tail)
    assert v.index == 1 and v.preference_fit
    load.guard.scale = 0.05  # nothing fits 0.07 s: the fastest is served, not shed
    v = load.choose(acc, 0.0, 0.0, None, budget, tail_budget_s=tail)
    assert v.index == 0 and v.preference_fit is False
    # A request's own budget (no tail budget) is not the guard's business.
    assert load.choose(acc, 0.0, 0.0, None, 1.4).index == 2
    load.guard.scale = 1.0
    for _ in range(60):  # requests over the SLO, fed through the router's hook
        load.delivered(2.4, 2.0)
    assert load.guard.p95(time.perf_counter()) == pytest.approx(1.2) and load.guard.scale < 1.0
