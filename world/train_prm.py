"""Train the tiny process reward model on step-correctness labels.

Training rows come from two sources: the policy's own samples (the errors the PRM
must catch at serving time) and perturbed reference solutions (a corrupted step,
then a consistent continuation from the wrong value), so every kind of slip is
present with both labels. A step is good when it and every step before it are
right (`ttc.arithmetic.step_labels`).
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from ttc.arithmetic import apply_op, parse_question, reference_solution, reference_steps, step_labels
from ttc.grading import split_steps
from ttc.prompts import PromptFormat
from world.models import TinyQwen2PRM
from world.train_policy import lr_at


@dataclass(frozen=True)
class PRMExample:
    question: str
    steps: tuple[str, ...]
    labels: tuple[int, ...]


def _render(value: int, op: str, operand: int, result: int, last: bool) -> str:
    rhs = f"\\boxed{{{result}}}" if last else str(result)
    return f"{value} {op} {operand} = {rhs}"


def perturbed_solution(rng: random.Random, question: str, k: int | None = None,
                       kinds: tuple[str, ...] = ("result", "result", "operand", "operator", "carry", "skip",
                                                 "early")) -> PRMExample:
    """Reference solution with step k (random by default) corrupted, continued consistently."""
    start, ops = parse_question(question)
    k = rng.randrange(len(ops)) if k is None else k
    kind = rng.choice(kinds)
    steps, value = [], start
    i = 0
    while i < len(ops):
        op, operand = ops[i]
        last = i == len(ops) - 1
        if i == k:
            if kind == "result":
                result = apply_op(value, op, operand) + rng.choice([-10, -2, -1, 1, 2, 10])
            elif kind == "swap" and apply_op(value, op, operand) >= 10 and apply_op(value, op, operand) % 11:
                result = int(str(apply_op(value, op, operand))[::-1])  # transposed digits
            elif kind == "operand":
                operand = rng.choice([d for d in range(1, 10) if d != operand])
                result = apply_op(value, op, operand)
            elif kind == "operator":
                op = rng.choice([o for o in "+-*" if o != op])
                result = apply_op(value, op, operand)
            elif kind == "carry":
                value = value + rng.choice([-1, 1, 10])  # wrong left operand
                result = apply_op(value, op, operand)
            elif kind == "skip" and not last:
                op, operand = ops[i + 1]
                i += 1
                last = i == len(ops) - 1
                result = apply_op(value, op, operand)
            else:  # "early": box an intermediate value and stop
                result = apply_op(value, op, operand)
                steps.append(_render(value, op, operand, result, True))
                break
        else:
            result = apply_op(value, op, operand)
        steps.append(_render(value, op, operand, result, last))
        value = result
        i += 1
    return PRMExample(question, tuple(steps), tuple(step_labels(question, steps)))


def _slip_pairs(rng: random.Random, question: str, pairs: int, kinds: tuple[str, ...],
                end_at_slip: bool) -> list[PRMExample]:
    """Right/wrong pairs with one corrupted step (continued consistently): the reference and
    the corrupted solution cut at the same length, either right after the corrupted step or
    at a random later step."""
    ref = reference_steps(question)
    out = []
    for _ in range(pairs):
        k = rng.randrange(len(ref))
        bad = perturbed_solution(rng, question, k, kinds=kinds)
        length = k + 1 if end_at_slip else rng.randint(k + 1, min(len(ref), len(bad.steps)))
        good_steps, bad_steps = tuple(ref[:length]), bad.steps[:length]
        if good_steps == bad_steps:
            continue
        out += [PRMExample(question, s, tuple(step_labels(question, list(s)))) for s in (good_steps, bad_steps)]
    return out


def minimal_pairs(rng: random.Random, question: str, pairs: int = 2) -> list[PRMExample]:
    """Pairs that differ only in one corrupted step: the same question and prefix, right vs wrong.

    Within a pair, position and difficulty say nothing about the label, so the only way to
    tell the two apart is to check the arithmetic. Without such pairs the PRM settles for
    priors ("late steps of long problems are often wrong"), which rank steps (high AUC) but
    cannot pick the right solution among samples of one question."""
    return _slip_pairs(rng, question, pairs, ("result", "result", "swap", "operand", "carry"), end_at_slip=False)


def verification_pairs(rng: random.Random, question: str, pairs: int = 1) -> list[PRMExample]:
    """Right/wrong pairs that end at the corrupted step: the reference up to a random step,
    and the same with that step's result slightly wrong (+-1, +-2, +-10 or transposed digits,
    the slips the policy makes). The pair's last tag can be told apart only by redoing the
    step's arithmetic, and half the labels there are bad, against ~7% in policy samples."""
    return _slip_pairs(rng, question, pairs, ("result", "result", "swap"), end_at_slip=True)


STEP_RE = re.compile(r"(\d+) ([-+*]) (\d+) = (?:\\boxed\{)?(-?\d+)")  # a slip may go negative


