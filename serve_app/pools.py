"""Serve deployments holding the engines: the policy pool and the PRM scorer pool.

Each replica wraps vLLM's AsyncLLM directly (continuous batching across all
concurrent callers). DESIGN.md records why: `ray.serve.llm` starts slower, needs
more memory and has no PRM scoring. Replicas publish their load for the
demand-aware autoscaling policy (`record_autoscaling_stats`).
"""

from __future__ import annotations

import time

from ray import serve


class _LoadMeter:
    """Tokens (or steps) handled per second over a sliding window."""

    def __init__(self, window_s: float = 10.0):
        self.window_s = window_s
        self.events: list[tuple[float, float]] = []

    def add(self, amount: float) -> None:
        now = time.monotonic()
        self.events.append((now, amount))
        self.events = [(t, a) for t, a in self.events if now - t <= self.window_s]

    def rate(self) -> float:
        now = time.monotonic()
        return sum(a for t, a in self.events if now - t <= self.window_s) / self.window_s


@serve.deployment(name="PolicyPool")
class PolicyPool:
    def __init__(self, engine: dict):
        from ttc.runtime import configure_inprocess_vllm

        configure_inprocess_vllm(bind_threads=False)
        from ttc.async_engines import AsyncVLLMGenerator
        from ttc.vllm_engines import EngineSpec

        self.gen = AsyncVLLMGenerator(EngineSpec(**engine))
        self.meter = _LoadMeter()
        self.pending_seqs = 0  # sequences asked for and not yet returned (for load_stats)
        self.tokens_per_seq = 64.0  # running mean, until measured

    async def generate(self, requests: list[dict]) -> list[list[dict]]:
        from dataclasses import asdict

        from ttc.interfaces import GenerationRequest

        reqs = [GenerationRequest(**{**r, "stop": tuple(r.get("stop", ()))}) for r in requests]
        seqs = sum(r.n for r in reqs)
        self.pending_seqs += seqs
        try:
            out = await self.gen.generate(reqs)
        finally:
            self.pending_seqs -= seqs
        tokens = sum(c.tokens for comps in out for c in comps)
        self.meter.add(tokens)
        self.tokens_per_seq += 0.1 * (tokens / max(1, seqs) - self.tokens_per_seq)
        return [[asdict(c) for c in comps] for comps in out]

    def record_autoscaling_stats(self) -> dict:
        return {"pending_requests": float(self.gen.pending_requests()), "tokens_per_s": self.meter.rate()}

    def load_stats(self) -> dict:
        """Pending work (tokens still to generate, estimated) and throughput, for the router's
        queue-delay estimate; cheap, polled a few times a second."""
        return {"pending_work": self.pending_seqs * self.tokens_per_seq, "work_per_s": self.meter.rate()}

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
        self.pending_steps = 0

    async def score(self, requests: list[dict]) -> list[list[float]]:
        from ttc.interfaces import ScoreRequest

        reqs = [ScoreRequest(question=r["question"], steps=tuple(r["steps"]), known=int(r.get("known", 0)))
                for r in requests]
        steps = sum(len(r.steps) - r.known for r in reqs)
        self.pending_steps += steps
        try:
            out = await self.scorer.score(reqs)
        finally:
            self.pending_steps -= steps
        self.meter.add(steps)
        return out

    def load_stats(self) -> dict:
        return {"pending_work": float(self.pending_steps), "work_per_s": self.meter.rate()}

    def record_autoscaling_stats(self) -> dict:
        return {"pending_requests": float(self.scorer.pending_requests()), "steps_per_s": self.meter.rate()}

    def check_health(self) -> None:
        if self.scorer.engine.errored:
            raise RuntimeError("PRM engine died")
