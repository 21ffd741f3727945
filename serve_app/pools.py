"""Serve deployments holding the engines: the policy pool and the PRM scorer pool.

Each replica wraps vLLM's AsyncLLM directly (continuous batching across all
concurrent callers); docs/architecture.md#machine-facts records why: `ray.serve.llm`
starts slower, needs more memory and has no PRM scoring. Replicas publish their load
for the demand-aware autoscaling policy (`record_autoscaling_stats`).
"""

from __future__ import annotations

import time
from collections import deque

from ray import serve


class _LoadMeter:
    """Tokens (or steps) handled per second over a sliding window."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self.events: deque[tuple[float, float]] = deque()
        self.total = 0.0

    def _expire(self, now: float) -> None:
        # Oldest first, so expiry is amortized O(1) per call (a rebuilt list was O(window)).
        while self.events and now - self.events[0][0] > self.window_s:
            self.total -= self.events.popleft()[1]
        if not self.events:
            self.total = 0.0  # no float drift left behind

    def add(self, amount: float) -> None:
        now = time.monotonic()
        self.events.append((now, amount))
        self.total += amount
        self._expire(now)

    def rate(self) -> float:
        self._expire(time.monotonic())
        return self.total / self.window_s


class _BusyMeter:
    """Work pending, work done and seconds spent busy (any call in flight), cumulative: the
    router divides work done by busy seconds for the rate the pool processes at when it has
    work, which recent throughput (what the traffic asked) understates at low load."""

    def __init__(self):
        self.pending = 0.0
        self.done = 0.0
        self.active = 0
        self.busy_s = 0.0
        self.since = 0.0

    def enter(self, work: float) -> None:
        if self.active == 0:
            self.since = time.monotonic()
        self.active += 1
        self.pending += work

    def leave(self, work: float, done: float) -> None:
        self.active -= 1
        self.pending -= work
        self.done += done
        if self.active == 0:
            self.busy_s += time.monotonic() - self.since

    def stats(self) -> dict:
        busy = self.busy_s + (time.monotonic() - self.since if self.active else 0.0)
        return {"pending_work": max(0.0, self.pending), "work_done": self.done, "busy_s": busy}


@serve.deployment(name="PolicyPool")
class PolicyPool:
    def __init__(self, engine: dict):
        from ttc.runtime import configure_inprocess_vllm

        configure_inprocess_vllm(bind_threads=False)
        from ttc.async_engines import AsyncVLLMGenerator
        from ttc.vllm_engines import EngineSpec

        self.gen = AsyncVLLMGenerator(EngineSpec(**engine))
        self.meter = _LoadMeter()
        self.busy = _BusyMeter()
        self.tokens_per_seq = 64.0  # running mean, until measured: prices pending sequences in tokens

    async def generate(self, requests: list[dict]) -> list[list[dict]]:
        from dataclasses import asdict

        from ttc.interfaces import GenerationRequest

        reqs = [GenerationRequest(**{**r, "stop": tuple(r.get("stop", ()))}) for r in requests]
        seqs = sum(r.n for r in reqs)
        work, tokens = seqs * self.tokens_per_seq, 0
        self.busy.enter(work)
        try:
            out = await self.gen.generate(reqs)
            tokens = sum(c.tokens for comps in out for c in comps)
        finally:
            self.busy.leave(work, tokens)
        self.meter.add(tokens)
        self.tokens_per_seq += 0.1 * (tokens / max(1, seqs) - self.tokens_per_seq)
        return [[asdict(c) for c in comps] for comps in out]

    async def generate_stream(self, request: dict):
        """One completion as it is generated (call through `handle.options(stream=True)`):
        {"delta": text, "tokens": so far} items, then {"completion": {...}}."""
        from dataclasses import asdict

        from ttc.interfaces import Completion, GenerationRequest

        req = GenerationRequest(**{**request, "stop": tuple(request.get("stop", ()))})
        async for item in self.gen.stream(req):
            if isinstance(item, Completion):
                self.meter.add(item.tokens)
                yield {"completion": asdict(item)}
            else:
                yield {"delta": item[0], "tokens": item[1]}

    def record_autoscaling_stats(self) -> dict:
        return {"pending_requests": float(self.gen.pending_requests()), "tokens_per_s": self.meter.rate()}

    def load_stats(self) -> dict:
        """Pending work (tokens of the sequences in flight, estimated), work done and busy
        seconds, for the router's queue-delay estimate; cheap, polled a few times a second."""
        return self.busy.stats()

    def check_health(self) -> None:
        if self.gen.engine.errored:
            raise RuntimeError("policy engine died")


@serve.deployment(name="PRMPool")
class PRMPool:
    def __init__(self, engine: dict, prompt_format: str):
        from ttc.runtime import configure_inprocess_vllm

        configure_inprocess_vllm(bind_threads=False)
        from ttc.async_engines import AsyncVLLMStepScorer
        from ttc.prompts import get_format
        from ttc.vllm_engines import EngineSpec

        self.scorer = AsyncVLLMStepScorer(EngineSpec(**engine), get_format(prompt_format))
        self.meter = _LoadMeter()
        self.busy = _BusyMeter()

    async def score(self, requests: list[dict]) -> list[list[float]]:
        from ttc.interfaces import ScoreRequest

        reqs = [ScoreRequest(question=r["question"], steps=tuple(r["steps"]), known=int(r.get("known", 0)))
                for r in requests]
        steps = sum(len(r.steps) - r.known for r in reqs)
        self.busy.enter(steps)
        done = 0
        try:
            out = await self.scorer.score(reqs)
            done = steps
        finally:
            self.busy.leave(steps, done)
        self.meter.add(steps)
        return out

    def load_stats(self) -> dict:
        return self.busy.stats()

    def record_autoscaling_stats(self) -> dict:
        return {"pending_requests": float(self.scorer.pending_requests()), "steps_per_s": self.meter.rate()}

    def check_health(self) -> None:
        if self.scorer.engine.errored:
            raise RuntimeError("PRM engine died")
