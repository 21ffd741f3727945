"""Featurizers on the real shipped models (MiniLM from its PyPI package, the tiny policy)."""

import numpy as np
import pytest

from probe.features import get_featurizer
from ttc.prompts import get_format
from ttc.paths import policy_dir


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


# --- policy_prefill: one prefill of the shipped tiny policy ---------------------------------

@pytest.fixture(scope="module")
def prefill():
    return get_featurizer("policy_prefill", str(policy_dir()), get_format("world"))


# Within one level (8), 8 samples each, soft label >= 0.5 as the target, 5-fold logistic AUC.
# Measured (seed 53): policy_prefill 0.614 at 100 problems (0.609 at 60); label-shuffled
# mean 0.50 (0.41); MiniLM 0.525 (0.553). Weak but real: most of what routing wins comes
# after stage 1 (escalation), not from the question alone.
WITHIN_LEVEL_PROBLEMS = 100
WITHIN_LEVEL_AUC_MIN = 0.55


def _questions(n_per_level, seed, levels=range(1, 9)):
    from ttc.arithmetic import generate_problems

    return generate_problems(n_per_level, seed=seed, levels=levels)


def test_policy_prefill_shape_determinism_and_batch_invariance(prefill):
    from probe.prefill_features import STAT_NAMES

    qs = [p.question for p in _questions(2, seed=31)]
    e = prefill.embed(qs)
    # 4-layer policy: layers 2 and 4, each mean-pooled over the question and at the last token.
    assert prefill.layers == (2, 4)
    assert e.shape == (16, prefill.dim) == (16, 2 * 2 * 128 + len(STAT_NAMES) + 1)
    assert e.dtype == np.float32 and np.isfinite(e).all()
    assert np.array_equal(e, prefill.embed(qs))
    # Alone, reversed, or beside a much longer question: the same features (right padding).
    alone = np.vstack([prefill.embed([q]) for q in qs])
    rev = prefill.embed(qs[::-1])[::-1]
    longer = prefill.embed([qs[0], qs[-1] + " + 1 + 1 + 1 + 1"])[0]
    for other in (alone, rev):
        np.testing.assert_allclose(other, e, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(longer, e[0], atol=1e-4, rtol=1e-4)
    assert not np.allclose(e[0], e[1])
    assert prefill.embed([]).shape == (0, prefill.dim)


def test_policy_prefill_pools_over_the_question_in_any_prompt_format():
    """The question is found in the prompt by its characters, so the chat template of the
    GPU recipe works too (here read by the tiny world tokenizer, one token per character)."""
    from probe.prefill_features import STAT_NAMES

    qs = ["7 + 3 * 4 - 9", "2 * 3"]
    k = STAT_NAMES.index("log_question_tokens")
    for fmt in ("world", "qwen_math"):
        f = get_featurizer("policy_prefill", str(policy_dir()), get_format(fmt))
        stats = f.embed(qs)[:, -1 - len(STAT_NAMES):-1]
        np.testing.assert_allclose(stats[:, k], np.log1p([len(q) for q in qs]), rtol=1e-6)
    # The template differs, so what the policy makes of the question differs.
    a = get_featurizer("policy_prefill", str(policy_dir()), get_format("world")).embed(qs)
    b = get_featurizer("policy_prefill", str(policy_dir()), get_format("qwen_math")).embed(qs)
    assert not np.allclose(a[:, :128], b[:, :128])


def test_policy_prefill_reads_the_difficulty_level_without_the_length_column(prefill):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probs = _questions(12, seed=47)
    e = prefill.embed([p.question for p in probs])[:, :-2]  # drop both length features
    y = [p.difficulty for p in probs]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    # 8 levels, 96 problems, 4-fold. Measured: 0.68 (policy_hidden's last token: 0.47, MiniLM:
    # 0.42); shuffled levels: 0.14 (chance 0.125).
    assert cross_val_score(clf, e, y, cv=4).mean() >= 0.5
    shuffled = np.random.default_rng(0).permutation(y)
    assert cross_val_score(clf, e, shuffled, cv=4).mean() <= 0.3


def test_policy_prefill_sees_within_level_difficulty_of_the_real_policy(prefill, generator):
    """At one level the length is the same for every problem: does the prefill still tell
    which problems the real policy (vLLM engine, 8 samples each) tends to solve?"""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ttc.arithmetic import final_answer, render_prompt
    from ttc.interfaces import GenerationRequest

    probs = _questions(WITHIN_LEVEL_PROBLEMS, seed=53, levels=[8])
    outs = generator.generate_sync([GenerationRequest(render_prompt(p.question), n=8, max_tokens=200,
                                                      temperature=0.7, seed=i) for i, p in enumerate(probs)])
    soft = np.array([np.mean([final_answer(c.text) == p.answer for c in o]) for p, o in zip(probs, outs)])
    y = soft >= 0.5
    assert 0.2 < y.mean() < 0.8  # both outcomes are common at level 8
    e = prefill.embed([p.question for p in probs])
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    auc = cross_val_score(clf, e, y, cv=cv, scoring="roc_auc").mean()
    null = np.mean([cross_val_score(clf, e, np.random.default_rng(k).permutation(y), cv=cv,
                                    scoring="roc_auc").mean() for k in range(3)])
    # Measured: see WITHIN_LEVEL_PROBLEMS.
    assert auc >= WITHIN_LEVEL_AUC_MIN and auc > null + 0.05


def _label_table(problems, grid):
    """A label table with soft labels falling with the level (pure-logic input to fit_artifact)."""
    import pyarrow as pa

    from ttc.label_table import LabelTable

    rows = [{"query_id": p.query_id, "strategy_id": sid, "question": p.question, "difficulty": p.difficulty,
             "soft_label": max(0.05, 1 - p.difficulty / 8 + 0.05 * j), "mean_tokens": 10.0 * p.difficulty * (j + 1),
             "mean_latency_s": 0.01 * (j + 1)} for p in problems for j, sid in enumerate(grid.ids)]
    return LabelTable(pa.Table.from_pylist(rows), {"grid_hash": grid.hash})


def test_the_artifact_records_its_featurizer_and_the_decider_refuses_another(prefill, tmp_path):
    from probe.artifact import load_artifact
    from probe.decider import Decider
    from probe.mlp import TrainConfig
    from probe.prefill_features import PolicyPrefillFeaturizer
    from probe.training import fit_artifact
    from ttc.grid import get_grid

    full = get_grid("cpu")
    grid = full.subset(full.ids[:3])
    train = _label_table(_questions(3, seed=61), grid)
    val = _label_table(_questions(1, seed=62), grid)
    art = fit_artifact(grid, prefill, train, val, TrainConfig(max_epochs=2))
    rec = {"name": "policy_prefill", "dim": prefill.dim, "layers": [2, 4]}
    assert art.extra["featurizer"] == rec
    back = load_artifact(art.save(tmp_path / "probe"))
    assert back.featurizer == "policy_prefill" and back.extra["featurizer"] == rec
    decision = Decider(back, prefill).decide(["7 + 3 * 4"])[0]
    assert decision.strategy_id in grid.ids
    with pytest.raises(ValueError, match="trained on featurizer 'policy_prefill', not 'policy_hidden'"):
        Decider(back, get_featurizer("policy_hidden", str(policy_dir()), get_format("world")))
    policy, fmt = str(policy_dir()), get_format("world")
    with pytest.raises(ValueError, match=r"gives 265 features here, but the artifact was trained on 521"):
        Decider(back, PolicyPrefillFeaturizer(policy, fmt, layers=(4,)))
    with pytest.raises(ValueError, match=r"reads layers \(1, 4\), the artifact was trained on layers \[2, 4\]"):
        Decider(back, PolicyPrefillFeaturizer(policy, fmt, layers=(1, 4)))
