"""The per-request token budget and streaming of RequestGenerator (pure logic; a fake pool).

The same rules are tested through the real engines in tests/test_openai_surface.py."""

import asyncio
import random

from serve_app.handle_clients import RequestGenerator
from ttc.interfaces import Completion, GenerationRequest


class GreedyPool:
    """Spends every token it may (the worst case for a budget)."""

    def __init__(self):
        self.calls = []

    async def generate(self, reqs):
        self.calls.append(reqs)
        return [[Completion("x" * r.max_tokens, r.max_tokens, "length")] * r.n for r in reqs]

    async def stream(self, req, on_delta):
        self.calls.append([req])
        for _ in range(req.max_tokens):
            on_delta("x")
        return Completion("x" * req.max_tokens, req.max_tokens, "length")


def test_budget_holds_over_any_sequence_of_calls():
    rng = random.Random(0)
    for _ in range(200):
        budget = rng.randint(1, 300)
        gen = RequestGenerator(GreedyPool(), budget=budget)
        total = 0
        for _ in range(rng.randint(1, 6)):  # e.g. beam iterations
            reqs = [GenerationRequest("p", n=rng.randint(1, 8), max_tokens=rng.randint(1, 256))
                    for _ in range(rng.randint(1, 4))]
            out = asyncio.run(gen.generate(reqs))
            assert [len(c) for c in out] == [r.n for r in reqs]
            total += sum(c.tokens for comps in out for c in comps)
        assert total == gen.spent <= budget


def test_no_budget_passes_requests_through_and_stop_strings_merge():
    pool = GreedyPool()
    gen = RequestGenerator(pool, stop=("\n\n", "="))
    asyncio.run(gen.generate([GenerationRequest("p", n=2, max_tokens=7, stop=("\n\n",))]))
    sent = pool.calls[0][0]
    assert sent.max_tokens == 7 and sent.stop == ("\n\n", "=") and not gen.truncated


def test_only_the_first_single_sample_call_streams():
    pool, seen = GreedyPool(), []
    gen = RequestGenerator(pool, budget=5, on_delta=seen.append)
    asyncio.run(gen.generate([GenerationRequest("p", n=1, max_tokens=256)]))
    asyncio.run(gen.generate([GenerationRequest("p", n=1, max_tokens=256)]))
    assert seen == ["x"] * 5 and gen.spent == 5 and gen.truncated
