"""Every strategy through the real vLLM engines on generated problems."""

import asyncio

import numpy as np
import pytest

from ttc.arithmetic import generate_problems
from ttc.grading import answers_match
from ttc.grid import StrategySpec, cpu_grid
from ttc.queries import Query
from ttc.strategies import SamplingConfig, StrategyRunner


@pytest.fixture(scope="module")
def runner(generator, scorer, world_format):
    return StrategyRunner(generator, scorer, world_format, SamplingConfig(seed=11))


@pytest.fixture(scope="module")
def problems():
    return [p.to_query() for p in generate_problems(8, seed=2024, levels=range(2, 9))]


def accuracy(results, queries):
    return float(np.mean([answers_match(r.answer, q.answer) for r, q in zip(results, queries)]))


def test_every_grid_strategy_runs_on_real_engines(runner, problems):
    qs = problems[::7][:8]
    for spec in cpu_grid().strategies:
        results = asyncio.run(runner.run(spec, qs))
        assert [r.query_id for r in results] == [q.query_id for q in qs]
        for r in results:
            assert r.strategy_id == spec.id
            assert r.tokens > 0 and r.latency_s > 0
            # A chosen answer is the answer boxed in the chosen text.
            if r.answer is not None:
                assert answers_match(r.answer, r.text.rsplit("\\boxed{", 1)[1].split("}")[0])


def test_prm_strategies_beat_single_samples(runner, problems):
    single = asyncio.run(runner.run(StrategySpec(method="majority", n=1), problems))
    wbon = asyncio.run(runner.run(StrategySpec(method="weighted_best_of_n", n=8), problems))
    bon = asyncio.run(runner.run(StrategySpec(method="best_of_n", n=8), problems))
    a1, aw, ab = accuracy(single, problems), accuracy(wbon, problems), accuracy(bon, problems)
    assert len(problems) >= 50
    assert aw >= a1 + 0.10, (a1, aw)
    assert ab >= a1 + 0.10, (a1, ab)
    # More samples cost proportionally more tokens.
    assert np.mean([r.tokens for r in wbon]) > 5 * np.mean([r.tokens for r in single])


def test_majority_vote_uses_the_most_common_answer(runner, problems):
    res = asyncio.run(runner.run(StrategySpec(method="majority", n=8), problems[:10]))
    for r in res:
        answers = [a for a in r.trace["answers"] if a is not None]
        if answers:
            assert answers.count(r.answer) == max(answers.count(a) for a in answers)


def test_beam_search_batched_equals_one_at_a_time(runner, problems):
    spec = StrategySpec(method="beam_search", n=4, beam_width=2, max_iterations=10)
    qs = problems[::9][:6]
    batched = asyncio.run(runner.run(spec, qs))
    single = [asyncio.run(runner.run(spec, [q]))[0] for q in qs]
    assert [(r.answer, r.tokens) for r in batched] == [(r.answer, r.tokens) for r in single]
    for r in batched:
        # Pruned beams are paid for: more tokens than the chosen solution alone.
        assert r.tokens > len(r.text)
        assert 1 <= r.trace["iterations"] <= 10


def test_beam_search_beats_single_samples(runner, problems):
    spec = StrategySpec(method="beam_search", n=8, beam_width=4, max_iterations=10)
    single = asyncio.run(runner.run(StrategySpec(method="majority", n=1), problems))
    beam = asyncio.run(runner.run(spec, problems))
    assert accuracy(beam, problems) >= accuracy(single, problems) + 0.10


def test_bad_inputs_raise_clear_errors(generator, world_format):
    no_prm = StrategyRunner(generator, None, world_format)
    q = [Query("q", "1 + 2")]
    with pytest.raises(ValueError, match="needs a step scorer"):
        asyncio.run(no_prm.run(StrategySpec(method="best_of_n", n=4), q))
    with pytest.raises(ValueError, match="empty question"):
        Query("q", "   ")
    long_q = [Query("long", " + 1".join(["1"] * 400))]
    with pytest.raises(ValueError, match="does not fit the model's context"):
        asyncio.run(no_prm.run(StrategySpec(method="majority", n=2), long_q))
