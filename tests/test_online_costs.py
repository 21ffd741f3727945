"""Pure logic of the load-aware router: online costs, queue delay, budgeted choice, shedding."""

import numpy as np
import pytest

from probe.online_costs import CongestionPrice, InFlight, OnlineCosts, PoolStats, QueueModel, choose_or_shed, \
    learn_queue, pool_rounds, retry_after
from ttc.grid import StrategySpec

IDS = ["majority/n=1", "weighted_best_of_n/n=8", "beam_search/n=8/m=2/it=10"]


def costs(alpha=0.5):
    rounds = [pool_rounds(StrategySpec.from_id(s)) for s in IDS]
    return OnlineCosts(IDS, tokens=[60, 500, 900], latency_s=[0.1, 0.3, 0.8], rounds=rounds, alpha=alpha)


def test_pool_rounds_follow_the_method():
    assert pool_rounds(StrategySpec.from_id("majority/n=4")) == {"policy": 1.0, "prm": 0.0}
    assert pool_rounds(StrategySpec.from_id("best_of_n/n=4")) == {"policy": 1.0, "prm": 1.0}
    assert pool_rounds(StrategySpec.from_id("beam_search/n=8/m=2/it=10")) == {"policy": 10.0, "prm": 10.0}


def test_estimates_start_at_the_seed_and_follow_observations():
    c = costs(alpha=0.5)
    tok, lat, q = c.predict()
    assert tok.tolist() == [60, 500, 900] and lat.tolist() == [0.1, 0.3, 0.8] and not q.any()
    c.observe("majority/n=1", tokens=80, latency_s=0.3, predicted_tokens=60, predicted_latency_s=0.1)
    tok, lat, _ = c.predict()
    assert tok[0] == pytest.approx(70) and lat[0] == pytest.approx(0.2)
    assert lat[1] == 0.3  # other strategies untouched
    err = c.errors()
    assert err["observations"] == 1
    assert err["latency_mean_relative_error"] == pytest.approx(abs(0.1 - 0.3) / 0.3)
    assert err["tokens_mean_relative_error"] == pytest.approx(20 / 80)
    # A perfect prediction halves the running mean error.
    c.observe("majority/n=1", tokens=80, latency_s=0.3, predicted_tokens=80, predicted_latency_s=0.3)
    assert c.errors()["latency_mean_relative_error"] == pytest.approx(abs(0.1 - 0.3) / 0.3 / 2)


def test_observed_queue_time_is_not_learned_as_service_time():
    c = costs(alpha=1.0)
    c.observe("majority/n=1", tokens=60, latency_s=0.5, predicted_tokens=60, predicted_latency_s=0.5, queue_s=0.2)
    assert c.predict()[1][0] == pytest.approx(0.3)
    # Observed beam iterations replace the conservative seed of rounds.
    c.observe(IDS[2], tokens=900, latency_s=0.8, predicted_tokens=900, predicted_latency_s=0.8,
              rounds={"policy": 4, "prm": 4})
    _, _, q = c.predict({"policy": 0.1, "prm": 0.05})
    assert q[2] == pytest.approx(4 * 0.1 + 4 * 0.05) and q[0] == pytest.approx(0.1)


