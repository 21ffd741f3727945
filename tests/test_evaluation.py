"""Pure evaluation logic on synthetic matrices whose right answers are known by construction."""

import math
from collections import Counter

import numpy as np
import pytest

from probe.evaluation import (LevelLookup, Truth, evaluate, is_paper_method, log_grid, outcome,
                              split_label_strategies, split_oracle_sweep, sweep, tokens_to_match,
                              mean_budget_selection, under_budgets)
from probe.selection import select

IDS = ["majority/n=1", "majority/n=4", "weighted_best_of_n/n=4", "beam_search/n=4/m=2/it=10",
       "escalate/n=1/tau=0.9/then=weighted_best_of_n/n=4"]
METHODS = [i.split("/")[0] for i in IDS]
TOKENS = np.array([100.0, 400.0, 400.0, 600.0, 180.0])
LATENCY = np.array([0.1, 0.2, 0.3, 0.5, 0.25])


def _world(q_per_level=40, levels=(1, 2, 3, 4), seed=0):
    """Per-level accuracy of each strategy; single-sample accuracy falls with the level."""
    rng = np.random.default_rng(seed)
    diffs = np.repeat(levels, q_per_level)
    base = 1.0 - 0.15 * (diffs - 1)  # pass@1 per query's level
    acc = np.stack([base, base + 0.05, base + 0.12, base + 0.10, base + 0.11], axis=1)
    acc = np.clip(acc + rng.normal(0, 0.05, acc.shape), 0, 1)
    tok = np.broadcast_to(TOKENS, acc.shape).copy()
    lat = np.broadcast_to(LATENCY, acc.shape).copy()
    return diffs, acc, tok, lat


def test_paper_methods_helper():
    assert [is_paper_method(m) for m in METHODS] == [True, True, True, True, False]


def test_lookup_router_picks_each_levels_best_strategy():
    diffs = np.array([1] * 6 + [2] * 6 + [3] * 6)
    acc = np.zeros((18, 3))
    acc[diffs == 1] = [0.9, 0.5, 0.6]  # level 1: strategy 0 is best
    acc[diffs == 2] = [0.2, 0.8, 0.6]  # level 2: strategy 1
    acc[diffs == 3] = [0.1, 0.2, 0.7]  # level 3: strategy 2
    tok = np.tile([10.0, 20.0, 40.0], (18, 1))
    lat = np.tile([0.1, 0.2, 0.4], (18, 1))
    lookup = LevelLookup.fit(list(diffs), acc, tok, lat)
    a, t, lt = lookup.predict([3, 1, 2, 7, None])
    assert select(a, t, lt).index.tolist()[:3] == [2, 0, 1]
    # A level never seen in training (7) or an unknown one falls back to the overall means.
    assert np.allclose(a[3], acc.mean(axis=0)) and np.allclose(a[4], acc.mean(axis=0))
    assert np.allclose(t[0], [10, 20, 40]) and np.allclose(lt[1], [0.1, 0.2, 0.4])
    # Scored on the same table, at lambda 0 it reaches the per-level best: mean of the per-level maxima.
    truth = Truth(acc, tok, lat)
    pts = sweep(truth, *lookup.predict(list(diffs)), [0.0], [0.0])
    assert pts[0]["accuracy"] == pytest.approx(np.mean([0.9, 0.8, 0.7]))
    # Priced tokens move level 3 to its cheapest strategy once 30 tokens cost more than its 0.6 gain.
    assert select(*lookup.predict([3]), lambda_tokens=0.6 / 30 * 0.99).index.tolist() == [2]
    assert select(*lookup.predict([3]), lambda_tokens=0.6 / 30 * 1.01).index.tolist() == [0]


def _noisy_halves(p, k, rng):
    a = rng.binomial(k, p) / k
    b = rng.binomial(k, p) / k
    return a, b, (a + b) / 2


