"""Fit the whole probe artifact from label tables: MLP, Platt scaling, cost models.

Split use: the MLP trains on the train table; the validation queries are cut in
two halves (alternating within each difficulty level), one for early stopping and one
for fitting Platt scaling (so the calibration is fitted on rows the MLP never selected on). Cost models are fitted
on the train table and their errors reported on the validation table.
"""

from __future__ import annotations

import numpy as np

from probe.artifact import ProbeArtifact, QueryReducer
from probe.calibration import Platt, report
from probe.costs import CostTable, RidgeCostModel, cost_errors
from probe.features import featurizer_record
from probe.mlp import TrainConfig, pair_features, train_probe
from probe.selection import dominated
from ttc.grid import StrategyGrid
from ttc.label_table import LabelTable


def validation_halves(table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the validation queries' early-stopping and calibration halves, alternating
    within each difficulty level. Label tables are ordered by level, so cutting the table in the
    middle would stop on the easy levels and calibrate on the hard ones."""
    if len(table.query_ids) < 2:
        raise ValueError("the validation table needs at least 2 queries (early stopping + calibration)")
    diffs = table.difficulties()
    levels: dict = {}
    for i, q in enumerate(table.query_ids):
        levels.setdefault(diffs.get(q), []).append(i)
    order = [i for rows in levels.values() for i in rows]
    return np.sort(np.array(order[0::2])), np.sort(np.array(order[1::2]))


def embed_table(featurizer, table: LabelTable) -> np.ndarray:
    questions = table.questions()
    return featurizer.embed([questions[q] for q in table.query_ids])


def fit_artifact(grid: StrategyGrid, featurizer, train: LabelTable, val: LabelTable,
                 cfg: TrainConfig = TrainConfig(), cfg_components: int | None = None,
                 exclude_dominated: bool = True) -> ProbeArtifact:
    for name, t in (("train", train), ("validation", val)):
        if t.strategy_ids != grid.ids:
            raise ValueError(f"the {name} label table's strategies do not match grid {grid.name!r}")
    sf = np.array([s.features() for s in grid.strategies], dtype=np.float32)
    qf_train, qf_val = embed_table(featurizer, train), embed_table(featurizer, val)
    featurizer_info = featurizer_record(featurizer, qf_train.shape[1])
    # Few hundred labeled queries vs a 385-d embedding: the MLP memorizes queries. Project
    # onto the top principal components of the training queries (kept in the artifact).
    reducer = QueryReducer.fit(qf_train, cfg_components)
    qf_train, qf_val = reducer(qf_train), reducer(qf_val)
    y_train, y_val = train.matrix("soft_label"), val.matrix("soft_label")
    stop_q, cal_q = validation_halves(val)
    probe = train_probe(pair_features(qf_train, sf), y_train.ravel(),
                        pair_features(qf_val[stop_q], sf), y_val[stop_q].ravel(), cfg)
    cal_logits = probe.logits(pair_features(qf_val[cal_q], sf))
    platt = Platt.fit(cal_logits, y_val[cal_q].ravel())
    cost_table = CostTable.fit(grid.ids, train.matrix("mean_tokens"), train.matrix("mean_latency_s"))
    ridge = RidgeCostModel(alpha=10.0).fit(qf_train, train.matrix("mean_tokens"), train.matrix("mean_latency_s"))
    vt, vl = val.matrix("mean_tokens"), val.matrix("mean_latency_s")
    table_t, table_l = cost_table.predict(len(val.query_ids))
    ridge_t, ridge_l = ridge.predict(qf_val)
    raw = 1 / (1 + np.exp(-cal_logits))
    metrics = {
        "calibration_rows": {"before": report(raw, y_val[cal_q].ravel()),
                             "after": report(platt(cal_logits), y_val[cal_q].ravel())},
        "cost_errors_validation": {
            "tokens": {"per_strategy_mean": cost_errors(table_t, vt), "per_query_ridge": cost_errors(ridge_t, vt)},
            "latency": {"per_strategy_mean": cost_errors(table_l, vl), "per_query_ridge": cost_errors(ridge_l, vl)},
        },
        "train_rows": int(y_train.size), "validation_rows": int(y_val.size),
    }
    # Chosen on validation (benchmarks/accuracy_head.py): never choosing what the training split
    # shows dominated removes the probe's per-cell winner's curse among near-equal strategies.
    excluded = ()
    if exclude_dominated:
        mask = dominated(y_train.mean(0), cost_table.tokens, cost_table.latency)  # the training split's means
        excluded = tuple(s for s, d in zip(grid.ids, mask) if d)
    metrics["excluded_strategies"] = list(excluded)
    return ProbeArtifact(featurizer=featurizer.name, grid=grid, probe=probe, platt=platt, excluded=excluded,
                         cost_table=cost_table, cost_model=ridge, metrics=metrics, reducer=reducer,
                         extra={"label_meta": {k: train.meta.get(k) for k in ("recipe", "policy_model", "prm_model", "seed")},
                                "featurizer": featurizer_info})