def test_queue_delay_is_pending_work_over_the_busy_rate():
    qm = QueueModel(alpha=0.5, min_busy_s=0.5)
    # A cold pool claims no delay, whatever is pending.
    assert qm.update("policy", PoolStats(pending_work=5000, work_done=0, busy_s=0)) == 0
    # 1000 tokens in 1 busy second: 2000 pending tokens are 2 s of delay.
    assert qm.update("policy", PoolStats(pending_work=2000, work_done=1000, busy_s=1.0)) == pytest.approx(2.0)
    # Idle time does not dilute the rate (busy seconds do not advance while idle) ...
    assert qm.update("policy", PoolStats(pending_work=0, work_done=1000, busy_s=1.0)) == 0
    # ... and a slower busy second (500 tokens/s) moves it halfway (alpha 0.5): 750 tokens/s.
    assert qm.update("policy", PoolStats(pending_work=1500, work_done=1500, busy_s=2.0)) == pytest.approx(2.0)
    # Polls closer than min_busy_s keep the rate; a restarted pool (counters back to 0) re-bases.
    assert qm.update("policy", PoolStats(pending_work=750, work_done=1600, busy_s=2.1)) == pytest.approx(1.0)
    assert qm.update("policy", PoolStats(pending_work=750, work_done=0, busy_s=0)) == pytest.approx(1.0)
    assert qm.delays() == {"policy": pytest.approx(1.0), "prm": 0.0}


def test_a_polled_backlog_drains_between_polls():
    qm = QueueModel(min_busy_s=0.5)
    qm.update("policy", PoolStats(pending_work=0, work_done=0, busy_s=0), now=0.0)
    assert qm.update("policy", PoolStats(pending_work=1000, work_done=1000, busy_s=1.0), now=10.0) == pytest.approx(1.0)
    qm.update("prm", PoolStats(pending_work=0, work_done=0, busy_s=0), now=10.0)
    assert qm.delays(10.4)["policy"] == pytest.approx(0.6)
    assert qm.delays(12.0)["policy"] == 0.0
    assert qm.delays()["policy"] == pytest.approx(1.0)  # as polled
    assert qm.age_s(10.5) == pytest.approx(0.5)
    assert QueueModel().age_s(1.0) == float("inf")  # never polled: stale


def test_a_shed_on_stale_stats_is_decided_again_on_a_fresh_read():
    """The router's glue: a busy snapshot taken as the last request finished must not shed
    the next one when a fresh read shows the pools idle; a fresh busy read still sheds."""
    import asyncio

    from probe.router_config import LoadControl as Cfg
    from serve_app.load_control import LoadControl, Overloaded, decide_row

    class Stats:  # a pool handle's `load_stats.remote()`, answering what `state` holds
        def __init__(self, state):
            self.state, self.reads = state, 0

        async def remote(self):
            self.reads += 1
            return self.state

    class Pool:
        def __init__(self, state):
            self.load_stats = Stats(state)

    table = [{"strategy": s, "predicted_tokens": t, "predicted_latency_s": l}
             for s, t, l in zip(IDS, [60, 500, 900], [0.1, 0.3, 0.8])]
    grid = {s: StrategySpec.from_id(s) for s in IDS}
    idle = {"pending_work": 0.0, "work_done": 2000.0, "busy_s": 2.0}
    pools = {"policy": Pool(dict(idle)), "prm": Pool(dict(idle))}
    load = LoadControl(Cfg(confirm_shed_after_s=0.0), grid, table, pools)
    load.queues.update("policy", PoolStats(0, 0, 0), now=0.0)
    # The stale snapshot: 3000 tokens pending at 1000 tokens/s, 3 s of queue.
    load.queues.update("policy", PoolStats(3000, 1000, 1.0), now=__import__("time").perf_counter())
    load.queues.update("prm", PoolStats(0, 0, 0), now=__import__("time").perf_counter())
    acc = np.array([0.5, 0.8, 0.9])

    async def decide():
        return await decide_row(load, IDS, acc, None, None, {"max_latency_s": 0.5}, None)

    d = asyncio.run(decide())
    assert d["strategy"] == IDS[1] and d["predicted_queue_s"] == 0.0
    assert pools["policy"].load_stats.reads == 1
    # Truly busy: the poller's read shows it, the re-read confirms it, and the shed stands.
    pools["policy"].load_stats.state = {"pending_work": 3000.0, "work_done": 3000.0, "busy_s": 3.0}
    asyncio.run(load.refresh())
    with pytest.raises(Overloaded) as e:
        asyncio.run(decide())
    assert e.value.status_code == 429 and pools["policy"].load_stats.reads == 3


