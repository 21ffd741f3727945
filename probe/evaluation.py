"""Offline evaluation of selection policies on a labeled test split.

Every policy picks one strategy per query; it is scored with the TRUE soft label,
tokens and latency of that (query, strategy) from the test label table. Curves come
from sweeping lambda_T (accuracy vs tokens) and lambda_L (accuracy vs latency).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probe.selection import select


@dataclass(frozen=True)
class Truth:
    acc: np.ndarray  # [Q, S] soft labels
    tokens: np.ndarray  # [Q, S]
    latency: np.ndarray  # [Q, S]

    @classmethod
    def from_table(cls, table) -> "Truth":
        """Measured soft labels and costs of a LabelTable, in its query and grid order."""
        return cls(table.matrix("soft_label"), table.matrix("mean_tokens"), table.matrix("mean_latency_s"))


def outcome(truth: Truth, index: np.ndarray) -> dict:
    q = np.arange(len(index))
    return {"accuracy": float(truth.acc[q, index].mean()), "tokens": float(truth.tokens[q, index].mean()),
            "latency": float(truth.latency[q, index].mean())}


def static_points(truth: Truth, ids: list[str]) -> list[dict]:
    return [{"strategy": sid, "accuracy": float(truth.acc[:, j].mean()),
             "tokens": float(truth.tokens[:, j].mean()), "latency": float(truth.latency[:, j].mean())}
            for j, sid in enumerate(ids)]


def sweep(truth: Truth, acc: np.ndarray, tokens: np.ndarray, latency: np.ndarray,
          lambdas_t, lambdas_l) -> list[dict]:
    pts = []
    for lt in lambdas_t:
        for ll in lambdas_l:
            sel = select(acc, tokens, latency, lambda_tokens=lt, lambda_latency=ll)
            pts.append({"lambda_tokens": float(lt), "lambda_latency": float(ll), **outcome(truth, sel.index)})
    return pts


def random_point(truth: Truth, seeds: int = 20) -> dict:
    q, s = truth.acc.shape
    outs = [outcome(truth, np.random.default_rng(k).integers(0, s, q)) for k in range(seeds)]
    return {k: float(np.mean([o[k] for o in outs])) for k in outs[0]}


def frontier(points: list[dict], cost: str) -> tuple[np.ndarray, np.ndarray]:
    """Upper envelope: for increasing cost, the best accuracy reachable at or below it."""
    pts = sorted(points, key=lambda p: (p[cost], -p["accuracy"]))
    xs, ys, best = [], [], -np.inf
    for p in pts:
        if p["accuracy"] > best:
            best = p["accuracy"]
            xs.append(p[cost])
            ys.append(best)
    return np.array(xs), np.array(ys)


def accuracy_at(points: list[dict], cost: str, budget: float) -> float:
    xs, ys = frontier(points, cost)
    ok = xs <= budget * (1 + 1e-9)
    return float(ys[ok].max()) if ok.any() else float("nan")


def normalized_area(static: list[dict], adaptive: list[dict], oracle: list[dict], cost: str = "tokens",
                    grid_points: int = 400) -> dict:
    """(area adaptive - static frontier) / (area oracle - static frontier) over the shared cost range.

    Costs on a log axis (strategies span orders of magnitude). 0 = no better than the best
    static configs, 1 = as good as the oracle; negative when adaptive falls below static."""
    lo = max(frontier(c, cost)[0].min() for c in (static, adaptive, oracle))
    hi = min(max(p[cost] for p in c) for c in (static, adaptive, oracle))
    if not hi > lo:
        return {"value": float("nan"), "range": [float(lo), float(hi)]}
    xs = np.exp(np.linspace(np.log(lo), np.log(hi), grid_points))

    def curve(pts):
        return np.array([accuracy_at(pts, cost, x) for x in xs])

    s, a, o = curve(static), curve(adaptive), curve(oracle)
    denom = np.trapezoid(o - s, np.log(xs))
    value = float(np.trapezoid(a - s, np.log(xs)) / denom) if denom > 0 else float("nan")
    return {"value": value, "range": [float(lo), float(hi)]}


def log_grid(lo: float, hi: float, k: int) -> list[float]:
    return [0.0] + list(np.logspace(np.log10(lo), np.log10(hi), k))
