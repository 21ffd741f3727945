"""The accuracy probe: a 2-layer MLP (200-200, GELU, 1 output) over
[query features ; strategy features], trained with BCE on soft labels.

Inputs are standardized with statistics of the training rows (kept in the
artifact). Early stopping keeps the epoch with the lowest validation BCE: the
reference implementation saw overfitting after ~3 epochs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


class ProbeMLP(nn.Module):
    def __init__(self, in_dim: int, hidden: int = 200, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@dataclass
class TrainConfig:
    lr: float = 1e-3
    batch_size: int = 32
    max_epochs: int = 10
    patience: int = 2
    weight_decay: float = 1e-2
    seed: int = 0


@dataclass
class TrainedProbe:
    model: ProbeMLP
    mean: np.ndarray
    std: np.ndarray
    history: list[dict] = field(default_factory=list)

    def logits(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        with torch.no_grad():
            z = torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32)
            return self.model(z).numpy().astype(np.float64)


def pair_features(query_feats: np.ndarray, strategy_feats: np.ndarray) -> np.ndarray:
    """All (query, strategy) rows: [Q*S, dq + ds], query-major."""
    q, s = len(query_feats), len(strategy_feats)
    return np.hstack([np.repeat(query_feats, s, axis=0), np.tile(strategy_feats, (q, 1))]).astype(np.float32)


def _bce(model, x, y) -> float:
    with torch.no_grad():
        return float(nn.functional.binary_cross_entropy_with_logits(model(x), y))


def train_probe(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                cfg: TrainConfig = TrainConfig()) -> TrainedProbe:
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError("the probe needs training and validation rows")
    torch.manual_seed(cfg.seed)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0) + 1e-6
    xt = torch.as_tensor((x_train - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.float32)
    xv = torch.as_tensor((x_val - mean) / std, dtype=torch.float32)
    yv = torch.as_tensor(y_val, dtype=torch.float32)
    model = ProbeMLP(x_train.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, bad, history = float("inf"), None, 0, []
    for epoch in range(cfg.max_epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for b in range(0, len(xt), cfg.batch_size):
            idx = perm[b:b + cfg.batch_size]
            loss = nn.functional.binary_cross_entropy_with_logits(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        val = _bce(model, xv, yv)
        history.append({"epoch": epoch + 1, "train_bce": _bce(model, xt, yt), "val_bce": val})
        if val < best - 1e-5:
            best, best_state, bad = val, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    model.load_state_dict(best_state)
    return TrainedProbe(model=model, mean=mean, std=std, history=history)