def test_budgeted_choice_moves_cheaper_as_the_queue_grows_then_sheds():
    c = costs()
    acc = np.array([0.5, 0.8, 0.9])  # accuracy grows with cost
    chosen = []
    for d in (0.0, 0.05, 0.4, 2.0):
        v = choose_or_shed(acc, c, {"policy": d, "prm": d}, budget_s=1.0)
        chosen.append(None if v.index is None else IDS[v.index])
    assert chosen == [IDS[2], IDS[1], IDS[0], None]
    v = choose_or_shed(acc, c, {"policy": 2.0, "prm": 2.0}, budget_s=1.0)
    assert v.retry_after_s == 2 and "majority/n=1" in v.reason  # fastest: 0.1 + 2.0 s, 1.1 s over
    assert "engine pools 2 s, running requests 0 s" in v.reason  # which queue term set it
    # Without a budget nothing is shed, whatever the queue.
    assert choose_or_shed(acc, c, {"policy": 50.0}).index == 2


def test_congestion_price_integrates_the_queue_and_remembers_it():
    price = CongestionPrice(gain=1.0, target=0.25, max_price=3.0)
    assert price.update(0.0, 0.0) == 0.0  # the first reading only sets the clock
    assert price.update(1.25, 1.0) == pytest.approx(1.0)  # 1 s at pressure 1.25: +1 x (1.25 - 0.25)
    assert price.update(0.25, 2.0) == pytest.approx(1.0)  # at the target it holds
    # A momentary empty queue lowers it a little, not to 0 (the proportional price did).
    assert price.update(0.0, 2.2) == pytest.approx(0.95)
    assert price.update(9.0, 5.0) == pytest.approx(3.0)  # capped; a long gap rises by at most 1 s
    assert price.update(0.0, 100.0) == 0.0  # idle long enough: gone
    with pytest.raises(ValueError):
        CongestionPrice(gain=-1.0)


def test_congestion_price_moves_cheaper_under_a_sustained_queue_and_back_when_idle():
    c = costs()
    acc = np.array([0.5, 0.8, 0.9])
    floor = np.full(3, 0.3)  # every strategy would wait 0.3 s behind the running requests
    price = CongestionPrice(gain=6.0, target=0.1)
    chosen = [IDS[choose_or_shed(acc, c, {}, budget_s=1.0, queue_floor=floor, congestion=price, now=t).index]
              for t in (0.0, 0.5, 1.0, 1.5)]
    # Myopic at first (fits its own budget: 0.3 + 0.3 s); the price rises 0.6 per 0.5 s at
    # pressure 0.3 and at t = 1.5 reaches 1.8: 0.8 - 1.8 x 0.6 < 0.5 - 1.8 x 0.4 (at 1.2 not yet).
    assert chosen == [IDS[1], IDS[1], IDS[1], IDS[0]]
    assert price.price == pytest.approx(1.8)
    # Idle again: the most accurate once the price has decayed (0.6 per second at pressure 0).
    later = choose_or_shed(acc, c, {}, budget_s=1.0, congestion=price, now=5.0)
    assert IDS[later.index] == IDS[2] and price.price == 0.0
    # Without a budget there is no pressure to price: the price is not read or moved.
    price.price = 3.0
    assert choose_or_shed(acc, c, {}, queue_floor=floor, congestion=price, now=6.0).index == 2
    assert price.price == 3.0


def test_budget_below_the_unloaded_fastest_sheds_with_a_short_retry():
    v = choose_or_shed(np.array([0.5, 0.8, 0.9]), costs(), {}, budget_s=0.01)
    assert v.index is None and v.retry_after_s == 1


def test_retry_after_is_whole_seconds_within_bounds():
    assert retry_after(0.0) == 1 and retry_after(0.2) == 1 and retry_after(3.2) == 4
    assert retry_after(1e6) == 30 and retry_after(float("inf")) == 30 and retry_after(-5) == 1


