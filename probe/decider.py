"""Per-query decisions: embed, predict A/T/L over the grid in one pass, pick s*.

Pure (no Ray, no HTTP): the Serve router and the tuning job's offline replay
both call it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from probe.artifact import ProbeArtifact
from probe.features import check_featurizer
from probe.selection import select


@dataclass
class Decision:
    strategy_id: str
    predicted_accuracy: float
    predicted_tokens: float
    predicted_latency_s: float
    feasible: bool
    top: list[dict]
    decision_s: float


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


class Decider:
    def __init__(self, artifact: ProbeArtifact, featurizer, strategies: list[str] | None = None):
        check_featurizer(artifact, featurizer)
        self.artifact = artifact
        self.featurizer = featurizer
        ids = artifact.grid.ids
        unknown = [s for s in strategies or [] if s not in ids]
        if unknown:
            raise ValueError(f"strategies {unknown} are not in the artifact's grid")
        self.columns = [ids.index(s) for s in strategies] if strategies else list(range(len(ids)))
        self.ids = [ids[j] for j in self.columns]
        self.allowed = artifact.allowed(self.ids)  # [S] what the router may choose (forcing aside)

    def predict(self, questions: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        qf = self.featurizer.embed(questions)
        acc = self.artifact.predict_accuracy(qf)[:, self.columns]
        tok, lat = self.artifact.predict_costs(qf)
        return acc, tok[:, self.columns], lat[:, self.columns]

    def decide(self, questions: list[str], lambda_tokens: float = 0.0, lambda_latency: float = 0.0,
               max_tokens: float | None = None, max_latency_s: float | None = None,
               top_k: int = 5) -> list[Decision]:
        t0 = time.perf_counter()
        acc, tok, lat = self.predict(questions)
        sel = select(acc, tok, lat, lambda_tokens, lambda_latency, max_tokens, max_latency_s, self.allowed)
        elapsed = (time.perf_counter() - t0) / max(1, len(questions))
        out = []
        for q, j in enumerate(sel.index):
            order = np.argsort(-sel.rank[q], kind="stable")[:top_k]
            # Utility can be -inf under huge lambdas: reported as null (JSON has no infinities).
            top = [{"strategy": self.ids[k], "utility": _finite_or_none(sel.utility[q, k]),
                    "predicted_accuracy": float(acc[q, k]), "predicted_tokens": float(tok[q, k]),
                    "predicted_latency_s": float(lat[q, k])} for k in order]
            out.append(Decision(self.ids[j], float(acc[q, j]), float(tok[q, j]), float(lat[q, j]),
                                bool(sel.feasible[q]), top, elapsed))
        return out

    def strategy_table(self) -> list[dict]:
        table = self.artifact.cost_table
        tok, lat, sd = table.tokens, table.latency, table.latency_sd
        return [{"strategy": sid, "predicted_tokens": float(tok[j]), "predicted_latency_s": float(lat[j]),
                 "latency_sd_s": None if sd is None else float(sd[j]),
                 **self.artifact.grid[sid].model_dump()} for sid, j in zip(self.ids, self.columns)]
