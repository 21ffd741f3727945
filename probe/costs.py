"""Cost model: expected generated tokens T_s and seconds L_s of each strategy.

`CostTable` is the reference method's choice: per-strategy means over the
training rows. `RidgeCostModel` predicts per query: one ridge regression per
strategy on the query features, fitted on log(cost) (costs are positive and
multiplicative in N), which captures that longer/harder questions cost more.
"""

from __future__ import annotations

import numpy as np


class CostTable:
    """Per-strategy mean tokens and seconds, and the seconds' spread across queries (the
    router's tail estimate starts from it: verified escalation's latency is bimodal, its
    mean hides the requests that ran both stages). `latency_sd` is None in artifacts
    written before it was recorded."""

    def __init__(self, strategy_ids: list[str], tokens: np.ndarray, latency: np.ndarray,
                 latency_sd: np.ndarray | None = None):
        self.strategy_ids = list(strategy_ids)
        self.tokens = np.asarray(tokens, dtype=np.float64)
        self.latency = np.asarray(latency, dtype=np.float64)
        self.latency_sd = None if latency_sd is None else np.asarray(latency_sd, dtype=np.float64)

    @classmethod
    def fit(cls, strategy_ids: list[str], tokens: np.ndarray, latency: np.ndarray) -> "CostTable":
        """tokens/latency: [queries x strategies] measured values."""
        return cls(strategy_ids, np.nanmean(tokens, axis=0), np.nanmean(latency, axis=0),
                   np.nan_to_num(np.nanstd(latency, axis=0)))

    def predict(self, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
        return (np.tile(self.tokens, (n_queries, 1)), np.tile(self.latency, (n_queries, 1)))

    def to_dict(self) -> dict:
        d = {"strategy_ids": self.strategy_ids, "tokens": self.tokens.tolist(), "latency": self.latency.tolist()}
        if self.latency_sd is not None:
            d["latency_sd"] = self.latency_sd.tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "CostTable":
        sd = d.get("latency_sd")
        return cls(d["strategy_ids"], np.array(d["tokens"]), np.array(d["latency"]),
                   None if sd is None else np.array(sd))


class RidgeCostModel:
    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.coef_tokens: np.ndarray | None = None  # [S, d + 1]
        self.coef_latency: np.ndarray | None = None

    def _design(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        return np.hstack([z, np.ones((len(z), 1))])

    def _solve(self, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        reg = self.alpha * np.eye(a.shape[1])
        reg[-1, -1] = 0.0  # do not shrink the intercept
        return np.linalg.solve(a.T @ a + reg, a.T @ y)

    def fit(self, query_feats: np.ndarray, tokens: np.ndarray, latency: np.ndarray) -> "RidgeCostModel":
        self.mean = query_feats.mean(axis=0)
        self.std = query_feats.std(axis=0) + 1e-6
        a = self._design(query_feats)
        self.coef_tokens = self._solve(a, np.log(np.maximum(tokens, 1e-3))).T
        self.coef_latency = self._solve(a, np.log(np.maximum(latency, 1e-4))).T
        return self

    def predict(self, query_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = self._design(query_feats)
        return np.exp(a @ self.coef_tokens.T), np.exp(a @ self.coef_latency.T)

    def to_dict(self) -> dict:
        return {"alpha": self.alpha, "mean": self.mean.tolist(), "std": self.std.tolist(),
                "coef_tokens": self.coef_tokens.tolist(), "coef_latency": self.coef_latency.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "RidgeCostModel":
        m = cls(d["alpha"])
        m.mean, m.std = np.array(d["mean"]), np.array(d["std"])
        m.coef_tokens, m.coef_latency = np.array(d["coef_tokens"]), np.array(d["coef_latency"])
        return m


def cost_errors(pred: np.ndarray, true: np.ndarray) -> dict:
    """Mean absolute error and mean absolute relative error over all (query, strategy) cells."""
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return {"mae": float(np.mean(np.abs(pred - true))),
            "mean_relative_error": float(np.mean(np.abs(pred - true) / np.maximum(true, 1e-9)))}


def cost_floors(strategies) -> list[int | None]:
    """For each strategy, the index of the one whose whole cost is this one's first engine
    call (a vote of the same N under best-of-N, or under escalation's first stage), else
    None. That call is always paid, so its predicted tokens and latency bound this one's
    from below: per-query ridge models fitted apart can cross (on easy queries, where
    escalation never runs its second stage, its predicted tokens fell below one sample's)."""
    from ttc.methods.registry import get_method

    parts = [tuple(name for name, _ in get_method(s.method).latency_parts(s, 1.0)) for s in strategies]
    alone = {p[0]: j for j, p in enumerate(parts) if len(p) == 1}
    return [alone.get(p[0]) if len(p) > 1 else None for p in parts]


def apply_floors(tokens: np.ndarray, latency: np.ndarray, floors: list[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """[Q, S] costs with every strategy raised to at least its floor's (see cost_floors)."""
    tokens, latency = np.array(tokens, dtype=float), np.array(latency, dtype=float)
    for j, f in enumerate(floors):
        if f is not None:
            tokens[:, j] = np.fmax(tokens[:, j], tokens[:, f])  # fmax: a NaN floor does not spread
            latency[:, j] = np.fmax(latency[:, j], latency[:, f])
    return tokens, latency