def test_bad_alpha_is_refused():
    with pytest.raises(ValueError, match="alpha"):
        OnlineCosts(IDS, [1, 1, 1], [1, 1, 1], [{}, {}, {}], alpha=0)


def test_in_flight_work_delays_a_new_request_as_processor_sharing_would():
    f = InFlight(beta=1.0, alpha=0.5)
    x = np.array([0.1, 0.3, 0.8])
    assert not f.delay(x, now=0.0).any()  # nothing running
    a = f.start(now=0.0, service_s=0.5, total_s=1.0, interference_s=0.0)
    f.start(now=0.0, service_s=0.2, total_s=0.2, interference_s=0.0)
    # At t=0.5 job a has half its work left (0.25 s); job b is past its predicted end and
    # keeps min_left (0.1) of its 0.2 s. A job shares with each until the shorter ends.
    np.testing.assert_allclose(f.interference(x, now=0.5), [0.1 + 0.02, 0.25 + 0.02, 0.25 + 0.02])
    # beta follows what requests observe: 0.6 s observed for 0.2 s of service and 0.2 s of
    # interference is beta 2; alpha 0.5 moves it from 1 halfway.
    c = f.start(now=0.5, service_s=0.2, total_s=0.6, interference_s=0.2)
    f.finish(c, observed_s=0.6)
    assert f.beta == pytest.approx(1.5)
    f.finish(a)  # no observation (an error, a shed): dropped, nothing learned
    assert f.beta == pytest.approx(1.5) and len(f.jobs) == 1


def test_in_flight_estimate_is_a_floor_under_the_pool_queue():
    c = costs()
    acc = np.array([0.5, 0.8, 0.9])
    floor = np.array([0.05, 0.5, 0.9])
    v = choose_or_shed(acc, c, {"policy": 0.01, "prm": 0.01}, budget_s=1.0, queue_floor=floor)
    np.testing.assert_allclose(v.queue_s, [0.05, 0.5, 0.9])
    assert IDS[v.index] == IDS[1]  # the beam config no longer fits: 0.8 + 0.9 s


def test_a_work_price_keeps_a_token_cheap_slow_strategy_where_a_latency_price_drops_it():
    # A verified escalation: few tokens (one sample, rarely a second stage) but two stages in
    # sequence; majority/n=1 is fastest; weighted BoN/8 is the most accurate and costliest.
    ids = ["majority/n=1", "escalate/n=1/tau=0.5/then=weighted_best_of_n/n=8", "weighted_best_of_n/n=8"]
    c = OnlineCosts(ids, tokens=[60, 120, 500], latency_s=[0.1, 0.45, 0.3],
                    rounds=[pool_rounds(StrategySpec.from_id(s)) for s in ids])
    acc = np.array([0.65, 0.88, 0.9])
    floor = np.full(3, 0.3)
    picks = {}
    for resource in ("latency", "work"):
        price = CongestionPrice(gain=1.0, target=0.1, resource=resource)
        price.price = 2.0  # a sustained overload has raised it
        v = choose_or_shed(acc, c, {}, budget_s=1.0, queue_floor=floor, congestion=price, now=0.0,
                           tokens_per_s=1000.0)
        picks[resource] = ids[v.index]
    # Latency price 2 per budget: 0.65 - 2 x 0.4 > 0.88 - 2 x 0.75 and > 0.9 - 2 x 0.6.
    # Work price 2 per 1000 tokens: 0.88 - 0.24 beats 0.65 - 0.12 and 0.9 - 1.0.
    assert picks == {"latency": ids[0], "work": ids[1]}
    # Before the pool has a throughput the work price falls back to latency.
    price = CongestionPrice(gain=1.0, resource="work")
    price.price = 2.0
    assert price.weights(1.0, None) == (0.0, 2.0) and price.weights(2.0, 1000.0) == (pytest.approx(1e-3), 0.0)
    with pytest.raises(ValueError, match="resource"):
        CongestionPrice(gain=1.0, resource="tokens")