def arithmetic_targets(ids: torch.Tensor, examples: list[PRMExample], tag_id: int):
    """Targets that teach the PRM to redo each step's arithmetic where it judges it.

    value: at each step tag, the true result of the step's own operation (0..99, training-only
    head), so the tag computes what the result should be. digit / digit_ok: at each written
    result digit, the true digit and whether the written one matches it (the score head learns
    to flag the exact character where the arithmetic slips)."""
    value, digit, digit_ok = (torch.full_like(ids, -100) for _ in range(3))
    for i, e in enumerate(examples):
        tags = (ids[i] == tag_id).nonzero().flatten().tolist()
        for j, step in zip(tags, e.steps):
            m = STEP_RE.match(step)
            if not m:
                continue
            true = apply_op(int(m[1]), m[2], int(m[3]))
            if 0 <= true <= 99:
                value[i, j] = true
            written, want = m[4], str(true)
            end = j - 1 if step.endswith("}") else j  # the boxed result closes with '}'
            same_len = len(want) == len(written)
            for q, ch in enumerate(written):
                pos = end - len(written) + q
                if same_len and want[q].isdigit():
                    digit[i, pos] = int(want[q])
                digit_ok[i, pos] = int(same_len and want[q] == ch)
    return value, digit, digit_ok


def examples_from_samples(questions: list[str], texts: list[str]) -> list[PRMExample]:
    out = []
    for q, t in zip(questions, texts):
        steps = split_steps(t)
        if steps:
            out.append(PRMExample(q, tuple(steps), tuple(step_labels(q, steps))))
    return out


def dense_char_labels(question: str, steps: list[str] | tuple[str, ...]) -> list[list[int]]:
    """Per character of each step: 1 while the solution so far is a prefix of the reference.

    The label flips to 0 at the first deviating character and stays 0, so the model
    is taught exactly where a solution goes wrong (the step tags carry the step
    labels). One token per character in the world's byte-level tokenizer."""
    ref = reference_solution(question)
    out, pos, ok = [], 0, True
    for k, step in enumerate(steps):
        if k:
            ok = ok and ref[pos:pos + 2] == "\n\n"
            pos += 2
        labs = []
        for ch in step:
            ok = ok and pos < len(ref) and ref[pos] == ch
            labs.append(int(ok))
            pos += 1
        out.append(labs)
    return out


def encode_prm_batch(tok, fmt: PromptFormat, examples: list[PRMExample], tag_id: int,
                     max_len: int = 512, dense: bool = False):
    """Ids, mask, step labels (-100 except at step tags) and, with `dense`, per-character
    prefix-correctness labels (-100 except inside steps)."""
    seqs = [tok.encode(fmt.prm_input(e.question, list(e.steps)), add_special_tokens=False)[:max_len]
            for e in examples]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    char_labels = torch.full_like(ids, -100)
    for i, (s, e) in enumerate(zip(seqs, examples)):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
        tags = [j for j, t in enumerate(s) if t == tag_id]
        for j, lab in zip(tags, e.labels):
            labels[i, j] = lab
        if dense and len(tags) == len(e.steps):
            for j, step, labs in zip(tags, e.steps, dense_char_labels(e.question, e.steps)):
                if j - len(step) >= 0 and len(labs) == len(step):
                    char_labels[i, j - len(step):j] = torch.tensor(labs)
    if dense:
        return ids, mask, labels, char_labels
    return ids, mask, labels


def roc_auc(scores: list[float], labels: list[int]) -> float:
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


@torch.no_grad()
def predict(prm: TinyQwen2PRM, tok, fmt: PromptFormat, examples: list[PRMExample], tag_id: int,
            batch_size: int = 128) -> tuple[list[float], list[int]]:
    prm.eval()
    scores, labels = [], []
    for b in range(0, len(examples), batch_size):
        ids, mask, lab = encode_prm_batch(tok, fmt, examples[b:b + batch_size], tag_id)
        probs = prm(ids, mask).softmax(-1)[..., 1]
        sel = lab != -100
        scores += probs[sel].tolist()
        labels += lab[sel].tolist()
    return scores, labels


