"""The strategies' Generator / StepScorer interfaces bound to Serve deployment handles.

A replica that dies after accepting a call surfaces as RayActorError; Serve does
not retry those, so the call is retried here on another replica (bounded), and a
pool that stays unavailable becomes `PoolUnavailable` (the router answers 503).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from ttc.interfaces import Completion, GenerationRequest, ScoreRequest


class PoolUnavailable(RuntimeError):
    pass


async def _call(method, payload, retries: int, timeout_s: float):
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import BackPressureError

    last = None
    for attempt in range(retries + 1):
        try:
            return await asyncio.wait_for(method.remote(payload), timeout=timeout_s)
        except (RayActorError, BackPressureError, asyncio.TimeoutError) as exc:
            last = exc
            await asyncio.sleep(0.2 * (attempt + 1))
    raise PoolUnavailable(f"pool unavailable after {retries + 1} attempts: {type(last).__name__}")


class HandleGenerator:
    def __init__(self, handle, retries: int = 3, timeout_s: float = 120.0):
        self.handle, self.retries, self.timeout_s = handle, retries, timeout_s

    async def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        out = await _call(self.handle.generate, [asdict(r) for r in requests], self.retries, self.timeout_s)
        return [[Completion(**c) for c in comps] for comps in out]


class HandleScorer:
    def __init__(self, handle, retries: int = 3, timeout_s: float = 120.0):
        self.handle, self.retries, self.timeout_s = handle, retries, timeout_s

    async def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        payload = [{"question": r.question, "steps": list(r.steps), "known": r.known} for r in requests]
        return await _call(self.handle.score, payload, self.retries, self.timeout_s)
