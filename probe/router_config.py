"""Router config: the lambdas, SLO targets, grid subset and artifact the router serves with.

Produced by the tuning job, consumed by the Serve app. Presets are named
variants (the OpenAI-compatible `model` field picks one).
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lambda_tokens: float = Field(0.0, ge=0)
    lambda_latency: float = Field(0.0, ge=0)
    max_latency_s: float | None = Field(None, gt=0)
    max_tokens: float | None = Field(None, gt=0)

    @field_validator("lambda_tokens", "lambda_latency", "max_latency_s", "max_tokens")
    @classmethod
    def _finite(cls, v):
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


def resolve_token(value: str | None) -> str | None:
    """A bearer token as configured: `env:NAME` reads it from the environment; None falls
    back to LATTE_API_TOKEN; empty means no auth."""
    import os

    if value and value.startswith("env:"):
        return os.environ.get(value[4:]) or None
    return value or os.environ.get("LATTE_API_TOKEN") or None


class SLOTargets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean_tokens: float | None = Field(None, gt=0)
    p50_latency_s: float | None = Field(None, gt=0)
    p95_latency_s: float | None = Field(None, gt=0)


class RouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: str
    recipe: str = "cluster/recipes/cpu_world.yaml"
    default_preset: str = "latte"
    presets: dict[str, Preset] = Field(default_factory=lambda: {
        "latte": Preset(lambda_tokens=1e-4, lambda_latency=0.01),
        "latte-fast": Preset(lambda_tokens=2e-3, lambda_latency=0.2),
        "latte-accurate": Preset(),
    })
    strategies: list[str] | None = None  # grid subset; default: the artifact's grid
    slo: SLOTargets = SLOTargets()
    max_question_chars: int = Field(2000, gt=0)
    # Bearer token for the HTTP API; None = no auth. `env:NAME` reads it from the environment.
    api_token: str | None = None

    def resolved_token(self) -> str | None:
        return resolve_token(self.api_token)

    def artifact_path(self) -> Path:
        from ttc.world.paths import repo_path

        return repo_path(self.artifact)

    @field_validator("presets")
    @classmethod
    def _non_empty(cls, v):
        if not v:
            raise ValueError("at least one preset is needed")
        return v

    def preset(self, name: str | None) -> Preset:
        key = name or self.default_preset
        if key not in self.presets:
            raise KeyError(key)
        return self.presets[key]

    @classmethod
    def load(cls, path: str | Path) -> "RouterConfig":
        from ttc.world.paths import load_yaml_mapping

        return cls(**load_yaml_mapping(path, "router config"))