def test_queue_scale_learns_how_much_of_the_raw_drain_time_requests_wait():
    qm = QueueModel(alpha=1.0, min_busy_s=0.5, scale_alpha=0.5)
    qm.update("policy", PoolStats(pending_work=0, work_done=0, busy_s=0), now=0.0)
    qm.update("policy", PoolStats(pending_work=2000, work_done=1000, busy_s=1.0), now=0.0)
    assert qm.delays(0.0)["policy"] == pytest.approx(2.0)  # scale 1 until something is observed
    qm.learn(excess_s=0.5, raw_queue_s=2.0)  # waited a quarter of the drain time: halfway there
    assert qm.scale == pytest.approx(0.625)
    assert qm.delays(0.0)["policy"] == pytest.approx(1.25) and qm.delays(0.0, raw=True)["policy"] == 2.0
    qm.learn(excess_s=5.0, raw_queue_s=0.01)  # a raw queue this small teaches nothing
    assert qm.scale == pytest.approx(0.625)
    qm.learn(excess_s=100.0, raw_queue_s=1.0)  # a sample is clipped to the bounds
    assert qm.scale == pytest.approx(0.625 + 0.5 * (2.0 - 0.625))


def test_only_the_queue_term_that_set_the_prediction_learns_so_their_max_is_not_biased_up():
    # Every request waits 0.5 s; the pool stats and the in-flight set each see it noisily and
    # in turn (one says 1.0 s raw when the other says 0.25 s). If both terms learned from every
    # request, each would settle near the mean ratio and their max would predict about 1.25 s.
    qm, running = QueueModel(scale_alpha=0.3), InFlight(beta=1.0, alpha=0.3)
    preds, learned = [], []
    for k in range(60):
        raw, interference = (1.0, 0.25) if k % 2 else (0.25, 1.0)
        preds.append(max(qm.scale * raw, running.beta * interference))
        key = running.start(now=0.0, service_s=0.2, total_s=0.7, interference_s=interference)
        learned.append(learn_queue(qm, running, key, excess_s=0.5, raw_queue_s=raw, observed_s=0.7))
    assert set(learned[:2]) == {"pool", "in_flight"}  # each term learns where it is the larger
    assert np.mean(np.abs(np.array(preds[-20:]) - 0.5)) < 0.05
    assert qm.scale == pytest.approx(0.5, abs=0.02) and running.beta == pytest.approx(0.5, abs=0.02)
    assert not running.jobs  # every job left the in-flight set
    assert learn_queue(qm, running, None, 0.5, None, 0.7) is None  # nothing to learn from


@pytest.mark.parametrize("resource", ["latency", "work"])
def test_an_absurd_budget_is_shed_without_throwing_the_shared_price_to_its_cap(resource):
    # Found by the fuzz test: max_latency_s=5e-324 made the added lambda infinite (a 500).
    c, acc = costs(), np.array([0.6, 0.8, 0.9])
    price = CongestionPrice(gain=1.0, resource=resource)
    price.price = 0.5
    for now in (0.0, 0.5):
        v = choose_or_shed(acc, c, {"policy": 0.3}, budget_s=5e-324, congestion=price, now=now,
                           tokens_per_s=1000.0)
        assert v.index is None  # shed: nothing fits
    assert price.price == 0.5  # no strategy meets that budget even alone: it says nothing of the queue
    assert all(np.isfinite(price.weights(5e-324, 1e-300)))
    price.update(0.25, now=0.5)  # at the target: holds
    price.update(1e300, now=1.0)  # a reading's pressure saturates
    assert price.price == pytest.approx(0.5 + 0.5 * (CongestionPrice.MAX_PRESSURE - 0.25))


