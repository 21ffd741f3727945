"""Pure probe logic: calibration, selection, costs, artifact round trip (no engines)."""

import numpy as np
import pytest

from probe.artifact import ArtifactError, ProbeArtifact, load_artifact
from probe.calibration import Platt, expected_calibration_error, report
from probe.costs import CostTable, RidgeCostModel, apply_floors, cost_errors, cost_floors
from probe.mlp import TrainConfig, pair_features, train_probe
from probe.selection import dominated, select
from ttc.grid import cpu_grid, paper_grid


def test_platt_fixes_a_miscalibrated_score():
    rng = np.random.default_rng(0)
    true_logit = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-true_logit))).astype(float)
    skewed = 3.0 * true_logit + 2.0  # overconfident and shifted
    before = expected_calibration_error(1 / (1 + np.exp(-skewed)), y)
    platt = Platt.fit(skewed, y)
    after = expected_calibration_error(platt(skewed), y)
    assert before > 0.1 and after < 0.03
    assert abs(platt.a - 1 / 3) < 0.05


def test_selection_utility_and_budgets():
    acc = np.array([[0.50, 0.70, 0.90], [0.80, 0.82, 0.84]])
    tokens = np.array([100.0, 400.0, 1600.0])
    latency = np.array([0.1, 0.5, 2.0])
    assert select(acc, tokens, latency).index.tolist() == [2, 2]
    # A token price makes the cheap strategy win where extra accuracy is small.
    assert select(acc, tokens, latency, lambda_tokens=1e-4).index.tolist() == [2, 0]
    sel = select(acc, tokens, latency, max_latency_s=0.6)
    assert sel.index.tolist() == [1, 1] and sel.feasible.all()
    sel = select(acc, tokens, latency, max_latency_s=0.05)
    assert sel.index.tolist() == [0, 0] and not sel.feasible.any()
    for bad in (-1.0, float("nan"), float("inf"), "abc"):
        with pytest.raises(ValueError, match="lambda_tokens"):
            select(acc, tokens, latency, lambda_tokens=bad)


def test_costs_table_and_ridge():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4))
    ns = np.array([1, 2, 4, 8])
    base = np.exp(3 + 0.5 * x[:, :1])
    tokens = base * ns * np.exp(rng.normal(0, 0.05, (300, 4)))
    lat = tokens / 1000
    table = CostTable.fit(["a", "b", "c", "d"], tokens[:200], lat[:200])
    ridge = RidgeCostModel(alpha=1.0).fit(x[:200], tokens[:200], lat[:200])
    t_tab, _ = table.predict(100)
    t_rdg, _ = ridge.predict(x[200:])
    assert cost_errors(t_rdg, tokens[200:])["mae"] < 0.5 * cost_errors(t_tab, tokens[200:])["mae"]
    # The latency spread across queries travels with the table; an older artifact has none.
    assert np.allclose(table.latency_sd, lat[:200].std(axis=0))
    again = CostTable.from_dict(table.to_dict())
    assert np.allclose(again.latency_sd, table.latency_sd)
    old = {k: v for k, v in table.to_dict().items() if k != "latency_sd"}
    assert CostTable.from_dict(old).latency_sd is None


