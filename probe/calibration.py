"""Platt scaling and the probe's quality metrics on soft labels.

Soft labels are empirical accuracies in [0, 1]; BCE, Brier and ECE use them as
they are. AUC needs binary outcomes, so it counts a row as positive when its
soft label is at least 0.5.
"""

from __future__ import annotations

import numpy as np
import torch


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


class Platt:
    """p = sigmoid(a * logit + b), fitted by LBFGS on held-out (logit, soft label) pairs."""

    def __init__(self, a: float = 1.0, b: float = 0.0):
        self.a, self.b = float(a), float(b)

    @classmethod
    def fit(cls, logits: np.ndarray, labels: np.ndarray, max_iter: int = 200) -> "Platt":
        x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
        y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
        a = torch.ones((), dtype=torch.float64, requires_grad=True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([a, b], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(a * x + b, y)
            loss.backward()
            return loss

        opt.step(closure)
        return cls(float(a.detach()), float(b.detach()))

    def __call__(self, logits) -> np.ndarray:
        return sigmoid(self.a * np.asarray(logits, dtype=np.float64) + self.b)

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b}


def bce(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(p) - np.asarray(y)) ** 2))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Bin-weighted |mean prediction - mean soft label| over equal-width bins."""
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        sel = idx == k
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def auc(p: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    yb = (np.asarray(y) >= 0.5).astype(int)
    if yb.min() == yb.max():
        return float("nan")
    return float(roc_auc_score(yb, p))


def report(p: np.ndarray, y: np.ndarray) -> dict:
    return {"bce": bce(p, y), "brier": brier(p, y), "auc": auc(p, y),
            "ece": expected_calibration_error(p, y), "rows": int(len(y))}
