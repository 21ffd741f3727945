"""The paper's pipeline on Ray, for real on small sizes: label -> probe -> evaluate."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import evaluate, label, train_probe
from jobs.demo import split_table
from tests.support import STRATEGIES, label_cfg as cfg
from ttc.label_table import LabelTable

def test_resumed_labeling_equals_uninterrupted_run(labeled):
    d, n = labeled["dir"], labeled["n"]
    assert len(labeled["first"]) >= 1, "the crashed run should have finished a shard"
    assert labeled["resumed"]["shards_skipped"] == len(labeled["first"])
    for name, mtime in labeled["first"].items():  # finished work was not redone
        assert (d / "resumed" / "shards" / name).stat().st_mtime_ns == mtime
    a = pq.read_table(d / "resumed" / "labels.parquet")
    b = pq.read_table(d / "straight" / "labels.parquet")
    keys = lambda t: sorted(zip(t["query_id"].to_pylist(), t["strategy_id"].to_pylist()))  # noqa: E731
    assert keys(a) == keys(b) and len(keys(a)) == n * len(STRATEGIES)
    assert len(set(keys(a))) == len(keys(a))
    # Same seeds, same engines: the soft labels agree too.
    sa = dict(zip(zip(a["query_id"].to_pylist(), a["strategy_id"].to_pylist()), a["soft_label"].to_pylist()))
    sb = dict(zip(zip(b["query_id"].to_pylist(), b["strategy_id"].to_pylist()), b["soft_label"].to_pylist()))
    assert sa == sb


def test_label_table_contents_and_metadata(labeled):
    t = LabelTable.read(labeled["dir"] / "straight" / "labels.parquet")
    assert t.meta["grid_hash"] and t.meta["seed"] == "0" and "policy" in t.meta["policy_model"]
    acc = t.matrix("soft_label")
    tokens = t.matrix("mean_tokens")
    lat = t.matrix("mean_latency_s")
    assert np.all((acc >= 0) & (acc <= 1)) and np.all(tokens > 0) and np.all(lat > 0)
    ids = t.strategy_ids
    # Cost grows with N: 4 samples cost about 4x one sample.
    ratio = tokens[:, ids.index("majority/n=4")].mean() / tokens[:, ids.index("majority/n=1")].mean()
    assert 3.0 < ratio < 5.0
    # PRM strategies add scoring time to the same generation.
    assert lat[:, ids.index("best_of_n/n=4")].mean() > lat[:, ids.index("majority/n=4")].mean()
    assert labeled["straight"]["token_saving_ratio"] > 1.0
    runs = t.matrix("runs")
    # Beam soft labels come from independent runs, not one binary run.
    assert np.all(runs[:, ids.index("beam_search/n=4/m=2/it=10")] == label.LabelConfig.model_fields["beam_runs"].default)


def test_probe_and_evaluation_on_labeled_splits(labeled, tmp_path):
    paths = split_table(labeled["dir"] / "straight" / "labels.parquet", tmp_path)
    probe = train_probe.run(train_probe.TrainProbeConfig(
        train_labels=str(paths["train"]), val_labels=str(paths["val"]), out_dir=str(tmp_path / "probe"),
        max_epochs=5))
    assert probe["epochs"] >= 1 and probe["grid_hash"]
    s = evaluate.run(evaluate.EvaluateConfig(test_labels=str(paths["test"]), artifact=str(tmp_path / "probe"),
                                             out_dir=str(tmp_path / "report"), sweep_points=8,
                                             train_labels=str(paths["train"])))
    for f in ("summary.json", "report.md", "accuracy_vs_tokens.png", "accuracy_vs_latency.png",
              "chosen_strategy_shares.png"):
        assert (tmp_path / "report" / f).stat().st_size > 0
    # The baselines that keep it honest are there, scored on the same test rows.
    assert s["lookup_router"]["available"] and s["lookup_router"]["levels"] == list(range(1, 9))
    assert s["learned_minus_lookup_area"]["paper"].keys() == {"tokens", "latency"}
    assert len(s["latency_budgets"]) == len(STRATEGIES)
    assert s["tokens_to_match"]["all"]["oracle"]["reached"]
    if s["split_oracle"]["available"]:
        assert s["split_oracle"]["best_split_oracle"]["accuracy"] <= s["oracle_best"]["accuracy"] + 1e-9
    best_static = s["best_static"]["accuracy"]
    assert s["oracle_best"]["accuracy"] >= best_static >= s["random"]["accuracy"] - 1e-9
    assert len(s["adaptive_at_static_tokens"]) == len(STRATEGIES)
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["test_queries"] == 16


def test_bad_inputs_refused_before_any_work(ray_session, query_file, tmp_path):
    qpath, _ = query_file
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        label.run(cfg(empty, tmp_path / "o1"))
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"question": "1 + 1", "answer": "2", "lvl": 1}) + "\n")
    with pytest.raises(ValueError, match="unexpected column"):
        label.run(cfg(extra, tmp_path / "o2"))
    dup = label.LabelConfig(queries=str(qpath), out_dir=str(tmp_path / "o3"),
                            strategies=["majority/n=1", "majority/n=1"])
    with pytest.raises(ValueError, match="duplicate ids"):
        label.run(dup)
    for d in ("o1", "o2", "o3"):
        assert not (tmp_path / d).exists(), "nothing may be written for a refused job"
    with pytest.raises(ValueError, match="lambda_tokens_range"):
        evaluate.EvaluateConfig(test_labels="x", artifact="y", out_dir="z", lambda_tokens_range=(-1.0, 1.0))
    with pytest.raises(ValueError):
        evaluate.EvaluateConfig(test_labels="x", artifact="y", out_dir="z", lambda_latency_range=("a", 1.0))


def test_labels_for_another_grid_are_refused(labeled, query_file):
    from ttc.grid import paper_grid

    with pytest.raises(ValueError, match="not grid 'paper'"):
        LabelTable.read(labeled["dir"] / "straight" / "labels.parquet", expected_grid=paper_grid())
    # Resuming into a folder labeled with another strategy set is refused, naming the reason.
    other = label.LabelConfig(queries=str(query_file[0]), out_dir=str(labeled["dir"] / "straight"),
                              strategies=["majority/n=1"], resamples=10)
    with pytest.raises(ValueError, match="grid_hash"):
        label.run(other)


def test_shifted_set_report(labeled, small_artifact, tmp_path):
    """The shifted query set, labeled by the real engines, gets the same report under its name."""
    from jobs.shift import evaluate_shift, shifted_queries
    from ttc.queries import write_queries

    queries = shifted_queries(per_level=1)
    assert all(q.query_id.startswith("shift-") and q.source == "arithmetic/mul_heavy" for q in queries)
    lab = label.run(cfg(write_queries(queries, tmp_path / "shift.parquet"), tmp_path / "labels"))
    s = evaluate_shift(lab["table"], small_artifact["path"], tmp_path / "report",
                       train_labels=small_artifact["splits"]["train"], sweep_points=6)
    assert s["test_queries"] == len(queries) and "mul_heavy" in s["query_set"]
    assert "mul_heavy" in (tmp_path / "report" / "report.md").read_text()