def test_no_strategy_is_predicted_below_the_first_engine_call_it_always_makes():
    grid = cpu_grid()
    floors = {sid: (grid.ids[f] if f is not None else None) for sid, f in zip(grid.ids, cost_floors(grid.strategies))}
    assert floors["weighted_best_of_n/n=8"] == "majority/n=8"
    assert floors["escalate/n=2/tau=0.9/agg=min/then=weighted_best_of_n/n=16"] == "majority/n=2"
    assert floors["majority/n=4"] is None and floors["beam_search/n=8/m=2/it=10"] is None
    j1, je = grid.ids.index("majority/n=1"), grid.ids.index("escalate/n=1/tau=0.5/agg=min/then=weighted_best_of_n/n=8")
    tok, lat = np.full((2, len(grid.ids)), 50.0), np.full((2, len(grid.ids)), 0.5)
    tok[:, je], lat[:, je] = [30.0, 90.0], [0.2, 0.9]  # query 0: the ridge models crossed
    ft, fl = apply_floors(tok, lat, cost_floors(grid.strategies))
    assert ft[:, je].tolist() == [50.0, 90.0] and fl[:, je].tolist() == [0.5, 0.9]
    assert ft[0, j1] == 50.0 and tok[0, je] == 30.0  # the input is not modified
    # The artifact applies them: a table where escalation is cheaper than its own first stage.
    art, qf = _toy_artifact(grid)
    art.cost_table.tokens[je] = 0.5
    t_art, _ = art.predict_costs(qf)
    assert t_art[0, je] == t_art[0, j1]
    # ... and to per-query ridge costs, leaving the model's own output as it was.
    tok_fit = np.tile(np.arange(len(grid.ids)) + 10.0, (len(qf), 1))
    tok_fit[:, je] = 5.0
    art.cost_model = RidgeCostModel(alpha=1.0).fit(qf, tok_fit, tok_fit / 100)
    raw, _ = art.cost_model.predict(art.reducer(qf))
    floored, _ = art.predict_costs(qf)
    assert (raw[:, je] < raw[:, j1]).all() and np.allclose(floored[:, je], floored[:, j1])
    assert np.allclose(floored[:, j1], raw[:, j1]) and (art.cost_model.predict(art.reducer(qf))[0] == raw).all()


def _toy_artifact(grid, seed=0):
    rng = np.random.default_rng(seed)
    sf = np.array([s.features() for s in grid.strategies], dtype=np.float32)
    qf = rng.normal(size=(60, 5)).astype(np.float32)
    x = pair_features(qf, sf)
    y = 1 / (1 + np.exp(-(x[:, 0] + 0.3 * x[:, 5])))
    probe = train_probe(x[:600], y[:600], x[600:], y[600:], TrainConfig(max_epochs=3))
    s = len(grid.strategies)
    table = CostTable(grid.ids, np.arange(s) + 1.0, np.arange(s) * 0.1 + 0.1)
    return ProbeArtifact("toy", grid, probe, Platt(1.0, 0.0), table), qf


def test_mlp_learns_soft_labels_and_artifact_roundtrip(tmp_path):
    art, qf = _toy_artifact(cpu_grid())
    pred = art.predict_accuracy(qf)
    assert pred.shape == (60, len(cpu_grid().strategies))
    sf = art.strategy_features()
    truth = (1 / (1 + np.exp(-(pair_features(qf, sf)[:, 0] + 0.3 * pair_features(qf, sf)[:, 5])))).reshape(pred.shape)
    assert report(pred.ravel(), truth.ravel())["brier"] < 0.01
    art.save(tmp_path / "a")
    back = load_artifact(tmp_path / "a", expected_grid=cpu_grid())
    assert np.allclose(back.predict_accuracy(qf), pred, atol=1e-6)


def test_artifact_for_another_grid_is_refused(tmp_path):
    art, _ = _toy_artifact(cpu_grid())
    art.save(tmp_path / "a")
    with pytest.raises(ArtifactError, match="trained for grid 'cpu'.*not for grid 'paper'"):
        load_artifact(tmp_path / "a", expected_grid=paper_grid())
    with pytest.raises(ArtifactError, match="not a probe artifact"):
        load_artifact(tmp_path)


def test_artifact_with_another_strategy_feature_layout_is_refused(tmp_path):
    """An artifact trained before a method was added has a narrower strategy feature vector."""
    import json

    art, _ = _toy_artifact(cpu_grid())
    art.save(tmp_path / "a")
    meta_path = tmp_path / "a" / "artifact.json"
    meta = json.loads(meta_path.read_text())
    old = [f for f in meta["strategy_feature_layout"] if "escalate" not in f and not f.startswith("esc_")]
    meta["strategy_feature_layout"] = old
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="trained with strategy feature layout .*is_beam_search.*"
                                            "registry gives .*is_escalate"):
        load_artifact(tmp_path / "a")


