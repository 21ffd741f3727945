"""Train the accuracy probe, its calibration and the cost models from label tables.

    python -m jobs.train_probe --config cluster/jobs/train_probe_cpu.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from jobs.config import load_config
from ttc.config_types import RecipeFile
from ttc.paths import CPU_RECIPE


class TrainProbeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train_labels: str = Field(description="training label table (fits the MLP and the cost models)")
    val_labels: str = Field(description="validation label table (early stopping on one half, Platt scaling on the "
                            "other)")
    out_dir: str = Field(description="artifact folder to write")
    recipe: RecipeFile = CPU_RECIPE
    featurizer: str = Field("policy_hidden", description="query featurizer (probe.features); policy_hidden was chosen "
                            "on validation")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate of the probe MLP")
    batch_size: int = Field(32, gt=0, description="probe MLP batch size")
    max_epochs: int = Field(30, gt=0, description="probe MLP epoch cap")
    patience: int = Field(3, gt=0, description="epochs without validation improvement before early stopping")
    pca_components: int | None = Field(None, gt=0, description="project query features on the top-k principal "
                                       "components of the training queries; None: full")
    seed: int = Field(0, description="training seed")
    exclude_dominated: bool = Field(True, description="never let the router choose strategies the training "
                                    "split shows dominated (chosen on validation: benchmarks.accuracy_head)")


def run(cfg: TrainProbeConfig) -> dict:
    from probe.features import get_featurizer
    from probe.mlp import TrainConfig
    from probe.training import fit_artifact
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    recipe = load_recipe(cfg.recipe)
    featurizer = get_featurizer(cfg.featurizer, recipe.policy.resolved_model(), recipe.format())
    train = LabelTable.read(cfg.train_labels)
    val = LabelTable.read(cfg.val_labels)
    if train.meta.get("grid_hash") != val.meta.get("grid_hash"):
        raise ValueError("train and validation label tables were made for different grids")
    grid = recipe.strategy_grid()
    ids = train.strategy_ids
    if ids != grid.ids:
        grid = grid.subset(ids)  # a table labeled on a subset of the recipe's grid
    artifact = fit_artifact(grid, featurizer, train, val,
                            TrainConfig(lr=cfg.lr, batch_size=cfg.batch_size, max_epochs=cfg.max_epochs,
                                        patience=cfg.patience, seed=cfg.seed),
                            cfg_components=cfg.pca_components, exclude_dominated=cfg.exclude_dominated)
    artifact.save(cfg.out_dir)
    return {"artifact": str(Path(cfg.out_dir)), "featurizer": artifact.featurizer, "grid_hash": grid.hash,
            "epochs": len(artifact.probe.history), **artifact.metrics}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    print(json.dumps(run(load_config(TrainProbeConfig, args.config)), indent=2))


if __name__ == "__main__":
    main()