def test_split_oracle_is_below_the_full_oracle_on_noisy_labels():
    rng = np.random.default_rng(1)
    q, s = 300, 6
    p = np.repeat(rng.uniform(0.3, 0.9, (q, 1)), s, axis=1)  # all strategies equally good per query
    a, b, full = _noisy_halves(p, 8, rng)
    tok = np.tile(np.arange(1, s + 1) * 100.0, (q, 1))
    lat = np.tile(np.arange(1, s + 1) * 0.1, (q, 1))
    truth = Truth(full, tok, lat, a, b)
    cols = split_label_strategies(truth)
    assert cols.tolist() == list(range(s))
    full_best = sweep(truth, full, tok, lat, [0.0], [0.0])[0]["accuracy"]
    split_best = split_oracle_sweep(truth, [0.0], [0.0], cols)[0]["accuracy"]
    in_sample = split_oracle_sweep(truth, [0.0], [0.0], cols, in_sample=True)[0]["accuracy"]
    # Choosing on noise and scoring on independent noise gets what any choice gets...
    assert split_best == pytest.approx(p.mean(), abs=0.03)
    # ...while an oracle scored on what it chose with is optimistic.
    assert full_best > split_best + 0.05 and in_sample > split_best + 0.05
    # Noise-free halves: split oracle == full oracle.
    clean = Truth(p, tok, lat, p.copy(), p.copy())
    assert split_oracle_sweep(clean, [0.0], [0.0], cols)[0]["accuracy"] == pytest.approx(
        sweep(clean, p, tok, lat, [0.0], [0.0])[0]["accuracy"])


def test_split_labels_missing_or_partial():
    acc = np.full((4, 3), 0.5)
    assert split_label_strategies(Truth(acc, acc, acc)) is None
    a = acc.copy()
    a[2, 1] = np.nan  # one strategy lacks half labels on one query
    assert split_label_strategies(Truth(acc, acc, acc, a, acc.copy())).tolist() == [0, 2]


def test_tokens_to_match_on_a_constructed_curve():
    static = [{"strategy": "a", "accuracy": 0.80, "tokens": 200.0},
              {"strategy": "b", "accuracy": 0.90, "tokens": 1000.0},
              {"strategy": "c", "accuracy": 0.90, "tokens": 1200.0}]  # tie: the cheaper one is the target
    curve = [{"accuracy": 0.85, "tokens": 300.0}, {"accuracy": 0.91, "tokens": 600.0},
             {"accuracy": 0.90, "tokens": 450.0}, {"accuracy": 0.95, "tokens": 800.0}]
    m = tokens_to_match(curve, static)
    assert m["target_strategy"] == "b" and m["reached"] and m["policy_tokens"] == 450.0
    assert m["ratio"] == pytest.approx(0.45)
    never = tokens_to_match(curve[:1], static)
    assert not never["reached"] and math.isnan(never["ratio"])


def test_latency_budgets_against_the_best_static_that_fits():
    # Two query types: strategy 1 is right on type A, strategy 2 on type B; 2 is slow.
    acc = np.array([[0.5, 1.0, 0.0], [0.5, 0.0, 1.0]] * 5)
    tok = np.tile([10.0, 20.0, 30.0], (10, 1))
    lat = np.tile([0.1, 0.2, 0.4], (10, 1))
    truth = Truth(acc, tok, lat)
    static = [{"strategy": s, **outcome(truth, np.full(10, j))} for j, s in enumerate("xyz")]
    rows = under_budgets(truth, static, {"oracle": (acc, tok, lat)}, "latency")
    assert [r["budget_of"] for r in rows] == ["x", "y", "z"]
    assert [r["static_fitting"] for r in rows] == [1, 2, 3]
    assert [r["best_static_within"] for r in rows] == ["x", "x", "x"]  # all three static configs score 0.5
    # Within 0.2 s the oracle may use x or y: 1.0 on type A, 0.5 on type B.
    assert rows[1]["oracle"]["accuracy"] == pytest.approx(0.75) and rows[1]["oracle"]["within_budget"]
    assert rows[2]["oracle"]["accuracy"] == pytest.approx(1.0) and rows[2]["oracle"]["gain"] == pytest.approx(0.5)


