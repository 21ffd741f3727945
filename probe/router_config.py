"""Router config: the lambdas, SLO targets, grid subset and artifact the router serves with.

Produced by the tuning job, consumed by the Serve app. Presets are named
variants (the OpenAI-compatible `model` field picks one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ttc.config_types import FiniteNonNegative, FinitePositive, RecipeFile
from ttc.paths import CPU_RECIPE


class Preset(BaseModel):
    """Lambdas and budgets of the utility U = accuracy - lambda_T * tokens - lambda_L * seconds."""

    model_config = ConfigDict(extra="forbid")

    lambda_tokens: FiniteNonNegative = Field(0.0, description="lambda_T: utility lost per predicted token")
    lambda_latency: FiniteNonNegative = Field(0.0, description="lambda_L: utility lost per predicted second")
    max_latency_s: FinitePositive | None = Field(None, description="latency budget per request: only "
                                                 "strategies predicted to fit compete; None: no budget")
    max_tokens: FinitePositive | None = Field(None, description="token budget per request, likewise")


def resolve_token(value: str | None) -> str | None:
    """A bearer token as configured: `env:NAME` reads it from the environment; None falls
    back to LATTE_API_TOKEN; empty means no auth."""
    import os

    if value and value.startswith("env:"):
        return os.environ.get(value[4:]) or None
    return value or os.environ.get("LATTE_API_TOKEN") or None


class SLOTargets(BaseModel):
    """Service-level targets over a query stream (None: no target); the tuning job meets them."""

    model_config = ConfigDict(extra="forbid")

    mean_tokens: FinitePositive | None = Field(None, description="mean generated tokens per request")
    p50_latency_s: FinitePositive | None = Field(None, description="median request latency, seconds")
    p95_latency_s: FinitePositive | None = Field(None, description="95th-percentile request latency, seconds")


class LoadControl(BaseModel):
    """How the router meets a latency budget under load (serve_app/load_control.py)."""

    model_config = ConfigDict(extra="forbid")

    aware: bool = Field(True, description="predict served latency (online service estimate + pool queues) "
                        "and shed with 429 when no strategy fits the budget; off: the artifact's costs, no shedding")
    max_in_flight: int = Field(24, gt=0, description="requests the router runs at once; more get 429 "
                               "(keep it below the Router's max_ongoing_requests so the router sees them)")
    concurrency_fill: float = Field(0.8, ge=0, le=1, description="share of max_in_flight the chosen mix may "
                                    "keep busy: at an arrival rate r a request's predicted mean latency must "
                                    "also fit concurrency_fill x max_in_flight / r (Little's law), else the "
                                    "fastest strategy within the budget is served; so the router moves to "
                                    "cheaper strategies before the limit sheds (probe/concurrency.py); 0: off")
    arrival_window_s: float = Field(2.0, gt=0, description="seconds of arrivals the rate is measured over")
    slo_guard_gain: float = Field(0.1, ge=0, description="how fast the guard's scale falls while the p95 the "
                                  "router delivered (requests under the SLO's budget, last slo_guard_window_s) runs "
                                  "over slo_guard_target x the SLO, and rises back under it; strategies fitting "
                                  "scale x the budget are preferred, else the fastest within it "
                                  "(probe/tail_guard.py); 0: off")
    slo_guard_target: float = Field(0.95, gt=0, le=1, description="the delivered p95, as a share of the SLO's, "
                                    "the guard holds")
    slo_guard_window_s: float = Field(15.0, gt=0, description="seconds of served requests the delivered p95 is "
                                      "measured over")
    slo_guard_min_scale: float = Field(0.5, gt=0, le=1, description="the least share of the SLO budget the "
                                       "guard's preference leaves")
    slo_budget_fraction: float = Field(0.7, gt=0, le=1, description="share of the SLO's p95 latency a "
                                       "request's predicted mean latency may use (the rest absorbs spread)")
    slo_tail_z: float = Field(1.645, ge=0, description="under the SLO's budget a strategy must also fit "
                              "its p95: predicted latency + z x its served spread (online, seeded from the "
                              "labels' spread); 1.645: the normal 95th percentile; 0: the mean check only. "
                              "A request's own max_latency_s bounds the mean")
    in_flight_queue: bool = Field(True, description="add the running requests' queue term (processor "
                                  "sharing with the work they still have, scaled by a learned beta) beside "
                                  "the pools' own: pool stats lag beam iterations and escalation's stage 2")
    congestion_gain: float = Field(1.0, ge=0, description="how fast the congestion price integrates "
                                   "the queue under a budget (probe.online_costs.CongestionPrice): a strategy "
                                   "that fits its own budget still delays the requests it shares engines "
                                   "with; 0 = each request judged on its own budget only; 1 (default) measured "
                                   "best of 0 / 0.3 / 1 / 3 at 2x load (README, benchmarks/serve_load)")
    congestion_resource: Literal["latency", "work"] = Field(
        "work", description="what the congestion price is charged on: the request's latency, or the "
        "engine work it takes (its tokens, in seconds of the policy pool's throughput)")
    congestion_target: float = Field(0.25, ge=0, description="the queue, as a share of the budget, at which "
                                     "the congestion price holds (above it the price rises, below it decays)")
    congestion_max_price: float = Field(10.0, ge=0, description="cap of the congestion price (accuracy per "
                                        "budget-length of latency)")
    stats_poll_s: float = Field(0.25, gt=0, description="how often the pools' load stats are read")
    confirm_shed_after_s: float = Field(0.02, ge=0, description="a shed decided on pool stats older than "
                                        "this is decided again on a fresh read first (a 429 is never "
                                        "the fault of a stale poll)")
    ewma_alpha: float = Field(0.2, gt=0, le=1, description="weight of a new observation in the online costs")
    decision_batch_size: int = Field(16, gt=0, description="decisions batched together (@serve.batch)")
    decision_batch_wait_s: float = Field(0.002, ge=0, description="longest wait to fill a decision batch")


class RouterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    artifact: str = Field(description="probe artifact folder (jobs.train_probe), absolute or relative "
                                      "to the repo")
    recipe: RecipeFile = CPU_RECIPE
    default_preset: str = Field("latte", description="the preset a request naming none gets")
    presets: dict[str, Preset] = Field(default_factory=lambda: {
        "latte": Preset(lambda_tokens=1e-4, lambda_latency=0.01),
        "latte-fast": Preset(lambda_tokens=2e-3, lambda_latency=0.2),
        "latte-accurate": Preset(),
    }, description="named lambdas and budgets; the OpenAI `model` field picks one (GET /v1/models)")
    strategies: list[str] | None = Field(None, description="strategy ids the router may choose from "
                                         "(a subset of the artifact's grid); None: all of it")
    slo: SLOTargets = Field(SLOTargets(), description="targets the lambdas were tuned for; the p95 latency "
                            "also sets the default latency budget under load (load_control)")
    max_question_chars: int = Field(2000, gt=0, description="longer questions are refused with 413")
    load_control: LoadControl = Field(LoadControl(), description="latency budgets under load: served-latency "
                                      "estimates, admission and shedding")
    api_token: str | None = Field(None, description="bearer token of the HTTP API; `env:NAME` reads it from "
                                  "the environment; None or empty: LATTE_API_TOKEN if set, else no auth")

    def resolved_token(self) -> str | None:
        return resolve_token(self.api_token)

    def artifact_path(self) -> Path:
        from ttc.paths import repo_path

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
        from ttc.paths import read_mapping

        return cls(**read_mapping(path, "router config"))
