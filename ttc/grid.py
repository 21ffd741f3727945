"""Strategy specs and grids: stable string ids, numeric features, a grid hash."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

METHODS = ("majority", "best_of_n", "weighted_best_of_n", "beam_search")
AGGREGATIONS = ("last", "min", "prod")
Method = Literal["majority", "best_of_n", "weighted_best_of_n", "beam_search"]


class StrategySpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method
    n: int
    beam_width: int = 1
    max_iterations: int = 1
    aggregation: Literal["last", "min", "prod"] = "last"

    @model_validator(mode="before")
    @classmethod
    def _known_method(cls, data):
        if isinstance(data, dict) and data.get("method") not in METHODS:
            raise ValueError(f"unknown method {data.get('method')!r}; known: {', '.join(METHODS)}")
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.n <= 0:
            raise ValueError(f"n must be positive, got {self.n}")
        if self.method == "beam_search":
            if self.beam_width <= 0:
                raise ValueError(f"beam width must be positive, got {self.beam_width}")
            if self.n % self.beam_width:
                raise ValueError(f"beam width {self.beam_width} must divide n={self.n}")
            if self.max_iterations <= 0:
                raise ValueError(f"max_iterations must be positive, got {self.max_iterations}")
        elif self.beam_width != 1 or self.max_iterations != 1:
            raise ValueError(f"{self.method} takes no beam_width / max_iterations")
        return self

    @property
    def id(self) -> str:
        if self.method == "beam_search":
            base = f"beam_search/n={self.n}/m={self.beam_width}/it={self.max_iterations}"
        else:
            base = f"{self.method}/n={self.n}"
        uses_prm = self.method != "majority"
        return f"{base}/agg={self.aggregation}" if uses_prm and self.aggregation != "last" else base

    @classmethod
    def from_id(cls, sid: str) -> "StrategySpec":
        parts = sid.split("/")
        fields: dict = {"method": parts[0]}
        names = {"n": "n", "m": "beam_width", "it": "max_iterations", "agg": "aggregation"}
        for p in parts[1:]:
            key, _, value = p.partition("=")
            if key not in names or not value:
                raise ValueError(f"malformed strategy id {sid!r}")
            fields[names[key]] = value if key == "agg" else int(value)
        return cls(**fields)

    @property
    def uses_prm(self) -> bool:
        return self.method != "majority"

    def features(self) -> list[float]:
        """[log2 N, beam width, max iterations, one-hot method] (the paper's features), then
        log2 N x one-hot method.

        N helps majority voting and hurts best-of-N with a weak PRM; with a shared log2 N the
        probe averaged those trends and ranked single samples first (measured: it picked
        majority/n=1 at lambda = 0 on 400 test queries); the per-method slopes fix that."""
        onehot = [1.0 if self.method == m else 0.0 for m in METHODS]
        log_n = math.log2(self.n)
        return [log_n, float(self.beam_width), float(self.max_iterations)] + onehot + [log_n * h for h in onehot]


class StrategyGrid(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    strategies: tuple[StrategySpec, ...]

    @model_validator(mode="after")
    def _unique(self):
        if not self.strategies:
            raise ValueError("a strategy grid needs at least one strategy")
        ids = [s.id for s in self.strategies]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"grid {self.name!r} has duplicate strategy ids: {dup}")
        return self

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.strategies]

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.ids).encode()).hexdigest()[:16]

    def __getitem__(self, sid: str) -> StrategySpec:
        for s in self.strategies:
            if s.id == sid:
                return s
        raise KeyError(f"strategy {sid!r} is not in grid {self.name!r}")

    def subset(self, ids: list[str]) -> "StrategyGrid":
        return StrategyGrid(name=f"{self.name}-subset", strategies=tuple(self[i] for i in ids))


def _parallel(ns) -> list[StrategySpec]:
    return [StrategySpec(method=m, n=n) for m in ("majority", "best_of_n", "weighted_best_of_n")
            for n in ns]


def paper_grid() -> StrategyGrid:
    """The 22 configs of the reference method (GPU recipe default)."""
    beams = [(2, 2, 40), (4, 2, 40), (8, 4, 20), (16, 2, 40), (16, 4, 20), (32, 2, 20), (32, 4, 40)]
    return StrategyGrid(name="paper", strategies=tuple(
        _parallel([2, 4, 8, 16, 32])
        + [StrategySpec(method="beam_search", n=n, beam_width=m, max_iterations=it)
           for n, m, it in beams]))


def cpu_grid() -> StrategyGrid:
    """Sized for the CPU world: N <= 16, at most 10 iterations (problems have <= 8 steps).

    majority/n=1 is a single sample, the cheapest possible choice."""
    beams = [(4, 2, 10), (8, 2, 10), (8, 4, 10), (16, 4, 10)]
    return StrategyGrid(name="cpu", strategies=tuple(
        [StrategySpec(method="majority", n=1)]
        + _parallel([2, 4, 8, 16])
        + [StrategySpec(method="beam_search", n=n, beam_width=m, max_iterations=it)
           for n, m, it in beams]))


GRIDS = {"paper": paper_grid, "cpu": cpu_grid}


def get_grid(name: str) -> StrategyGrid:
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known: {sorted(GRIDS)}")
    return GRIDS[name]()
