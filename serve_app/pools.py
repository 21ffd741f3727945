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

    async def generate(self, requests: list[dict]) -> list[list[dict]]:
        from dataclasses import asdict

        from ttc.interfaces import GenerationRequest

        reqs = [GenerationRequest(**{**r, "stop": tuple(r.get("stop", ()))}) for r in requests]
        out = await self.gen.generate(reqs)
        self.meter.add(sum(c.tokens for comps in out for c in comps))
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

    async def score(self, requests: list[dict]) -> list[list[float]]:
        from ttc.interfaces import ScoreRequest

        reqs = [ScoreRequest(question=r["question"], steps=tuple(r["steps"]), known=int(r.get("known", 0)))
                for r in requests]
        out = await self.scorer.score(reqs)
        self.meter.add(sum(len(r.steps) - r.known for r in reqs))
        return out

    def record_autoscaling_stats(self) -> dict:
        return {"pending_requests": float(self.scorer.pending_requests()), "steps_per_s": self.meter.rate()}

    def check_health(self) -> None:
        if self.scorer.engine.errored:
            raise RuntimeError("PRM engine died")
