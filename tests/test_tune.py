"""The lambda tuning job: offline replay with SLO constraints, Pareto mode, resume, refusals, online."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from jobs import tune
from jobs.config import ConfigError, load_config
from probe.evaluation import Truth
from probe.router_config import RouterConfig, SLOTargets
from probe.tuning import InfeasibleSLO, Replay, choose, constraint_values
from ttc.label_table import LabelTable


def _truth(path) -> Truth:
    return Truth.from_table(LabelTable.read(path))


def _cfg(small_artifact, out, **kw):
    base = {"labels": str(small_artifact["splits"]["val"]), "artifact": str(small_artifact["path"]),
            "out_dir": str(out), "n_trials": 30, "base_router_config": "cluster/serve/router_cpu.yaml"}
    return tune.TuneConfig(**{**base, **kw})


def _heldout(small_artifact, lt, ll) -> dict:
    """Replay chosen lambdas on the test split, which tuning never saw."""
    cfg = _cfg(small_artifact, "/tmp/unused", labels=str(small_artifact["splits"]["test"]),
               slo={"mean_tokens": 1e9})
    replay, _ = tune.load_replay(cfg)
    return replay.outcome(lt, ll)


@pytest.fixture(scope="module")
def static_tokens(small_artifact):
    """Mean tokens per strategy on the tuning split, to set SLOs inside the reachable range."""
    return np.sort(_truth(small_artifact["splits"]["val"]).tokens.mean(axis=0))


def test_tuned_lambdas_meet_slo_on_heldout_and_looser_is_not_worse(small_artifact, static_tokens, tmp_path):
    lo, hi = static_tokens[0], static_tokens[-1]
    # Between the cheapest strategy and what the router spends when tokens cost nothing, so
    # the tight SLO binds whatever the world's PRM makes the free choice.
    free = tune.load_replay(_cfg(small_artifact, "/tmp/unused", slo={"mean_tokens": 1e9}))[0].outcome(0.0, 0.0)
    assert lo < free["mean_tokens"]
    tight_target = float(np.sqrt(lo * free["mean_tokens"]))
    loose_target = float(hi * 1.5)
    tight = tune.run(_cfg(small_artifact, tmp_path / "tight", slo={"mean_tokens": tight_target},
                          slo_margin=0.15))
    loose = tune.run(_cfg(small_artifact, tmp_path / "loose", slo={"mean_tokens": loose_target},
                          slo_margin=0.15))
    for s, target in ((tight, tight_target), (loose, loose_target)):
        c = s["chosen"]
        assert c["mean_tokens"] <= target, s
        held = _heldout(small_artifact, c["lambda_tokens"], c["lambda_latency"])
        assert held["mean_tokens"] <= target, (target, held)
    assert loose["chosen"]["accuracy"] >= tight["chosen"]["accuracy"]
    # The tight SLO binds: it cannot afford what the loose one chose.
    assert tight["chosen"]["mean_tokens"] < loose["chosen"]["mean_tokens"] or \
        tight["chosen"]["accuracy"] == loose["chosen"]["accuracy"]
    # Outputs: a router config the Serve app loads, a plot and a summary.
    out = tmp_path / "tight"
    rc = RouterConfig.load(out / "router.yaml")
    assert rc.default_preset == "latte"
    assert rc.presets["latte"].lambda_tokens == pytest.approx(tight["chosen"]["lambda_tokens"])
    assert rc.slo.mean_tokens == pytest.approx(tight_target)
    assert (out / "trials.png").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == 30 and len(summary["all_trials"]) == 30
    assert any(not r["feasible"] for r in summary["all_trials"])  # the constraint was active


def test_study_persists_and_a_second_run_continues(small_artifact, static_tokens, tmp_path):
    import optuna

    slo = {"mean_tokens": float(static_tokens[-1])}
    first = tune.run(_cfg(small_artifact, tmp_path, slo=slo, n_trials=8))
    storage = tune.open_storage(first["storage"])
    before = [t.params for t in optuna.load_study(study_name="latte-lambdas", storage=storage).trials]
    again = tune.run(_cfg(small_artifact, tmp_path, slo=slo, n_trials=8))
    assert again["new_trials"] == 0 and again["trials"] == 8  # nothing redone
    more = tune.run(_cfg(small_artifact, tmp_path, slo=slo, n_trials=14))
    assert more["new_trials"] == 6 and more["trials"] == 14
    after = optuna.load_study(study_name="latte-lambdas", storage=tune.open_storage(first["storage"])).trials
    assert [t.params for t in after[:8]] == before
    with pytest.raises(ValueError, match="other settings.*slo"):
        tune.run(_cfg(small_artifact, tmp_path, slo={"mean_tokens": 5.0 + slo["mean_tokens"]}))


def test_pareto_mode_returns_a_front(small_artifact, static_tokens, tmp_path):
    s = tune.run(_cfg(small_artifact, tmp_path, mode="pareto", slo={"mean_tokens": float(static_tokens[-1]) * 2},
                      n_trials=20))
    front = s["pareto"]
    assert front
    for a in front:  # no point of the front dominates another
        for b in front:
            dominates = (b["accuracy"] >= a["accuracy"] and b["mean_tokens"] <= a["mean_tokens"]
                         and b["p95_latency_s"] <= a["p95_latency_s"]
                         and (b["accuracy"], b["mean_tokens"], b["p95_latency_s"])
                         != (a["accuracy"], a["mean_tokens"], a["p95_latency_s"]))
            assert not dominates


def test_impossible_slo_is_refused_naming_the_binding_constraint(small_artifact, tmp_path):
    with pytest.raises(InfeasibleSLO, match="mean_tokens") as exc:
        tune.run(_cfg(small_artifact, tmp_path, slo={"mean_tokens": 1.0, "p95_latency_s": 1e6}))
    assert exc.value.binding == "mean_tokens" and exc.value.closest["mean_tokens"] > 1.0
    assert not (tmp_path / "study.journal").exists()  # refused before any trial


def test_infeasible_after_trials_names_closest_values():
    import optuna

    slo = SLOTargets(mean_tokens=100, p95_latency_s=1.0)
    trials = []
    for i, (tok, lat) in enumerate([(150, 0.9), (120, 1.5), (300, 0.5)]):
        out = {"accuracy": 0.5, "mean_tokens": tok, "p50_latency_s": lat / 2, "p95_latency_s": lat}
        t = optuna.trial.create_trial(params={"lambda_tokens": 0.1 * (i + 1), "lambda_latency": 0.2},
                                      distributions={"lambda_tokens": optuna.distributions.FloatDistribution(0.01, 1),
                                                     "lambda_latency": optuna.distributions.FloatDistribution(0.01, 1)},
                                      value=0.5, user_attrs=out)
        for k, v in constraint_values(out, slo).items():
            t.set_constraint(k, v)
        trials.append(t)
    with pytest.raises(InfeasibleSLO, match="binding constraint: mean_tokens") as exc:
        choose(trials, slo)
    assert exc.value.closest == {"mean_tokens": 150, "p95_latency_s": 0.9}


@pytest.mark.parametrize("slo, msg", [
    ({}, "states no target"),
    ({"mean_tokens": -5}, "greater than 0"),
    ({"p95_latency_s": "fast"}, "valid number"),
    ({"p95_latency_s": float("nan")}, "finite|greater than 0"),
    ({"mean_tokenz": 800}, "Extra inputs"),
])
def test_malformed_slo_is_refused(tmp_path, slo, msg):
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump({"labels": "x.parquet", "artifact": "a", "out_dir": str(tmp_path), "slo": slo}))
    with pytest.raises(ConfigError, match=msg):
        load_config(tune.TuneConfig, str(path))


def test_label_table_for_another_grid_is_refused(small_artifact, tmp_path):
    table = pq.read_table(small_artifact["splits"]["val"])
    meta = dict(table.schema.metadata)
    meta[b"grid_hash"] = b"0000another"
    other = tmp_path / "other.parquet"
    pq.write_table(table.replace_schema_metadata(meta), other)
    with pytest.raises(ValueError, match="does not match the probe artifact's grid"):
        tune.run(_cfg(small_artifact, tmp_path, labels=str(other), slo={"mean_tokens": 1e4}))
    assert not (tmp_path / "study.journal").exists()


def test_replay_counts_the_true_costs_of_the_choices():
    truth = Truth(acc=np.array([[0.2, 0.9], [0.5, 0.6]]), tokens=np.array([[10.0, 100.0], [20.0, 200.0]]),
                  latency=np.array([[0.1, 1.0], [0.2, 2.0]]))
    r = Replay(["a", "b"], truth.acc, np.array([10.0, 100.0]), np.array([0.1, 1.0]), truth)
    free = r.outcome(0.0, 0.0)  # accuracy only: b for both queries
    assert free["accuracy"] == pytest.approx(0.75) and free["mean_tokens"] == pytest.approx(150)
    cheap = r.outcome(0.01, 0.0)  # 0.9 - 1.0 < 0.2 - 0.1: a for both
    assert cheap["accuracy"] == pytest.approx(0.35) and cheap["mean_tokens"] == pytest.approx(15)


def test_online_mode_tunes_against_the_live_app(serve_deployment, small_artifact, tmp_path):
    """Each trial replays a small query stream through HTTP at a set arrival rate."""
    from tests.support import SERVE_TOKEN

    cfg = _cfg(small_artifact, tmp_path, mode="online", n_trials=3, slo={"p95_latency_s": 60.0},
               online={"url": serve_deployment["base"], "n_queries": 6, "arrival_rate_per_s": 3.0,
                       "api_token": SERVE_TOKEN, "timeout_s": 120})
    s = tune.run(cfg)
    assert s["trials"] == 3
    rows = json.loads((tmp_path / "summary.json").read_text())["all_trials"]
    assert len(rows) == 3
    for row in rows:
        assert 0 <= row["accuracy"] <= 1 and row["mean_tokens"] > 0 and row["p95_latency_s"] > 0
    assert s["chosen"]["errors"] == 0
    assert RouterConfig.load(tmp_path / "router.yaml").presets["latte"].lambda_tokens == \
        pytest.approx(s["chosen"]["lambda_tokens"])
