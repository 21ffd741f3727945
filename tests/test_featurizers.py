"""Featurizers on the real shipped models (MiniLM from its PyPI package, the tiny policy)."""

import numpy as np
import pytest

from probe.features import get_featurizer
from ttc.prompts import get_format
from ttc.world.paths import policy_dir


def test_minilm_embeds_offline_and_meaningfully():
    f = get_featurizer("minilm")
    e = f.embed(["How many apples does Tom have left?", "How many apples remain with Tom?",
                 "Evaluate left to right: 7 + 3 * 4"])
    assert e.shape == (3, f.dim) == (3, 385)
    cos = lambda a, b: float(a[:384] @ b[:384])  # noqa: E731 (unit-normalized embeddings)
    assert cos(e[0], e[1]) > cos(e[0], e[2]) + 0.3


def test_policy_hidden_state_featurizer_tracks_difficulty():
    f = get_featurizer("policy_hidden", str(policy_dir()), get_format("world"))
    from ttc.arithmetic import generate_problems

    probs = generate_problems(20, seed=9, levels=[1, 8])
    e = f.embed([p.question for p in probs])
    assert e.shape == (40, f.dim) and np.isfinite(e).all()
    # A linear read-out of the hidden state separates 1-step from 8-step problems.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    y = [p.difficulty == 8 for p in probs]
    # measured 0.85 (4-fold, 40 problems)
    assert cross_val_score(LogisticRegression(max_iter=2000), e[:, :-1], y, cv=4).mean() >= 0.75


def test_unknown_featurizer():
    with pytest.raises(ValueError, match="unknown featurizer"):
        get_featurizer("bert")
