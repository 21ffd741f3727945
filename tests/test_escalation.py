"""PRM-verified escalation through the real engines, its pool-exact labels, and the
calibration latency model of batched labeling."""

import asyncio
import json

import numpy as np
import pytest

from ttc.arithmetic import generate_problems
from ttc.grading import answers_match, split_steps
from ttc.grid import StrategySpec
from ttc.latency_model import LatencyModel, cross_validated_error, fill_latency
from ttc.soft_labels import ScoredPool


@pytest.fixture(scope="module")
def runner(runner_with_seed):
    return runner_with_seed(5)


@pytest.fixture(scope="module")
def queries():
    return [p.to_query() for p in generate_problems(3, seed=909, levels=range(3, 9))]


def run(runner, sid, qs):
    return asyncio.run(runner.run(StrategySpec.from_id(sid), qs))


def test_confident_stage_one_stops_and_doubt_escalates(runner, queries):
    single = run(runner, "best_of_n/n=1", queries)
    never = run(runner, "escalate/n=1/tau=0/agg=min/then=weighted_best_of_n/n=8", queries)
    # tau = 0: every stage-1 answer is confident enough; only the one sample is paid for.
    for r in never:
        assert r.trace["stage"] == 1 and not r.trace["escalated"]
        assert r.tokens == r.trace["stage1_tokens"] and len(r.trace["answers"]) == 1
    # tau = 1: a min step reward below 1 (always, for a probability) escalates to 8 samples in all.
    always = run(runner, "escalate/n=1/tau=1/agg=min/then=weighted_best_of_n/n=8", queries)
    for r in always:
        assert r.trace["stage"] == 2 and r.trace["escalated"]
        assert len(r.trace["answers"]) == 8 and r.tokens > r.trace["stage1_tokens"] > 0
        assert r.latency_s >= r.trace["stage2_latency_s"] > 0
    assert np.mean([r.tokens for r in always]) > 4 * np.mean([r.tokens for r in single])


def test_escalation_to_beam_adds_both_stages(runner, queries):
    res = run(runner, "escalate/n=1/tau=1/then=beam_search/n=4/m=2/it=10", queries)
    beam = run(runner, "beam_search/n=4/m=2/it=10", queries)
    for r, b in zip(res, beam):
        assert r.trace["escalated"]
        # Stage 2 is the beam search itself (same query ids, same seeds): tokens add up.
        assert r.tokens == r.trace["stage1_tokens"] + b.tokens
        assert r.answer == b.answer


def test_a_real_threshold_splits_queries_by_their_stage_one_score(runner, queries):
    res = run(runner, "escalate/n=1/tau=0.5/agg=min/then=weighted_best_of_n/n=8", queries)
    for r in res:
        assert r.trace["escalated"] == (r.trace["stage1_score"] < 0.5)


def test_pool_labels_equal_a_direct_run_on_the_same_completions(runner, queries):
    """The label of one ordered pool subset is exactly what the runner did with those samples."""
    from ttc.methods import get_method

    for sid in ("escalate/n=1/tau=0.5/agg=min/then=weighted_best_of_n/n=8",
                "escalate/n=2/tau=0.9/agg=min/then=best_of_n/n=4",
                "escalate/n=1/tau=1/agg=min/then=majority/n=4"):
        spec = StrategySpec.from_id(sid)
        for q, r in zip(queries, run(runner, sid, queries)):
            texts = r.trace["candidates"]  # stage 1's samples, then stage 2's, in order
            rewards = asyncio.run(runner.score_solutions([q.question] * len(texts), texts))
            answers = [runner.answer_of(t) for t in texts]
            toks = [len(t) + 1 for t in texts]  # one token per character (+ end of text) in this world
            pool = ScoredPool(answers, [answers_match(a, q.answer) for a in answers], toks, rewards)
            correct, tokens, escalated = get_method("escalate").outcome(spec, pool, np.arange(len(texts)))
            assert bool(escalated) == r.trace["escalated"]
            assert bool(correct) == answers_match(r.answer, q.answer), sid
            assert len(texts) == (spec.then.n if escalated else spec.n)
            assert all(split_steps(t) for t in texts)
            # The runner's token count is the chosen samples' own count.
            assert tokens == sum(toks)


def _points(rng, qids, comps):
    pts = []
    for q in qids:
        chars = int(rng.integers(5, 40))
        for c, (a, b) in comps.items():
            t = float(rng.integers(20, 400))
            pts.append({"query_id": q, "component": c, "tokens": t, "prompt_chars": chars,
                        "seconds": a + b * t + rng.normal(0, 0.002)})
    return pts


def test_latency_model_recovers_component_costs_and_fills_rows():
    rng = np.random.default_rng(0)
    comps = {"sample/n=4": (0.02, 0.0005), "score/n=4": (0.01, 0.0001)}
    pts = _points(rng, [f"q{i}" for i in range(24)], comps)
    model = LatencyModel.fit(pts)
    for c, (a, b) in comps.items():
        assert abs(model.fits[c].predict(200, 20) - (a + b * 200)) < 0.01
    parts = [["sample/n=4", 300.0, 1.0], ["score/n=4", 300.0, 0.5]]
    rows = [{"query_id": "new", "strategy_id": "x", "method": "best_of_n", "question": "1 + 2",
             "latency_measured": False, "mean_latency_s": float("nan"), "latency_parts": json.dumps(parts)}]
    filled, report = fill_latency(rows, pts)
    assert abs(filled[0]["mean_latency_s"] - (0.02 + 0.0005 * 300 + 0.5 * (0.01 + 0.0001 * 300))) < 0.01
    assert report["filled_rows"] == 1 and report["calibration_queries"] == 24


def test_latency_model_error_is_measured_on_held_out_queries():
    rng = np.random.default_rng(1)
    comps = {"sample/n=1": (0.01, 0.001)}
    pts = _points(rng, [f"q{i}" for i in range(20)], comps)
    rows = [{"query_id": p["query_id"], "method": "majority", "question": "x" * p["prompt_chars"],
             "latency_measured": True, "mean_latency_s": p["seconds"],
             "latency_parts": json.dumps([["sample/n=1", p["tokens"], 1.0]])} for p in pts]
    good = cross_validated_error(pts, rows)
    assert good["folds"] == 5 and good["mean_relative_error"] < 0.05
    # Latencies that have nothing to do with tokens cannot be predicted from them.
    for p, r in zip(pts, rows):
        p["seconds"] = r["mean_latency_s"] = float(rng.uniform(0.01, 1.0))
    assert cross_validated_error(pts, rows)["mean_relative_error"] > 5 * good["mean_relative_error"]


def test_batched_labels_without_calibration_are_refused():
    rows = [{"query_id": "q", "latency_measured": False, "latency_parts": "[]", "question": "1"}]
    with pytest.raises(ValueError, match="need calibration queries"):
        fill_latency(rows, [])