def test_mean_budget_lets_queries_trade_latency_that_a_per_query_budget_cannot():
    # Type A is solved only by the slow y, type B by the fast x; z is a static 0.2 s config.
    acc = np.array([[0.5, 1.0, 0.5], [1.0, 0.5, 0.5]] * 5)
    tok = np.tile([10.0, 30.0, 20.0], (10, 1))
    lat = np.tile([0.1, 0.3, 0.2], (10, 1))
    truth = Truth(acc, tok, lat)
    static = [{"strategy": s, **outcome(truth, np.full(10, j))} for j, s in enumerate("xyz")]
    row = {r["budget_of"]: r for r in under_budgets(truth, static, {"oracle": (acc, tok, lat)})}["z"]
    # Per query only x fits 0.2 s; as a mean, y on A and x on B average exactly 0.2 s.
    assert row["oracle"]["accuracy"] == pytest.approx(0.75)
    mb = row["oracle"]["mean_budget"]
    assert mb["accuracy"] == pytest.approx(1.0) and mb["within_budget"] and mb["latency"] == pytest.approx(0.2)
    # Below every strategy's latency nothing fits: the cheapest choice, reported over budget.
    sel, lam = mean_budget_selection(acc, tok, lat, 0.05)
    assert (sel.index == 0).all() and lam > 0
    assert not under_budgets(truth, [{"strategy": "w", "accuracy": 0.0, "tokens": 1.0, "latency": 0.05}],
                             {"oracle": (acc, tok, lat)})[0]["oracle"]["mean_budget"]["within_budget"]


def test_evaluate_summary_frontiers_and_baselines():
    diffs, acc, tok, lat = _world()
    rng = np.random.default_rng(3)
    a, b, full = _noisy_halves(acc, 8, rng)
    truth = Truth(full, tok, lat, a, b)
    tr_diffs, tr_acc, tr_tok, tr_lat = _world(seed=9)
    lookup = LevelLookup.fit(list(tr_diffs), tr_acc, tr_tok, tr_lat)
    # A "probe" that knows nothing per query: the overall mean accuracy of each strategy.
    predicted = (np.tile(full.mean(axis=0), (len(full), 1)), tok, lat)
    lt, ll = log_grid(1e-6, 1e-1, 12), log_grid(1e-4, 10.0, 12)
    s = evaluate(truth, IDS, METHODS, list(diffs), predicted, lt, ll, lookup=lookup, shares_lambdas=(1e-4, 0.0))
    assert s["frontier_sets"]["paper"] == IDS[:4] and s["frontier_sets"]["all"] == IDS
    # The escalation config (cheap, nearly as accurate as weighted BoN) raises the frontier:
    # against it every policy's area is lower than against the paper's methods alone.
    for name in ("adaptive", "lookup", "split_oracle"):
        assert s["areas"]["all"][name]["tokens"]["value"] < s["areas"]["paper"][name]["tokens"]["value"]
    assert s["normalized_area_tokens"] == s["areas"]["all"]["adaptive"]["tokens"]
    assert s["normalized_area_tokens_paper"] == s["areas"]["paper"]["adaptive"]["tokens"]
    lml = s["learned_minus_lookup_area"]["paper"]["tokens"]
    assert lml == pytest.approx(s["areas"]["paper"]["adaptive"]["tokens"]["value"]
                                - s["areas"]["paper"]["lookup"]["tokens"]["value"])
    # Levels carry real information here, so the lookup router beats a level-blind "probe".
    assert lml < 0
    sp = s["split_oracle"]
    assert sp["available"] and sp["strategies_without_split_labels"] == []
    assert sp["best_split_oracle"]["accuracy"] <= sp["best_oracle"]["accuracy"]
    tm = s["tokens_to_match"]
    assert tm["paper"]["oracle"]["target_strategy"] == s["best_static_paper"]["strategy"]
    assert tm["paper"]["oracle"]["ratio"] < 1  # the oracle matches the best static for less
    assert len(s["latency_budgets"]) == len(IDS)
    shares = s["chosen_shares"]["lookup"]["by_difficulty"]
    assert set(shares) == {"1", "2", "3", "4"}
    for lv in shares.values():
        assert sum(lv.values()) == pytest.approx(1.0)
    # Tables without half labels: the split oracle is reported unavailable, not faked.
    s2 = evaluate(Truth(full, tok, lat), IDS, METHODS, list(diffs), predicted, lt, ll)
    assert not s2["split_oracle"]["available"] and "soft_label_a" in s2["split_oracle"]["reason"]
    assert not s2["lookup_router"]["available"] and s2["learned_minus_lookup_area"] is None
    assert set(s2["areas"]["all"]) == {"adaptive"}


