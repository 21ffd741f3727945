import pytest
from pydantic import ValidationError

from ttc.grid import StrategyGrid, StrategySpec, cpu_grid, paper_grid
from ttc.voting import aggregate, best_scored, majority_vote, weighted_vote


def test_paper_grid_has_22_configs_and_roundtrips():
    g = paper_grid()
    assert len(g.strategies) == 22
    assert "beam_search/n=8/m=4/it=20" in g.ids
    for s in g.strategies:
        assert StrategySpec.from_id(s.id) == s
        f = s.features()
        assert len(f) == 11
        assert f[7:] == [f[0] * h for h in f[3:7]]  # log2 N slope per method
    assert g.hash == paper_grid().hash != cpu_grid().hash


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
