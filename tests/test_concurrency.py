"""The admission limit as a latency budget: arrival rate, Little's-law budget, and the
choice it makes (a cheaper strategy instead of a 429)."""

import numpy as np
import pytest

from probe.concurrency import ArrivalRate, concurrency_budget_s
from probe.online_costs import OnlineCosts, choose_or_shed, pool_rounds
from ttc.grid import StrategySpec

IDS = ["majority/n=1", "weighted_best_of_n/n=8", "beam_search/n=8/m=2/it=10"]
ACC = np.array([0.5, 0.8, 0.9])  # accuracy grows with cost


def costs():
    rounds = [pool_rounds(StrategySpec.from_id(s)) for s in IDS]
    return OnlineCosts(IDS, tokens=[60, 500, 900], latency_s=[0.1, 0.3, 0.8], rounds=rounds)


def test_arrival_rate_counts_the_window_and_forgets_what_left_it():
    r = ArrivalRate(window_s=2.0, min_arrivals=4)
    for t in np.arange(0.0, 3.0, 0.1):  # 10 arrivals/s for 3 s
        r.arrive(float(t))
    assert r.rate(2.95) == pytest.approx(10.0, abs=0.5)
    assert r.rate(4.5) == pytest.approx(2.5, abs=0.51)  # only the arrivals from 2.5 s on remain: 5 in 2 s
    assert r.rate(10.0) is None  # too few to tell
    with pytest.raises(ValueError):
        ArrivalRate(window_s=0)


def test_the_budget_is_littles_law_and_off_without_a_rate_or_fill():
    assert concurrency_budget_s(32.0, 24, 0.8) == pytest.approx(0.6)
    assert concurrency_budget_s(8.0, 24, 0.8) == pytest.approx(2.4)
    assert concurrency_budget_s(None, 24, 0.8) is None
    assert concurrency_budget_s(32.0, 24, 0.0) is None


def test_a_soft_budget_picks_within_it_and_never_sheds():
    c = costs()
    # Each strategy fits the 1.4 s budget alone; at a soft budget of 0.5 s the beam is out.
    assert choose_or_shed(ACC, c, {}, budget_s=1.4).index == 2
    assert choose_or_shed(ACC, c, {}, budget_s=1.4, soft_budget_s=0.5).index == 1
    # Nothing fits a soft budget of 0.05 s: the fastest within the hard budget is served, not shed.
    v = choose_or_shed(ACC, c, {}, budget_s=1.4, soft_budget_s=0.05)
    assert v.index == 0 and v.retry_after_s is None
    # Without an SLO budget the soft one still steers; above the hard budget it changes nothing.
    assert choose_or_shed(ACC, c, {}, soft_budget_s=0.5).index == 1
    assert choose_or_shed(ACC, c, {}, soft_budget_s=0.05).index == 0
    assert choose_or_shed(ACC, c, {}, budget_s=0.5, soft_budget_s=5.0).index == 1
    # When the hard budget itself is missed, the verdict is still a shed.
    assert choose_or_shed(ACC, c, {"policy": 2.0, "prm": 2.0}, budget_s=1.0, soft_budget_s=0.5).index is None


def test_the_soft_fallback_keeps_the_token_budget_and_the_allowed_set():
    rounds = [pool_rounds(StrategySpec.from_id(s)) for s in IDS]
    # Here the fastest strategy is not the cheapest in tokens: a 550-token budget leaves only n=8.
    c = OnlineCosts(IDS, tokens=[600, 500, 900], latency_s=[0.1, 0.3, 0.8], rounds=rounds)
    assert choose_or_shed(ACC, c, {}, max_tokens=550, budget_s=1.4, soft_budget_s=0.05).index == 1
    c = costs()
    allowed = np.array([False, True, True])
    # Majority is excluded: the fastest allowed strategy within the budget is served instead.
    assert choose_or_shed(ACC, c, {}, budget_s=1.4, soft_budget_s=0.05, allowed=allowed).index == 1
