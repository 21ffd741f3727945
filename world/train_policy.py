"""Train the tiny Qwen2 policy on reference solutions of the arithmetic world."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from ttc.arithmetic import MAX_LEVEL, MIN_LEVEL, make_problem, reference_solution, render_prompt
from world.models import new_policy, qwen2_config
from world.tokenizer import save_tokenizer


def encode_examples(tok, prompts: list[str], targets: list[str]):
    """Right-padded ids, attention mask and labels with the prompt masked out (-100)."""
    p_ids = tok(prompts, add_special_tokens=False)["input_ids"]
    t_ids = tok(targets, add_special_tokens=False)["input_ids"]
    seqs = [p + t + [tok.eos_token_id] for p, t in zip(p_ids, t_ids)]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, (p, s) in enumerate(zip(p_ids, seqs)):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
        labels[i, len(p):len(s)] = torch.tensor(s[len(p):])
    return ids, mask, labels


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_policy(out_dir: str | Path, tokens: int = 3_000_000, batch_size: int = 64,
                 lr: float = 1e-3, seed: int = 0, threads: int | None = None,
                 log_every: int = 50, checkpoint_tokens: list[int] | None = None) -> dict:
    """Train on freshly generated problems (uniform over levels) until `tokens` seen.

    Competence arrives abruptly with training tokens, so the world job saves
    checkpoints at `checkpoint_tokens` (under out_dir/checkpoints/) and picks one
    by measured accuracy instead of guessing a token budget."""
    if threads:
        torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    tok = save_tokenizer(out_dir)
    config = qwen2_config()
    model = new_policy(config, seed)
    rng = random.Random(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    avg_len = 110  # characters per example, measured on the generator; only sets the step count
    total_steps = max(1, tokens // (batch_size * avg_len))
    model.train()
    seen, t0, losses = 0, time.time(), []
    bar = tqdm(range(total_steps), desc="policy", unit="step")
    for step in bar:
        problems = [make_problem(rng, rng.randint(MIN_LEVEL, MAX_LEVEL), "train")
                    for _ in range(batch_size)]
        ids, mask, labels = encode_examples(
            tok, [render_prompt(p.question) for p in problems],
            [reference_solution(p.question) for p in problems])
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total_steps, lr, warmup=min(200, total_steps // 10 + 1))
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        before = seen
        seen += int(mask.sum())
        losses.append(float(loss.detach()))
        for mark in checkpoint_tokens or []:
            if before < mark <= seen:
                ck = out_dir / "checkpoints" / f"tok-{mark}"
                model.save_pretrained(str(ck), safe_serialization=True)
                tok.save_pretrained(str(ck))
        if step % log_every == 0:
            bar.set_postfix(loss=f"{sum(losses[-log_every:]) / len(losses[-log_every:]):.3f}",
                            tok=f"{seen / 1e6:.2f}M")
    model.save_pretrained(str(out_dir), safe_serialization=True)
    stats = {"steps": total_steps, "tokens_seen": seen, "final_loss": sum(losses[-50:]) / len(losses[-50:]),
             "seconds": time.time() - t0, "seed": seed,
             "parameters": sum(p.numel() for p in model.parameters())}
    return stats