def test_service_is_not_learned_from_requests_that_mostly_queued():
    c = costs(alpha=1.0)
    c.observe("majority/n=1", tokens=60, latency_s=2.0, predicted_tokens=60, predicted_latency_s=2.0, queue_s=1.5)
    assert c.predict()[1][0] == pytest.approx(0.1)  # 1.5 of 2.0 s predicted queueing: left to the queue scale
    c.observe("majority/n=1", tokens=60, latency_s=0.4, predicted_tokens=60, predicted_latency_s=0.4, queue_s=0.1)
    assert c.predict()[1][0] == pytest.approx(0.3)


def test_spread_starts_at_the_seed_and_follows_service_deviations_and_queue_errors():
    rounds = [pool_rounds(StrategySpec.from_id(s)) for s in IDS]
    c = OnlineCosts(IDS, [60, 500, 900], [0.1, 0.3, 0.8], rounds, alpha=0.5, latency_sd_s=[0.02, None, 0.4],
                    queue_rel_sd=0.5)
    assert c.spread_s().tolist() == pytest.approx([0.02, 0.5 * 0.3, 0.4])  # None: seed_cv x mean
    # Under a queue the spread grows with it: sqrt(service_var + rho^2 q^2).
    assert c.spread_s(np.array([1.0, 0.0, 2.0])).tolist() == pytest.approx(
        [np.hypot(0.02, 0.5), 0.15, np.hypot(0.4, 1.0)])
    # Alternating fast and slow requests (a second stage for every other one), no queue: the
    # service spread settles near half their gap; steady requests shrink it.
    for k in range(40):
        c.observe(IDS[2], 900, 0.2 if k % 2 else 1.0, 900, 0.8)
    assert 0.3 < c.spread_s()[2] < 0.6 and 0.4 < c.service_s[2] < 0.8
    for _ in range(40):
        c.observe(IDS[2], 900, 0.5, 900, 0.5)
    assert c.spread_s()[2] < 0.01
    # Queue-dominated requests teach the queue's relative spread, not the service's: predicted
    # 1 s of queue, observed alternately 0.2 s early and late: a spread of 0.2 (the upper
    # semivariance, doubled). Only late requests widen it: always early, it falls to 0.
    before = c.spread_s()[0]
    for k in range(40):
        c.observe(IDS[0], 60, 1.1 + (0.2 if k % 2 else -0.2), 60, 1.1, queue_s=1.0)
    assert c.spread_s()[0] == before and 0.02 < c.queue_rel_var < 0.06
    for _ in range(40):
        c.observe(IDS[0], 60, 0.6, 60, 1.1, queue_s=1.0)
    assert c.queue_rel_var < 1e-6
    # A wild miss counts at most max_rel_sd.
    c.observe(IDS[0], 60, 100.0, 60, 1.1, queue_s=1.0)
    assert c.queue_rel_var <= 0.5 * 0.04 + 0.5 * 4.0 + 1e-9


