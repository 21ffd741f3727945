"""The probe artifact: everything the router needs to predict A, T, L for a query.

A folder with `probe.safetensors` (MLP weights) and `artifact.json` (format
version, featurizer, strategy grid and its hash, input standardization, Platt
parameters, cost table, per-query cost model, the strategies the router never chooses
because the training split shows them dominated, metrics). Loading it against a
different grid fails and says which grids differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from probe.calibration import Platt
from probe.costs import CostTable, RidgeCostModel, apply_floors, cost_floors
from probe.mlp import ProbeMLP, TrainedProbe, pair_features
from ttc.grid import StrategyGrid, StrategySpec

ARTIFACT_VERSION = 1


class ArtifactError(ValueError):
    pass


class QueryReducer:
    """Centering + projection on the top principal components of the training queries."""

    def __init__(self, mean: np.ndarray | None = None, components: np.ndarray | None = None):
        self.mean, self.components = mean, components

    @classmethod
    def fit(cls, x: np.ndarray, k: int | None) -> "QueryReducer":
        if not k or k >= min(x.shape):
            return cls()
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        return cls(mean, vt[:k])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.components is None:
            return x
        return ((x - self.mean) @ self.components.T).astype(np.float32)

    def to_dict(self) -> dict | None:
        if self.components is None:
            return None
        return {"mean": self.mean.tolist(), "components": self.components.tolist()}

    @classmethod
    def from_dict(cls, d: dict | None) -> "QueryReducer":
        return cls() if not d else cls(np.array(d["mean"]), np.array(d["components"]))


@dataclass
class ProbeArtifact:
    featurizer: str
    grid: StrategyGrid
    probe: TrainedProbe
    platt: Platt
    cost_table: CostTable
    cost_model: RidgeCostModel | None = None
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    reducer: QueryReducer = field(default_factory=QueryReducer)
    # Dominated on the training split (probe.selection.dominated): never chosen, still
    # predicted and runnable when a request forces them.
    excluded: tuple[str, ...] = ()

    def allowed(self, ids: list[str] | None = None) -> np.ndarray:
        """[S] True for the strategies (of `ids`, default the grid) the router may choose."""
        return np.array([s not in self.excluded for s in (ids or self.grid.ids)], dtype=bool)

    def strategy_features(self) -> np.ndarray:
        return self._strategy_features.copy()

    @cached_property
    def _strategy_features(self) -> np.ndarray:
        # A function of the grid alone; built per decision it was ~3% of the router's CPU.
        return np.array([s.features() for s in self.grid.strategies], dtype=np.float32)

    def predict_accuracy(self, query_feats: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """[Q, S] probability that each strategy answers each query correctly."""
        q, s = len(query_feats), len(self.grid.strategies)
        logits = self.probe.logits(pair_features(self.reducer(query_feats), self._strategy_features)).reshape(q, s)
        return self.platt(logits) if calibrated else 1 / (1 + np.exp(-logits))

    def predict_costs(self, query_feats: np.ndarray, per_query: bool = True):
        """Per-query ridge costs when the artifact has them (tokens grow with a problem's
        length and difficulty), else the per-strategy means of the training split; either way
        no strategy below the first engine call it always makes (probe.costs.cost_floors)."""
        if per_query and self.cost_model is not None:
            tok, lat = self.cost_model.predict(self.reducer(query_feats))
        else:
            tok, lat = self.cost_table.predict(len(query_feats))
        return apply_floors(tok, lat, self._cost_floors)

    @cached_property
    def _cost_floors(self) -> list[int | None]:
        # A function of the grid alone, so once per artifact, not per decision.
        return cost_floors(self.grid.strategies)

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.probe.model.state_dict().items()},
                  str(path / "probe.safetensors"))
        meta = {
            "version": ARTIFACT_VERSION,
            "featurizer": self.featurizer,
            "grid": {"name": self.grid.name, "ids": self.grid.ids, "hash": self.grid.hash},
            "input_dim": int(len(self.probe.mean)),
            # The strategy features depend on the method registry: an artifact is only valid
            # for the layout it was trained with.
            "strategy_feature_layout": self.grid.feature_layout(),
            "mean": self.probe.mean.tolist(), "std": self.probe.std.tolist(),
            "history": self.probe.history,
            "platt": self.platt.to_dict(),
            "cost_table": self.cost_table.to_dict(),
            "cost_model": self.cost_model.to_dict() if self.cost_model else None,
            "metrics": self.metrics, "extra": self.extra, "reducer": self.reducer.to_dict(),
            "excluded_strategies": list(self.excluded),
        }
        (path / "artifact.json").write_text(json.dumps(meta, indent=1))
        return path


def load_artifact(path: str | Path, expected_grid: StrategyGrid | None = None) -> ProbeArtifact:
    from safetensors.torch import load_file

    path = Path(path)
    meta_path = path / "artifact.json"
    if not meta_path.is_file() or not (path / "probe.safetensors").is_file():
        raise ArtifactError(f"{path} is not a probe artifact (needs artifact.json and probe.safetensors)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{meta_path} is not valid JSON: {exc}") from exc
    if meta.get("version") != ARTIFACT_VERSION:
        raise ArtifactError(f"{path}: artifact version {meta.get('version')} is not {ARTIFACT_VERSION}")
    try:
        grid = StrategyGrid(name=meta["grid"]["name"],
                            strategies=tuple(StrategySpec.from_id(i) for i in meta["grid"]["ids"]))
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"{path}: malformed strategy grid in artifact: {exc}") from exc
    if grid.hash != meta["grid"].get("hash"):
        raise ArtifactError(f"{path}: grid hash {meta['grid'].get('hash')} does not match its strategy ids")
    if expected_grid is not None and expected_grid.hash != grid.hash:
        missing = sorted(set(expected_grid.ids) - set(grid.ids))
        extra = sorted(set(grid.ids) - set(expected_grid.ids))
        raise ArtifactError(
            f"probe artifact {path} was trained for grid '{grid.name}' (hash {grid.hash}), not for grid "
            f"'{expected_grid.name}' (hash {expected_grid.hash}); strategies missing from the artifact: "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''}, not in the expected grid: {extra[:5]}"
            f"{'...' if len(extra) > 5 else ''}. Retrain the probe on a label table of this grid.")
    layout = meta.get("strategy_feature_layout")
    if layout != grid.feature_layout():
        raise ArtifactError(
            f"probe artifact {path} was trained with strategy feature layout {layout} "
            f"({len(layout or [])} features), but this code's method registry gives {grid.feature_layout()} "
            f"({len(grid.feature_layout())} features). Retrain the probe with this code.")
    excluded = tuple(meta.get("excluded_strategies") or ())
    if set(excluded) - set(grid.ids):
        raise ArtifactError(f"{path}: excluded strategies {sorted(set(excluded) - set(grid.ids))} are not in its grid")
    model = ProbeMLP(meta["input_dim"])
    model.load_state_dict(load_file(str(path / "probe.safetensors")))
    probe = TrainedProbe(model=model, mean=np.array(meta["mean"]), std=np.array(meta["std"]),
                         history=meta.get("history", []))
    return ProbeArtifact(
        featurizer=meta["featurizer"], grid=grid, probe=probe, platt=Platt(**meta["platt"]),
        cost_table=CostTable.from_dict(meta["cost_table"]),
        cost_model=RidgeCostModel.from_dict(meta["cost_model"]) if meta.get("cost_model") else None,
        metrics=meta.get("metrics", {}), extra=meta.get("extra", {}),
        reducer=QueryReducer.from_dict(meta.get("reducer")), excluded=excluded)
