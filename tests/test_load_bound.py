"""The 2x accuracy bound of benchmarks/load_bound.py: capacity from the ramp, affordable tokens,
the curve's accuracy within them, and which strategies count as one engine round."""

import pytest

from benchmarks.load_bound import bound, capacity_tokens_per_s, one_round


def window(mult, ok, tokens, accuracy, window_s=60.0):
    return {"load_multiple": mult, "ok_200": ok, "mean_tokens": tokens, "accuracy": accuracy, "window_s": window_s}


RAMP = {"rate_search": {"sustained_rate_per_s": 10.0},
        "ramp": {"a_load_aware": [window(0.5, 300, 200.0, 0.9), window(2.0, 900, 150.0, 0.63)],
                 "b_load_awareness_off": [window(0.5, 300, 220.0, 0.9), window(2.0, 1000, 240.0, 0.5)]}}
CURVE = [{"tokens": 60.0, "accuracy": 0.7}, {"tokens": 120.0, "accuracy": 0.8},
         {"tokens": 200.0, "accuracy": 0.9}, {"tokens": 400.0, "accuracy": 0.92}]


def test_capacity_is_the_most_tokens_per_second_any_window_answered():
    cap = capacity_tokens_per_s(RAMP["ramp"])
    assert cap["tokens_per_s"] == pytest.approx(1000 * 240 / 60)
    assert (cap["router"], cap["load_multiple"]) == ("b_load_awareness_off", 2.0)
    assert cap["saturated"] is False  # that window shed and lost nothing: capacity may be understated
    shed = {"b": [dict(window(2.0, 1000, 240.0, 0.5), shed_429=5)]}
    assert capacity_tokens_per_s(shed)["saturated"] is True


def test_bound_divides_the_curve_within_the_affordable_tokens_by_the_curve_at_a_half_load_tokens():
    out = bound(RAMP, {"all": CURVE, "one_round": CURVE[:2]}, 2.0)
    assert out["affordable_tokens_per_request"] == pytest.approx(4000 / 20)  # 4000 tokens/s over 20 req/s
    assert out["offline_accuracy_at_a_0_5x_tokens"] == pytest.approx(0.9)  # (a) served 200 tokens at 0.5x
    assert out["all"]["ratio_bound"] == pytest.approx(1.0)
    assert out["one_round"]["ratio_bound"] == pytest.approx(0.8 / 0.9)
    assert out["measured_ratio"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="positive rate"):
        bound(dict(RAMP, rate_search={"sustained_rate_per_s": 0.0}), {"all": CURVE}, 2.0)
    tight = dict(RAMP, rate_search={"sustained_rate_per_s": 20.0})  # 100 tokens each: only the 60-token point
    assert bound(tight, {"all": CURVE}, 2.0)["all"]["ratio_bound"] == pytest.approx(0.7 / 0.9)


def test_one_round_strategies_visit_each_pool_once():
    from ttc.grid import cpu_grid

    rounds = {s.id: one_round(s) for s in cpu_grid().strategies}
    assert rounds["majority/n=1"] and rounds["weighted_best_of_n/n=16"] and rounds["best_of_n/n=2"]
    assert not any(v for sid, v in rounds.items() if sid.startswith(("beam_search", "escalate")))


def cpu_window(rate, ok, tokens, other_ms, engine_cores, total_cores, window_s=60.0, mult=None):
    w = window(mult, ok, tokens, 0.5, window_s)
    w.update(rate_per_s=rate, sent=int(rate * window_s),
             cpu={"total_cores": total_cores, "other_ms_per_request": other_ms,
                  "cores": {"policy_engine": engine_cores * 0.75, "prm_engine": engine_cores * 0.25}})
    return w


def test_cpu_bound_leaves_the_engines_what_the_per_request_overhead_does_not_take():
    from benchmarks.load_bound import cpu_capacity_tokens_per_s

    ramp = {"a": [cpu_window(5.0, 300, 200.0, 40.0, 1.0, 1.4),   # 300*200/60 = 1000 tokens/s on 1 engine core
                  cpu_window(20.0, 900, 100.0, 30.0, 0.5, 1.9)],  # 1500 tokens/s on 0.5: 3000 per core
            "b": [cpu_window(20.0, 800, 120.0, 25.0, 0.6, 1.8),  # the least overhead at 20 req/s
                  cpu_window(40.0, 300, 100.0, 10.0, 0.4, 1.9)]}  # 40 req/s, mostly shed: not counted at 20
    cap = cpu_capacity_tokens_per_s(ramp, 20.0, cores=2.0)
    assert cap["overhead_ms_per_request"] == 25.0 and cap["overhead_cores"] == pytest.approx(0.5)
    assert cap["tokens_per_engine_core_s"] == pytest.approx(3000.0)
    assert cap["tokens_per_s"] == pytest.approx((2.0 - 0.5) * 3000.0)
    assert cpu_capacity_tokens_per_s(ramp, 20.0)["cores"] == 1.9  # no core count given: the most any window used
    assert cpu_capacity_tokens_per_s({"a": [window(2.0, 900, 150.0, 0.6)]}, 20.0) is None  # no CPU split
    # the overhead alone can take every core: nothing is left for the engines
    assert cpu_capacity_tokens_per_s(ramp, 200.0, cores=2.0)["tokens_per_s"] == 0.0


def test_cpu_bound_in_the_ramp_bound_and_shedding_when_no_point_fits():
    ramp = dict(RAMP, cpu_count=2, ramp={"a_load_aware": [
        dict(cpu_window(5.0, 300, 200.0, 40.0, 1.0, 1.4), load_multiple=0.5, accuracy=0.9),
        dict(cpu_window(20.0, 900, 100.0, 80.0, 0.5, 1.9), load_multiple=2.0, accuracy=0.6)]})
    out = bound(ramp, {"all": CURVE, "one_round": CURVE}, 2.0)
    cpu = out["cpu"]  # 20 req/s x 80 ms = 1.6 cores of overhead; 0.4 x 3000 = 1200 tokens/s; 60 per request
    assert cpu["affordable_tokens_per_request"] == pytest.approx(60.0)
    assert cpu["all"]["ratio_bound"] == pytest.approx(0.7 / 0.9)
    starved = dict(ramp, cpu_count=1.9)  # 0.3 cores left: 45 tokens each, under the cheapest point's 60
    assert bound(starved, {"all": CURVE}, 2.0)["cpu"]["all"]["offline_accuracy_at_affordable"] == \
        pytest.approx(45.0 / 60.0 * 0.7)