def train_prm(policy, tok, fmt: PromptFormat, train: list[PRMExample], val: list[PRMExample],
              tag_id: int, epochs: float = 3.0, batch_size: int = 64, lr: float = 5e-4,
              seed: int = 0, threads: int | None = None, eval_every: int = 200,
              dense_weight: float = 0.5, extra_layers: int = 0,
              freeze_base: bool = False, pairs: list[PRMExample] | None = None,
              pair_share: float = 0.0, arithmetic_weight: float = 0.0,
              steps: int | None = None, keep: str = "best_auc") -> tuple[TinyQwen2PRM, dict]:
    """Fine-tune from the policy's backbone.

    Loss: class-balanced cross-entropy at the step tags, plus `dense_weight` times the
    per-character prefix-correctness loss (dense supervision: ~20x more labels per
    example than the tags alone, and it pins down where the first error is).

    With `pairs` (verification pairs), `pair_share` of every batch comes from them, and
    `arithmetic_weight` > 0 adds the `arithmetic_targets` losses: a training-only head reads
    the true step result at each tag and the true digit at each written result digit from
    the base's output, and the score head learns digit_ok at the result digits. `steps`
    overrides the epoch count; `keep` is "best_auc" (weights with the best validation AUC)
    or "last" (the final weights of the cosine schedule)."""
    if keep not in ("best_auc", "last"):
        raise ValueError(f"keep must be best_auc or last, got {keep!r}")
    if pair_share and not pairs:
        raise ValueError("pair_share > 0 needs verification pairs")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    prm = TinyQwen2PRM.from_policy(policy, extra_layers=extra_layers, freeze_base=freeze_base)
    base_layers = policy.config.num_hidden_layers
    hidden = policy.config.hidden_size
    value_head, digit_head = torch.nn.Linear(hidden, 100), torch.nn.Linear(hidden, 10)
    params = [p for p in prm.parameters() if p.requires_grad]
    aux_params = list(value_head.parameters()) + list(digit_head.parameters()) if arithmetic_weight else []
    opt = torch.optim.AdamW(params + aux_params, lr=lr, weight_decay=0.01)
    # Class balance: good steps dominate policy samples; weight the loss so both labels count.
    # Verification pairs bring their own balance (half their last tags are bad).
    n_pairs = int(round(batch_size * pair_share)) if pairs else 0
    n_good = sum(sum(e.labels) for e in train)
    n_all = sum(len(e.labels) for e in train)
    w_bad = 1.0 if n_pairs else n_good / max(1, n_all - n_good)
    weight = torch.tensor([max(1.0, w_bad), 1.0])
    total = steps or int(math.ceil(epochs * len(train) / max(1, batch_size - n_pairs)))
    order: list[int] = []
    best = (-1.0, None, 0)
    history = []
    ce = torch.nn.functional.cross_entropy
    t0 = time.time()
    bar = tqdm(range(total), desc="prm", unit="step")
    for step in bar:
        if len(order) < batch_size:
            order += rng.sample(range(len(train)), len(train))
        batch = [train[i] for i in order[:batch_size - n_pairs]]
        del order[:batch_size - n_pairs]
        batch += [pairs[rng.randrange(len(pairs))] for _ in range(n_pairs)] if n_pairs else []
        prm.train()
        ids, mask, labels, char_labels = encode_prm_batch(tok, fmt, batch, tag_id, dense=True)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, lr, warmup=min(100, total // 10 + 1))
        out = prm.model(input_ids=ids, attention_mask=mask, output_hidden_states=bool(arithmetic_weight))
        logits = prm.score(out.last_hidden_state)
        loss = ce(logits.view(-1, 2), labels.view(-1), weight=weight, ignore_index=-100)
        if dense_weight > 0 and (char_labels != -100).any():
            loss = loss + dense_weight * ce(logits.view(-1, 2), char_labels.view(-1), ignore_index=-100)
        if arithmetic_weight:
            value, digit, digit_ok = arithmetic_targets(ids, batch, tag_id)
            base_out = out.hidden_states[base_layers]
            for head, target, n in ((value_head, value, 100), (digit_head, digit, 10)):
                if (target != -100).any():
                    loss = loss + arithmetic_weight * ce(head(base_out).view(-1, n), target.view(-1), ignore_index=-100)
            if (digit_ok != -100).any():
                loss = loss + arithmetic_weight * ce(logits.view(-1, 2), digit_ok.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params + aux_params, 1.0)
        opt.step()
        if (step + 1) % eval_every == 0 or step == total - 1:
            scores, labs = predict(prm, tok, fmt, val, tag_id)
            auc = roc_auc(scores, labs)
            history.append({"step": step + 1, "loss": float(loss.detach()), "val_auc": auc})
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", val_auc=f"{auc:.3f}")
            if auc > best[0]:
                best = (auc, {k: v.clone() for k, v in prm.state_dict().items()}, step + 1)
    if keep == "best_auc" and best[1] is not None:
        prm.load_state_dict(best[1])
    return prm, {"steps": total, "best_val_auc": best[0], "best_step": best[2], "kept": keep,
                 "final_val_auc": history[-1]["val_auc"] if history else None,
                 "history": history, "seconds": time.time() - t0,
                 "train_examples": len(train), "val_examples": len(val),
                 "verification_pairs": len(pairs or []), "pair_share": pair_share,
                 "arithmetic_weight": arithmetic_weight,
                 "bad_step_weight": float(weight[0]), "extra_layers": extra_layers,
                 "freeze_base": freeze_base, "trainable_parameters": sum(p.numel() for p in params),
                 "parameters": sum(p.numel() for p in prm.parameters())}
