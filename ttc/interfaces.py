"""The two small async interfaces every strategy is written against.

Jobs bind them to in-process vLLM engines; the Serve router binds them to
deployment handles. Both take a whole batch per call so strategies can put many
queries (and many beams) into one engine call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    n: int = 1
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self):
        if self.n <= 0:
            raise ValueError(f"n must be a positive number of completions, got {self.n}")
        if self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {self.max_tokens}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")


@dataclass(frozen=True)
class Completion:
    text: str
    tokens: int
    finish_reason: str  # "stop" (stop string), "eos", or "length"
    stop_reason: str | None = None


@dataclass(frozen=True)
class ScoreRequest:
    """Score `steps`; the caller already holds the rewards of the first `known` steps
    (it scored that prefix before), so only rewards of steps[known:] come back and an
    engine may compute just the new tokens (prefix cache)."""

    question: str
    steps: tuple[str, ...] = field(default=())
    known: int = 0

    def __post_init__(self):
        if not 0 <= self.known <= len(self.steps):
            raise ValueError(f"known must be in 0..{len(self.steps)} (the number of steps), got {self.known}")


@runtime_checkable
class Generator(Protocol):
    async def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        """One list of `n` completions per request, in request order."""


@runtime_checkable
class StepScorer(Protocol):
    async def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        """One reward in [0, 1] per step after the `known` ones, per request, in request order."""