def test_a_mean_within_budget_with_a_tail_beyond_the_p95_yields():
    rounds = [pool_rounds(StrategySpec.from_id(s)) for s in IDS]
    # beam: mean 0.8 s fits a 1.4 s mean budget, but 0.8 + 1.645 x 0.5 = 1.62 s passes a 1.5 s p95.
    c = OnlineCosts(IDS, [60, 500, 900], [0.1, 0.3, 0.8], rounds, latency_sd_s=[0.2, 0.1, 0.5],
                    queue_rel_sd=0.2)
    acc = np.array([0.5, 0.8, 0.9])
    assert choose_or_shed(acc, c, {}, budget_s=1.4).index == 2  # the mean check alone
    assert choose_or_shed(acc, c, {}, budget_s=1.4, tail_budget_s=1.5, tail_z=1.645).index == 1
    assert choose_or_shed(acc, c, {}, budget_s=1.4, tail_budget_s=1.5, tail_z=0.0).index == 2
    # A queue of 0.4 s per pool round: n=8 (two rounds, 1.1 s, tail 1.1 + 1.645 x hypot(0.1,
    # 0.2 x 0.8) = 1.41 s) fits both; at 0.5 s per round its mean (1.3 s) still fits, its tail
    # (1.3 + 1.645 x hypot(0.1, 0.2) = 1.67 s) not; majority (one round, 0.6 s, tail 0.97 s) does.
    assert IDS[choose_or_shed(acc, c, {"policy": 0.4, "prm": 0.4}, budget_s=1.4, tail_budget_s=1.5,
                              tail_z=1.645).index] == IDS[1]
    v = choose_or_shed(acc, c, {"policy": 0.5, "prm": 0.5}, budget_s=1.4, tail_budget_s=1.5, tail_z=1.645)
    assert IDS[v.index] == IDS[0]
    assert IDS[choose_or_shed(acc, c, {"policy": 0.5, "prm": 0.5}, budget_s=1.4).index] == IDS[1]
    # majority at 1.2 s fits the mean budget, its tail (1.2 + 1.645 x hypot(0.2, 0.22) = 1.69 s)
    # not the p95: shed, naming the tail.
    v = choose_or_shed(acc, c, {"policy": 1.1, "prm": 1.1}, budget_s=1.4, tail_budget_s=1.5, tail_z=1.645)
    assert v.index is None and "1.69 s at its tail against 1.5 s" in v.reason and v.retry_after_s == 1
    assert choose_or_shed(acc, c, {"policy": 1.1, "prm": 1.1}, budget_s=1.4).index == 0


def test_requests_decided_without_awareness_still_learn_against_the_queue():
    """Awareness off decides on the artifact's costs, but its requests wait in the same
    queues: what they observe is learned against the served prediction (queue included), so
    an overload served with awareness off does not inflate the service estimates that a
    later load-aware decision uses (a hot reload keeps them)."""
    import asyncio
    from types import SimpleNamespace

    from probe.router_config import LoadControl as Cfg
    from serve_app.load_control import LoadControl, decide_row

    class Stats:
        def __init__(self, state):
            self.state = state

        async def remote(self):
            return self.state

    table = [{"strategy": s, "predicted_tokens": t, "predicted_latency_s": l}
             for s, t, l in zip(IDS, [60, 500, 900], [0.1, 0.3, 0.8])]
    grid = {s: StrategySpec.from_id(s) for s in IDS}
    pools = {p: SimpleNamespace(load_stats=Stats({"pending_work": 0.0, "work_done": 0.0, "busy_s": 0.0}))
             for p in ("policy", "prm")}
    load = LoadControl(Cfg(aware=False), grid, table, pools)
    now = __import__("time").perf_counter()
    load.queues.update("policy", PoolStats(0, 0, 0), now=now)
    load.queues.update("policy", PoolStats(2000, 1000, 1.0), now=now + 1e-3)  # 2 s of queue
    load.queues.update("prm", PoolStats(0, 0, 0), now=now)

    async def one():
        with load.admitted() as slot:
            d = await decide_row(load, IDS, np.array([0.9, 0.5, 0.4]), np.array([60, 500, 900]),
                                 np.array([0.1, 0.3, 0.8]), {}, None)
            served = load.served_prediction(d["strategy"])
            slot.start(d["strategy"], served["latency_s"])
            load.observe(d["strategy"], SimpleNamespace(tokens=60, trace={}), 2.1, 60, served["latency_s"],
                         served["queue_s"], slot, pool_queue_raw_s=served["pool_queue_raw_s"])
            return d, served

    d, served = asyncio.run(one())
    assert d["strategy"] == IDS[0] and d["predicted_latency_s"] == 0.1  # decided on the artifact's cost
    assert served["queue_s"] > 1.5 and served["latency_s"] > 1.6
    assert load.costs.service_s[0] == pytest.approx(0.1)  # the 2 s it waited are queue, not service
    load.stop()
