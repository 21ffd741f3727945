"""The strategies' Generator / StepScorer interfaces bound to Serve deployment handles.

A replica that dies after accepting a call surfaces as RayActorError; Serve does
not retry those, so the call is retried here on another replica (bounded), and a
pool that stays unavailable becomes `PoolUnavailable` (the router answers 503).
`RequestGenerator` is the per-request view a strategy runs against: it enforces the
request's token budget and, for a single-sample strategy, streams the sample's text.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from typing import Callable

from ttc.interfaces import Completion, GenerationRequest, ScoreRequest


class PoolUnavailable(RuntimeError):
    pass


def _transient():
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import BackPressureError

    return (RayActorError, BackPressureError, asyncio.TimeoutError)


async def _call(method, payload, retries: int, timeout_s: float):
    last = None
    for attempt in range(retries + 1):
        try:
            return await asyncio.wait_for(method.remote(payload), timeout=timeout_s)
        except _transient() as exc:
            last = exc
            await asyncio.sleep(0.2 * (attempt + 1))
    raise PoolUnavailable(f"pool unavailable after {retries + 1} attempts: {type(last).__name__}")


class HandleGenerator:
    def __init__(self, handle, retries: int = 3, timeout_s: float = 120.0):
        self.handle, self.retries, self.timeout_s = handle, retries, timeout_s

    async def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        out = await _call(self.handle.generate, [asdict(r) for r in requests], self.retries, self.timeout_s)
        return [[Completion(**c) for c in comps] for comps in out]

    async def stream(self, request: GenerationRequest, on_delta: Callable[[str], None]) -> Completion:
        """One completion, `on_delta(text)` called as tokens arrive. Retried on another replica
        only while nothing was delivered (text already shown to a client cannot be taken back)."""
        last = None
        for attempt in range(self.retries + 1):
            delivered = False
            try:
                gen = self.handle.options(stream=True).generate_stream.remote(asdict(request))
                async with asyncio.timeout(self.timeout_s):
                    async for item in gen:
                        if "completion" in item:
                            return Completion(**item["completion"])
                        delivered = True
                        on_delta(item["delta"])
                raise PoolUnavailable("policy stream ended without a completion")
            except _transient() as exc:
                if delivered:
                    raise PoolUnavailable(f"policy replica lost mid-stream: {type(exc).__name__}") from None
                last = exc
                await asyncio.sleep(0.2 * (attempt + 1))
        raise PoolUnavailable(f"pool unavailable after {self.retries + 1} attempts: {type(last).__name__}")


class HandleScorer:
    def __init__(self, handle, retries: int = 3, timeout_s: float = 120.0):
        self.handle, self.retries, self.timeout_s = handle, retries, timeout_s

    async def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        payload = [{"question": r.question, "steps": list(r.steps), "known": r.known} for r in requests]
        return await _call(self.handle.score, payload, self.retries, self.timeout_s)


class RequestGenerator:
    """One request's generator: a hard token budget over every call the strategy makes,
    extra stop strings, and optional streaming of a single-sample strategy's one sample.

    The budget holds for any strategy without touching its code: each call's samples
    share what is left (per-sample max_tokens = left // samples), so the tokens generated
    never exceed it; samples that get no budget come back empty ("length")."""

    def __init__(self, base: HandleGenerator, budget: int | None = None, stop: tuple[str, ...] = (),
                 on_delta: Callable[[str], None] | None = None):
        self.base, self.budget, self.stop, self.on_delta = base, budget, tuple(stop), on_delta
        self.spent = 0
        self.truncated = False  # a sample hit a cap this budget imposed
        self.finish_reason: str | None = None  # of the last completion (one-sample runs)

    def _capped(self, requests: list[GenerationRequest]) -> tuple[list[GenerationRequest], int | None]:
        if self.budget is None and not self.stop:
            return requests, None
        cap = None
        if self.budget is not None:
            cap = (self.budget - self.spent) // max(1, sum(r.n for r in requests))
        out = []
        for r in requests:
            kw = {"stop": tuple(dict.fromkeys(r.stop + self.stop))} if self.stop else {}
            if cap is not None and cap >= 1:
                kw["max_tokens"] = min(r.max_tokens, cap)
            out.append(replace(r, **kw))
        return out, cap

    def _account(self, reqs: list[GenerationRequest], out: list[list[Completion]], cap: int | None):
        for r, comps in zip(reqs, out):
            for c in comps:
                self.spent += c.tokens
                self.finish_reason = c.finish_reason
                if cap is not None and c.finish_reason == "length" and c.tokens >= cap:
                    self.truncated = True

    async def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        reqs, cap = self._capped(requests)
        if cap is not None and cap < 1:
            self.truncated = True
            return [[Completion(text="", tokens=0, finish_reason="length")] * r.n for r in reqs]
        if self.on_delta is not None and len(reqs) == 1 and reqs[0].n == 1:
            on_delta, self.on_delta = self.on_delta, None  # only the first (the only) sample streams
            out = [[await self.base.stream(reqs[0], on_delta)]]
        else:
            out = await self.base.generate(reqs)
        self._account(reqs, out, cap)
        return out
