"""Single-request latency for batched labels, modeled from calibration queries.

Batched labeling cannot time a request served alone, so a calibration subset of queries
(spread over difficulty) is labeled one query at a time with every engine call timed.
Per timed component (`sample/n=N`, `score/n=N`, a beam config's run) a linear model
seconds ~ a + b * tokens + c * prompt chars is fitted on those points, and every other
row's latency is the sum of its components' predictions (its `latency_parts`). The
model's error is measured on calibration queries it was not fitted on (k-fold by query).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass
class ComponentFit:
    coef: np.ndarray  # over [1, tokens, prompt_chars] (unused terms are 0)
    floor: float  # half the fastest observation: a prediction never goes below it

    def predict(self, tokens: float, prompt_chars: float) -> float:
        x = np.array([1.0, tokens, prompt_chars])
        return max(self.floor, float(x @ self.coef))


def _fit_points(pts: list[dict]) -> ComponentFit:
    y = np.array([p["seconds"] for p in pts], dtype=float)
    x = np.array([[1.0, p["tokens"], p["prompt_chars"]] for p in pts], dtype=float)
    # Few points: fewer terms (an intercept and a per-token slope need >= 4 points to be sane).
    use = [0, 1, 2] if len(pts) >= 12 else [0, 1] if len(pts) >= 4 else [0]
    sub = x[:, use]
    scale = np.maximum(np.abs(sub).max(axis=0), 1e-9)
    # A small ridge keeps nearly collinear columns (tokens ~ prompt length) from exploding.
    a = (sub / scale)
    coef_s = np.linalg.solve(a.T @ a + 1e-3 * np.eye(len(use)), a.T @ y)
    coef = np.zeros(3)
    coef[use] = coef_s / scale
    return ComponentFit(coef, 0.5 * float(y.min()))


class LatencyModel:
    def __init__(self, fits: dict[str, ComponentFit]):
        self.fits = fits

    @classmethod
    def fit(cls, points: list[dict]) -> "LatencyModel":
        by_comp: dict[str, list[dict]] = defaultdict(list)
        for p in points:
            by_comp[p["component"]].append(p)
        return cls({c: _fit_points(pts) for c, pts in by_comp.items()})

    def predict_row(self, parts: list, prompt_chars: float) -> float:
        total = 0.0
        for comp, tokens, weight in parts:
            if weight == 0:
                continue
            if comp not in self.fits:
                raise ValueError(f"no calibration timings for latency component {comp!r}; "
                                 "label more calibration queries")
            total += weight * self.fits[comp].predict(tokens, prompt_chars)
        return total

    def to_dict(self) -> dict:
        return {c: {"coef": f.coef.tolist(), "floor": f.floor} for c, f in self.fits.items()}


def cross_validated_error(points: list[dict], rows: list[dict], folds: int = 5) -> dict:
    """Relative error |predicted - measured| / measured of row latencies on calibration
    queries held out of the fit, overall and per method."""
    qids = sorted({p["query_id"] for p in points})
    measured = [r for r in rows if r["latency_measured"] and r["query_id"] in set(qids)]
    if len(qids) < 2 or not measured:
        return {"queries": len(qids), "mean_relative_error": None}
    k = min(folds, len(qids))
    fold_of = {q: i % k for i, q in enumerate(qids)}
    errs: dict[str, list[float]] = defaultdict(list)
    for f in range(k):
        model = LatencyModel.fit([p for p in points if fold_of[p["query_id"]] != f])
        for r in measured:
            if fold_of[r["query_id"]] != f:
                continue
            try:
                pred = model.predict_row(json.loads(r["latency_parts"]), len(r["question"]))
            except ValueError:  # a component seen only in this fold
                continue
            if r["mean_latency_s"] > 0:
                errs[r["method"]].append(abs(pred - r["mean_latency_s"]) / r["mean_latency_s"])
    allv = [e for v in errs.values() for e in v]
    return {"queries": len(qids), "folds": k, "rows": len(allv),
            "mean_relative_error": float(np.mean(allv)) if allv else None,
            "median_relative_error": float(np.median(allv)) if allv else None,
            "per_method": {m: float(np.mean(v)) for m, v in sorted(errs.items())}}


def fill_latency(rows: list[dict], points: list[dict]) -> tuple[list[dict], dict]:
    """Rows with every unmeasured latency predicted, and a report of the model."""
    unmeasured = [r for r in rows if not r["latency_measured"]]
    report = {"calibration_points": len(points),
              "calibration_queries": len({p["query_id"] for p in points}),
              "filled_rows": len(unmeasured)}
    if not points:
        if unmeasured:
            raise ValueError("batched labels need calibration queries to model latency; none were labeled")
        return rows, report
    model = LatencyModel.fit(points)
    for r in unmeasured:
        r["mean_latency_s"] = model.predict_row(json.loads(r["latency_parts"]), len(r["question"]))
        if not math.isfinite(r["mean_latency_s"]):
            raise ValueError(f"latency model gave {r['mean_latency_s']} for {r['strategy_id']}")
    report["error_on_held_out_calibration_queries"] = cross_validated_error(points, rows)
    report["model"] = model.to_dict()
    return rows, report
