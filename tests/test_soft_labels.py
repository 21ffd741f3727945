import numpy as np
import pytest

from ttc.grid import StrategySpec
from ttc.soft_labels import ScoredPool, pool_soft_label


def pool(answers, correct_answer, scores):
    return ScoredPool(answers=answers, correct=[a == correct_answer for a in answers],
                      tokens=[10] * len(answers), step_rewards=[[s] for s in scores])


def test_full_pool_is_deterministic():
    p = pool(["1", "2", "2", "3"], "1", [0.9, 0.1, 0.2, 0.3])
    rng = np.random.default_rng(0)
    maj = pool_soft_label(p, StrategySpec(method="majority", n=4), 30, rng)
    bon = pool_soft_label(p, StrategySpec(method="best_of_n", n=4), 30, rng)
    assert (maj.soft_label, maj.runs, maj.mean_tokens) == (0.0, 1, 40.0)
    assert (bon.soft_label, bon.runs) == (1.0, 1)


def test_single_sample_label_is_pass_rate():
    answers = ["7"] * 3 + ["8"] * 13
    p = pool(answers, "7", [0.5] * 16)
    lab = pool_soft_label(p, StrategySpec(method="majority", n=1), 4000, np.random.default_rng(0))
    assert abs(lab.soft_label - 3 / 16) < 0.02 and lab.mean_tokens == 10


def test_prm_weighting_beats_majority_when_prm_is_right():
    answers = ["7"] * 6 + ["8"] * 10
    scores = [0.9] * 6 + [0.1] * 10
    p = pool(answers, "7", scores)
    rng = np.random.default_rng(0)
    maj = pool_soft_label(p, StrategySpec(method="majority", n=8), 300, rng).soft_label
    wb = pool_soft_label(p, StrategySpec(method="weighted_best_of_n", n=8), 300, rng).soft_label
    assert wb > 0.9 and maj < 0.4


def test_refusals():
    p = pool(["1", "2"], "1", [0.1, 0.2])
    with pytest.raises(ValueError, match="smaller than N=4"):
        pool_soft_label(p, StrategySpec(method="majority", n=4), 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="run it"):
        pool_soft_label(p, StrategySpec(method="beam_search", n=2, beam_width=2, max_iterations=3), 5,
                        np.random.default_rng(0))