def test_huge_finite_lambdas_pick_the_cheapest_without_overflow():
    import json

    from probe.selection import select

    acc = np.array([[0.9, 0.5, 0.7]])
    tokens, latency = np.array([1000.0, 10.0, 100.0]), np.array([2.0, 0.1, 0.5])
    for lt, ll in ((1.7e308, 0.0), (0.0, 1.7e308), (1.7e308, 1.7e308)):
        sel = select(acc, tokens, latency, lt, ll)
        assert sel.index.tolist() == [1] and np.isfinite(sel.rank).all()
    # The utilities themselves overflow; reported values must still serialize.
    assert not np.isfinite(select(acc, tokens, latency, 1.7e308, 0.0).utility).all()
    json.dumps([None if not np.isfinite(u) else float(u) for u in sel.utility[0]])


def test_dominated_strategies_are_found_and_never_chosen(tmp_path):
    import json

    from probe.decider import Decider

    # b: as accurate as a, dearer in tokens; c: cheaper, less accurate (kept); d: equal to a (kept).
    acc, tok, lat = [0.8, 0.8, 0.6, 0.8], [100, 200, 50, 100], [1.0, 1.0, 0.5, 1.0]
    assert dominated(acc, tok, lat).tolist() == [False, True, False, False]
    # Per query the probe may rank b first; excluded, it loses to the best allowed strategy.
    noisy = np.array([[0.80, 0.95, 0.60, 0.70]])
    assert select(noisy, tok, lat).index.tolist() == [1]
    assert select(noisy, tok, lat, allowed=np.array([True, False, True, True])).index.tolist() == [0]
    # A budget outranks the exclusion: when only an excluded strategy fits, it is chosen,
    # and the choice counts as within budget.
    sel = select(noisy, tok, lat, max_tokens=60, allowed=np.array([True, True, False, True]))
    assert sel.index.tolist() == [2] and sel.feasible.tolist() == [True]
    # The artifact keeps its exclusions; the Decider never picks them, whatever the lambdas.
    art, qf = _toy_artifact(cpu_grid())
    keep = art.grid.ids[0]
    art.excluded = tuple(s for s in art.grid.ids if s != keep)
    art.save(tmp_path / "a")
    back = load_artifact(tmp_path / "a")
    assert back.excluded == art.excluded and back.allowed().sum() == 1

    class Embed:
        name = "toy"

        def embed(self, questions):
            return qf[:len(questions)]

    d = Decider(back, Embed())
    for lt in (0.0, 1e-3, 1.0):
        assert {x.strategy_id for x in d.decide(["q"] * 5, lambda_tokens=lt)} == {keep}
    # An exclusion outside the grid is a malformed artifact.
    meta = json.loads((tmp_path / "a" / "artifact.json").read_text())
    meta["excluded_strategies"] = ["majority/n=99"]
    (tmp_path / "a" / "artifact.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="excluded strategies .*majority/n=99.* not in its grid"):
        load_artifact(tmp_path / "a")


def test_validation_halves_alternate_within_levels():
    # Label tables come ordered by level: the halves must each hold every level, not the easy
    # levels for early stopping and the hard ones for calibration.
    import pyarrow as pa

    from probe.training import validation_halves
    from ttc.label_table import LabelTable

    levels = [lv for lv in range(1, 9) for _ in range(5)]  # level-ordered, odd count per level
    rows = [{"query_id": f"val-{i}", "strategy_id": "majority/n=1", "difficulty": lv, "soft_label": 0.5}
            for i, lv in enumerate(levels)]
    stop, cal = validation_halves(LabelTable(pa.Table.from_pylist(rows), {}))
    assert sorted(np.concatenate([stop, cal]).tolist()) == list(range(len(levels)))
    assert abs(len(stop) - len(cal)) <= 1
    for lv in range(1, 9):
        in_stop = sum(levels[i] == lv for i in stop)
        assert in_stop in (2, 3), (lv, in_stop)
    with pytest.raises(ValueError, match="at least 2 queries"):
        validation_halves(LabelTable(pa.Table.from_pylist(rows[:1]), {}))
