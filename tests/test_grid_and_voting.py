import pytest
from pydantic import ValidationError

from ttc.grid import StrategyGrid, StrategySpec, cpu_grid, paper_grid
from ttc.methods import feature_layout, method_names
from ttc.voting import aggregate, best_scored, majority_vote, weighted_vote


def test_paper_grid_keeps_the_22_configs_and_roundtrips():
    g = paper_grid()
    paper = [s for s in g.strategies if s.method != "escalate"]
    assert len(paper) == 22 and len(g.strategies) > 22
    assert "beam_search/n=8/m=4/it=20" in g.ids
    layout = feature_layout()
    k = len(method_names())
    for s in g.strategies:
        assert StrategySpec.from_id(s.id) == s
        f = s.features()
        assert len(f) == len(layout)
        assert f[3 + k:3 + 2 * k] == [f[0] * h for h in f[3:3 + k]]  # log2 N slope per method
    assert g.hash == paper_grid().hash != cpu_grid().hash


def test_escalation_ids_and_features():
    s = StrategySpec.from_id("escalate/n=1/tau=0.9/then=weighted_best_of_n/n=16")
    assert s.then == StrategySpec(method="weighted_best_of_n", n=16) and s.tau == 0.9
    assert s.id == "escalate/n=1/tau=0.9/then=weighted_best_of_n/n=16"
    f = dict(zip(feature_layout(), s.features()))
    assert f["is_escalate"] == 1 and f["esc_tau"] == 0.9 and f["esc_then_log2_n"] == 4
    beam = StrategySpec.from_id("escalate/n=2/tau=0.5/agg=min/then=beam_search/n=8/m=2/it=10")
    assert dict(zip(feature_layout(), beam.features()))["esc_then_is_beam"] == 1
    # Non-escalation strategies carry zeros in escalation's features.
    g = dict(zip(feature_layout(), StrategySpec(method="best_of_n", n=4).features()))
    assert g["esc_tau"] == 0 and g["is_escalate"] == 0


@pytest.mark.parametrize("sid, message", [
    ("escalate/n=1/tau=1.5/then=weighted_best_of_n/n=16", "tau in \\[0, 1\\]"),
    ("escalate/n=1/tau=-0.1/then=weighted_best_of_n/n=16", "tau in \\[0, 1\\]"),
    ("escalate/n=1/tau=nan/then=weighted_best_of_n/n=16", "tau in \\[0, 1\\]"),
    ("escalate/n=1/tau=0.5/then=telepathy/n=16", "unknown method 'telepathy'"),
    ("escalate/n=2/tau=0.5/then=best_of_n/n=2", "not bigger than stage 1"),
    ("escalate/n=2/tau=0.5/then=majority/n=1", "not bigger than stage 1"),
    ("escalate/n=4/tau=0.5/then=best_of_n/n=16", "n=1 or n=2"),
    ("escalate/n=1/tau=0.5", "needs a stage 2"),
    ("escalate/n=1/then=best_of_n/n=8", "needs a threshold tau"),
    ("escalate/n=1/tau=0.5/then=", "empty stage 2"),
    ("escalate/n=1/tau=abc/then=best_of_n/n=8", "not a number"),
    ("majority/n=4/tau=0.5", "takes no tau"),
])
def test_malformed_escalation_ids_are_refused(sid, message):
    with pytest.raises(ValueError, match=message):
        StrategySpec.from_id(sid)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="majority", n=0), "n must be positive"),
    (dict(method="best_of_n", n=-2), "n must be positive"),
    (dict(method="beam_search", n=8, beam_width=3, max_iterations=5), "must divide"),
    (dict(method="beam_search", n=8, beam_width=2, max_iterations=0), "max_iterations"),
    (dict(method="sorcery", n=4), "unknown method 'sorcery'"),
    (dict(method="majority", n=4, beam_width=2), "takes no beam_width"),
])
def test_bad_specs_name_the_problem(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        StrategySpec(**kwargs)


def test_duplicate_ids_refused():
    s = StrategySpec(method="majority", n=4)
    with pytest.raises(ValidationError, match="duplicate strategy ids"):
        StrategyGrid(name="dup", strategies=(s, s))


def test_malformed_id():
    with pytest.raises(ValueError, match="malformed strategy id"):
        StrategySpec.from_id("majority/k=4")


def test_voting_rules():
    assert majority_vote(["3", "4", "4", None, None, None]) == "4"
    assert majority_vote(["5", "6"]) == "5"  # tie -> first seen
    assert majority_vote([None, None]) is None
    answers, scores = ["3", "4", "4", "5"], [0.9, 0.3, 0.3, 0.1]
    assert answers[best_scored(answers, scores)] == "3"
    assert weighted_vote(answers, scores) == "3"
    assert weighted_vote(["3", "4", "4"], [0.5, 0.3, 0.3]) == "4"
    assert aggregate([0.9, 0.2, 0.8], "last") == 0.8
    assert aggregate([0.9, 0.2, 0.8], "min") == 0.2
    assert aggregate([0.5, 0.5], "prod") == 0.25
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate([0.1], "mean")
