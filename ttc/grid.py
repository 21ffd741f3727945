"""Strategy specs and grids: stable string ids, numeric features, a grid hash."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

AGGREGATIONS = ("last", "min", "prod")
_ID_KEYS = {"n": "n", "m": "beam_width", "it": "max_iterations", "tau": "tau", "agg": "aggregation"}


class StrategySpec(BaseModel):
    """One configuration of one method; what each field means is the method's business
    (ttc/methods), which also validates it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    n: int
    beam_width: int = 1
    max_iterations: int = 1
    aggregation: Literal["last", "min", "prod"] = "last"
    tau: float | None = None  # escalate: stage-1 PRM score needed to stop
    then: "StrategySpec | None" = None  # escalate: the stage-2 config

    @model_validator(mode="before")
    @classmethod
    def _known_method(cls, data):
        from ttc.methods import method_names

        if isinstance(data, dict) and data.get("method") not in method_names():
            raise ValueError(f"unknown method {data.get('method')!r}; known: {', '.join(method_names())}")
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.n <= 0:
            raise ValueError(f"n must be positive, got {self.n}")
        self.impl.validate(self)
        return self

    @property
    def impl(self):
        from ttc.methods import get_method

        return get_method(self.method)

    @property
    def uses_prm(self) -> bool:
        return self.impl.uses_prm

    @property
    def id(self) -> str:
        parts = [self.method, f"n={self.n}"]
        for fld, key in self.impl.id_fields:
            v = getattr(self, fld)
            parts.append(f"{key}={v:g}" if isinstance(v, float) else f"{key}={v}")
        if self.uses_prm and self.aggregation != "last":
            parts.append(f"agg={self.aggregation}")
        if self.then is not None:
            parts.append(f"then={self.then.id}")
        return "/".join(parts)

    @classmethod
    def from_id(cls, sid: str) -> "StrategySpec":
        head, sep, then = sid.partition("/then=")
        parts = head.split("/")
        fields: dict = {"method": parts[0]}
        for p in parts[1:]:
            key, _, value = p.partition("=")
            if key not in _ID_KEYS or not value:
                raise ValueError(f"malformed strategy id {sid!r}")
            try:
                fields[_ID_KEYS[key]] = value if key == "agg" else float(value) if key == "tau" else int(value)
            except ValueError:
                raise ValueError(f"malformed strategy id {sid!r}: {key}={value!r} is not a number") from None
        if sep:
            if not then:
                raise ValueError(f"malformed strategy id {sid!r}: empty stage 2 after then=")
            fields["then"] = cls.from_id(then)
        return cls(**fields)

    def features(self) -> list[float]:
        """In the order of `ttc.methods.feature_layout()`: [log2 N, beam width, max
        iterations, one-hot method] (the paper's), log2 N x one-hot method, then every
        method's own features (0 for the others).

        N helps majority voting and hurts best-of-N with a weak PRM; with a shared log2 N the
        probe averaged those trends and ranked single samples first (measured: it picked
        majority/n=1 at lambda = 0 on 400 test queries); the per-method slopes fix that."""
        from ttc.methods import method_names

        names = method_names()
        onehot = [1.0 if self.method == m else 0.0 for m in names]
        log_n = math.log2(self.n)
        extra = []
        for m in names:
            impl = self.impl if m == self.method else None
            extra += impl.extra_features(self) if impl else [0.0] * len(_impl(m).extra_feature_names)
        return ([log_n, float(self.beam_width), float(self.max_iterations)] + onehot
                + [log_n * h for h in onehot] + extra)


def _impl(name: str):
    from ttc.methods import get_method

    return get_method(name)


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

    def feature_layout(self) -> list[str]:
        from ttc.methods import feature_layout

        return list(feature_layout())

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


def _escalations(stage1: list[tuple[int, float]], then_ids: list[str]) -> list[StrategySpec]:
    """Stage 1 judged by its weakest step (min): one wrong step is enough to doubt it."""
    return [StrategySpec(method="escalate", n=n, tau=tau, aggregation="min", then=StrategySpec.from_id(t))
            for n, tau in stage1 for t in then_ids]


def paper_grid() -> StrategyGrid:
    """The 22 configs of the reference method (GPU recipe default), then escalation beside them."""
    beams = [(2, 2, 40), (4, 2, 40), (8, 4, 20), (16, 2, 40), (16, 4, 20), (32, 2, 20), (32, 4, 40)]
    return StrategyGrid(name="paper", strategies=tuple(
        _parallel([2, 4, 8, 16, 32])
        + [StrategySpec(method="beam_search", n=n, beam_width=m, max_iterations=it)
           for n, m, it in beams]
        + _escalations([(1, 0.5), (1, 0.9)], ["weighted_best_of_n/n=16", "weighted_best_of_n/n=32",
                                              "beam_search/n=16/m=4/it=20"])))


def cpu_grid() -> StrategyGrid:
    """Sized for the CPU world: N <= 16, at most 10 iterations (problems have <= 8 steps).

    majority/n=1 is a single sample, the cheapest possible choice. Escalation's stage 2 is
    a config of the grid, so its labels reuse that config's pool or runs. No beam at N=16:
    beam 16/4 was dominated by weighted BoN/16 on every split of the session-7 demo (test:
    0.905 vs 0.917 at the same 998 tokens, and slower) while taking 36% of labeling time."""
    beams = [(4, 2, 10), (8, 2, 10), (8, 4, 10)]
    return StrategyGrid(name="cpu", strategies=tuple(
        [StrategySpec(method="majority", n=1)]
        + _parallel([2, 4, 8, 16])
        + [StrategySpec(method="beam_search", n=n, beam_width=m, max_iterations=it)
           for n, m, it in beams]
        + _escalations([(1, 0.5), (1, 0.9)], ["weighted_best_of_n/n=8", "weighted_best_of_n/n=16",
                                              "beam_search/n=8/m=2/it=10"])
        + _escalations([(2, 0.9)], ["weighted_best_of_n/n=8", "weighted_best_of_n/n=16"])))


GRIDS = {"paper": paper_grid, "cpu": cpu_grid}


def get_grid(name: str) -> StrategyGrid:
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known: {sorted(GRIDS)}")
    return GRIDS[name]()