def test_report_and_plots_from_a_synthetic_summary(tmp_path):
    import json

    from jobs.evaluate import markdown_report, plot_curves, plot_shares

    diffs, acc, tok, lat = _world(q_per_level=10)
    lookup = LevelLookup.fit(list(diffs), acc, tok, lat)
    pred = (np.tile(acc.mean(axis=0), (len(acc), 1)), tok, lat)
    for truth in (Truth(acc, tok, lat, acc.copy(), acc.copy()), Truth(acc, tok, lat)):
        s = evaluate(truth, IDS, METHODS, list(diffs), pred, log_grid(1e-6, 1e-1, 5), log_grid(1e-4, 10, 5),
                     lookup=lookup if truth.acc_a is not None else None, shares_lambdas=(1e-4, 0.01))
        s = {"query_set": "shifted: mul_heavy", "test_queries": len(acc), "strategies": len(IDS),
             "featurizer": "toy", "per_query_costs": False,
             "probe_calibration_test": {k: {"ece": 0.1, "brier": 0.2, "auc": 0.7} for k in ("before", "after")}, **s}
        json.dumps(s)
        md = markdown_report(s)
        for section in ("Normalized area", "Split-label oracle", "Tokens to match", "latency budgets",
                        "shifted: mul_heavy", "Chosen strategies by difficulty"):
            assert section in md
        assert ("Unavailable" in md) == (truth.acc_a is None)
        for name, fn in (("t.png", lambda p: plot_curves(s, "tokens", p)), ("l.png", lambda p: plot_curves(s, "latency", p)),
                         ("s.png", lambda p: plot_shares(s, p))):
            fn(tmp_path / name)
            assert (tmp_path / name).stat().st_size > 1000


def test_operator_mix_shift():
    from ttc.arithmetic import MAX_VALUE, generate_problems, parse_question, reference_steps

    base = generate_problems(40, seed=5)
    assert base == generate_problems(40, seed=5, mix=None)
    shifted = generate_problems(40, seed=5, mix="mul_heavy", prefix="shift")
    share = lambda ps: Counter(op for p in ps for op, _ in p.ops)["*"] / sum(p.difficulty for p in ps)  # noqa: E731
    assert share(shifted) > share(base) + 0.08
    assert [p.difficulty for p in shifted] == [p.difficulty for p in base]  # same level mix
    assert {p.source for p in shifted} == {"arithmetic/mul_heavy"} and shifted[0].query_id.startswith("shift-")
    for p in shifted:
        _, ops = parse_question(p.question)
        assert len(ops) == p.difficulty
        for step in reference_steps(p.question):
            assert 0 <= int(step.split(" = ")[1].replace("\\boxed{", "").rstrip("}")) <= MAX_VALUE
    with pytest.raises(ValueError, match="unknown operator mix"):
        generate_problems(1, seed=0, mix="nope")
    from ttc.arithmetic import make_problem
    import random

    with pytest.raises(ValueError, match="'-' > 0"):
        make_problem(random.Random(0), 3, "x", op_weights={"+": 1.0, "*": 3.0})
    with pytest.raises(ValueError, match="over '\\+', '-', '\\*'"):
        make_problem(random.Random(0), 3, "x", op_weights={"/": 1.0})
