"""The sample memo of batched labeling: the vLLM seed rule it rests on, what it saves, and
that labels through it equal labels without it (real engines)."""

import asyncio

from ttc.arithmetic import generate_problems
from ttc.grid import StrategySpec
from ttc.interfaces import Completion, GenerationRequest, ScoreRequest
from ttc.sample_memo import MemoGenerator, MemoScorer


class CountingGenerator:
    """Pure-logic stand-in: sample i of a seeded request is named by (prompt, seed + i)."""

    def __init__(self):
        self.calls: list[list[GenerationRequest]] = []

    async def generate(self, requests):
        self.calls.append(list(requests))
        return [[Completion(f"{r.prompt}|{r.seed + i if r.seed is not None else 'x'}", 3, "stop")
                 for i in range(r.n)] for r in requests]


def test_memo_draws_only_the_missing_samples_of_a_seeded_request():
    inner = CountingGenerator()
    memo = MemoGenerator(inner)
    first = asyncio.run(memo.generate([GenerationRequest("p", n=4, seed=10)]))[0]
    # n=8 from the same seed: samples 0-3 are known, 4-7 are one request from seed 14.
    more = asyncio.run(memo.generate([GenerationRequest("p", n=8, seed=10),
                                      GenerationRequest("p", n=2, seed=10, temperature=0),  # greedy: never memoized
                                      GenerationRequest("p", n=2, seed=10, max_tokens=9)]))  # other settings
    assert [c.text for c in more[0][:4]] == [c.text for c in first]
    assert [c.text for c in more[0]] == [f"p|{10 + i}" for i in range(8)]
    sent = inner.calls[1]
    assert [(r.n, r.seed) for r in sent] == [(4, 14), (2, 10), (2, 10)]
    assert memo.requested == 4 + 12 and memo.drawn == 4 + 8
    # Everything known: no engine call at all.
    asyncio.run(memo.generate([GenerationRequest("p", n=3, seed=12)]))
    assert len(inner.calls) == 2


def test_memo_scorer_scores_each_distinct_request_once():
    class Scorer:
        def __init__(self):
            self.seen = []

        async def score(self, requests):
            self.seen += requests
            return [[0.5] * (len(r.steps) - r.known) for r in requests]

    inner = Scorer()
    memo = MemoScorer(inner)
    a, b = ScoreRequest("q", ("1 + 1 = 2",)), ScoreRequest("q", ("1 + 1 = 2", "2 + 1 = 3"), known=1)
    assert asyncio.run(memo.score([a, b, a])) == [[0.5], [0.5], [0.5]]
    assert asyncio.run(memo.score([b])) == [[0.5]]
    assert inner.seen == [a, b] and memo.requested == 4 and memo.scored == 2


def test_vllm_draws_sample_i_with_seed_plus_i(generator, world_format):
    """The rule the memo rests on, checked on the real engine: the last 3 of 8 samples from
    seed s are the 3 samples from seed s + 5, and one sample from s is the first of the 8."""
    # A long problem, whole solutions: the samples differ somewhere along the way.
    prompt = world_format.policy_prompt("7 + 3 * 4 - 9 + 5 * 2 - 8 + 6 - 7")
    full = generator.generate_sync([GenerationRequest(prompt, n=8, temperature=1.0, seed=4242)])[0]
    tail = generator.generate_sync([GenerationRequest(prompt, n=3, temperature=1.0, seed=4247)])[0]
    one = generator.generate_sync([GenerationRequest(prompt, n=1, temperature=1.0, seed=4242)])[0]
    assert len({c.text for c in full}) > 1  # distinct samples, or the check says nothing
    assert [c.text for c in tail] == [c.text for c in full[5:]]
    assert one[0].text == full[0].text


BEAMS = ["beam_search/n=4/m=2/it=10", "beam_search/n=8/m=2/it=10", "beam_search/n=8/m=4/it=10"]  # the CPU grid's


def test_beam_configs_through_the_memo_equal_runs_without_it(runner_with_seed):
    runner = runner_with_seed(3)
    from ttc.strategies import StrategyRunner

    queries = [p.to_query() for p in generate_problems(1, seed=77, levels=range(3, 7))]
    memo_gen, memo_sc = MemoGenerator(runner.generator), MemoScorer(runner.scorer)
    memo = StrategyRunner(memo_gen, memo_sc, runner.format, runner.sampling)
    for sid in BEAMS:
        spec = StrategySpec.from_id(sid)
        plain = asyncio.run(runner.run(spec, queries))
        through = asyncio.run(memo.run(spec, queries))
        assert [(r.answer, r.text, r.tokens, r.trace["scores"]) for r in through] == \
               [(r.answer, r.text, r.tokens, r.trace["scores"]) for r in plain]
    # The configs repeat each other's root expansion: a real share was not drawn again.
    assert memo_gen.drawn < 0.8 * memo_gen.requested
    assert memo_sc.scored < memo_sc.requested
