"""PRM training data and targets of the CPU world (pure logic, plus a few real training steps)."""

from __future__ import annotations

import random

import pytest
import torch

from ttc.arithmetic import apply_op, generate_problems, reference_steps
from ttc.prompts import get_format
from ttc.prompts import STEP_TAG
from world.tokenizer import build_tokenizer
from world.train_prm import STEP_RE, PRMExample, arithmetic_targets, encode_prm_batch, verification_pairs


def test_verification_pairs_differ_only_in_the_last_result():
    rng = random.Random(3)
    problems = generate_problems(6, seed=5)
    n = 0
    for p in problems:
        ex = verification_pairs(rng, p.question, 2)
        assert len(ex) % 2 == 0
        ref = reference_steps(p.question)
        for good, bad in zip(ex[::2], ex[1::2]):
            n += 1
            k = len(good.steps)
            assert good.question == bad.question == p.question
            assert list(good.steps) == ref[:k] and all(good.labels)
            assert len(bad.steps) == k and bad.steps[:-1] == good.steps[:-1]
            assert bad.labels[-1] == 0 and all(bad.labels[:-1])
            # Same operation written, only what follows "=" differs (or it boxes too early).
            g, b = STEP_RE.match(good.steps[-1]), STEP_RE.match(bad.steps[-1])
            assert g.group(1, 2, 3) == b.group(1, 2, 3)
    assert n >= 60


def test_arithmetic_targets_mark_the_slipped_digit():
    tok = build_tokenizer()
    tag = tok.convert_tokens_to_ids(STEP_TAG)
    fmt = get_format("world")
    q = "9 * 8 - 3 + 5"  # 72, 69, 74
    assert [apply_op(9, "*", 8), apply_op(72, "-", 3), apply_op(69, "+", 5)] == [72, 69, 74]
    steps = ("9 * 8 = 72", "72 - 3 = 59", "59 + 5 = \\boxed{64}")  # tens digit slips at step 2
    ex = PRMExample(q, steps, (1, 0, 0))
    ids, _, labels = encode_prm_batch(tok, fmt, [ex], tag)
    value, digit, ok = arithmetic_targets(ids, [ex], tag)
    tags = (ids[0] == tag).nonzero().flatten().tolist()
    assert value[0, tags].tolist() == [72, 69, 64]  # each step's own operation, redone
    text = [tok.decode([t]) for t in ids[0].tolist()]
    flags = [(text[i], int(ok[0, i]), int(digit[0, i])) for i in range(ids.shape[1]) if ok[0, i] != -100]
    assert flags == [("7", 1, 7), ("2", 1, 2), ("5", 0, 6), ("9", 1, 9), ("6", 1, 6), ("4", 1, 4)], flags
    assert labels[0, tags].tolist() == [1, 0, 0]
    # A step whose true result is negative (a slip earlier) still gets its digit flags.
    neg = PRMExample("2 - 3", ("2 - 3 = \\boxed{1}",), (0,))
    ids, _, _ = encode_prm_batch(tok, fmt, [neg], tag)
    value, digit, ok = arithmetic_targets(ids, [neg], tag)
    assert (value == -100).all() and (digit == -100).all() and ok[ok != -100].tolist() == [0]


def test_train_prm_with_verification_pairs_runs_and_refuses_pairs_it_lacks():
    from transformers import Qwen2ForCausalLM

    from world.models import qwen2_config
    from world.train_prm import examples_from_samples, train_prm

    tok = build_tokenizer()
    tag = tok.convert_tokens_to_ids(STEP_TAG)
    fmt = get_format("world")
    torch.manual_seed(0)
    policy = Qwen2ForCausalLM(qwen2_config(hidden=32, layers=1, heads=2, kv_heads=1, intermediate=64))
    probs = generate_problems(2, seed=9)
    train = examples_from_samples([p.question for p in probs], ["\n\n".join(reference_steps(p.question)) for p in probs])
    pairs = [e for p in probs for e in verification_pairs(random.Random(0), p.question, 2)]
    prm, stats = train_prm(policy, tok, fmt, train, train, tag, steps=3, batch_size=8, extra_layers=1,
                           pairs=pairs, pair_share=0.5, arithmetic_weight=1.0, dense_weight=0.0, keep="last")
    assert stats["steps"] == 3 and stats["verification_pairs"] == len(pairs) and stats["kept"] == "last"
    assert len(prm.model.layers) == 2
    with pytest.raises(ValueError, match="needs verification pairs"):
        train_prm(policy, tok, fmt, train, train, tag, steps=1, pair_share=0.5)
    with pytest.raises(ValueError, match="keep must be"):
        train_prm(policy, tok, fmt, train, train, tag, steps=1, keep="best")


def test_world_config_refuses_a_pair_share_without_pairs():
    from pydantic import ValidationError

    from jobs.world import WorldConfig

    with pytest.raises(ValidationError, match="prm_verification_pairs_per_problem"):
        WorldConfig(prm_pair_share=0.5)
    assert WorldConfig(prm_pair_share=0.75, prm_verification_pairs_per_problem=8).prm_pair_share == 0.75
