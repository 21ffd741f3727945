"""Sampling settings: the recipe's `sampling:` section, and the runtime value derived from it.

`SamplingSettings` is the one definition of the fields (defaults, constraints,
descriptions); `SamplingConfig`, what a StrategyRunner samples with, is the same model
plus the base seed, frozen so that a request's change makes a copy (`replace`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ttc.config_types import FiniteNonNegative


class SamplingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: FiniteNonNegative = Field(0.7, description="policy sampling temperature (0: greedy)")
    max_tokens: int = Field(256, gt=0, description="generated tokens at most per solution (parallel methods) "
                                                   "or per remaining solution (beam search)")
    step_max_tokens: int = Field(48, gt=0, description="generated tokens at most per beam-search step")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling: the probability mass sampled from")

    def config(self, seed: int = 0) -> SamplingConfig:
        return SamplingConfig(**self.model_dump(include=set(SamplingSettings.model_fields)), seed=seed)


class SamplingConfig(SamplingSettings):
    model_config = ConfigDict(frozen=True)

    seed: int = Field(0, description="base seed; each request's seed derives from it and the query id "
                                     "(ttc.strategies.request_seed)")

    def replace(self, **changes) -> SamplingConfig:
        """A copy with `changes` applied, validated like the original."""
        return SamplingConfig(**{**self.model_dump(), **changes})
