"""Train the CPU world: the tiny policy, then the PRM on the policy's own samples.

    python -m jobs.world --config cluster/jobs/world_cpu.yaml [--out DIR]

Seeded and reproducible; writes policy/, prm/ and world_card.json under the
output folder (the repo ships the result in assets/world).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jobs.config import load_config


class WorldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out_dir: str = Field("assets/world", description="folder the tiny policy and PRM are written to")
    seed: int = Field(0, description="training seed")
    policy_tokens: int = Field(6_000_000, gt=0, description="policy training tokens")
    # Checkpoints every `checkpoint_every` tokens from `checkpoint_from`; the shipped policy
    # is the most trained one whose pass@1 on the hardest level stays <= select_max_hard_pass1
    # (and on the easiest >= select_min_easy_pass1), so test-time compute has room to help.
    checkpoint_from: int = Field(2_500_000, gt=0, description="first policy checkpoint, in training tokens")
    checkpoint_every: int = Field(250_000, gt=0, description="policy checkpoint spacing, in training tokens")
    select_max_hard_pass1: float = Field(0.45, gt=0, le=1, description="the shipped policy is the most trained "
                                         "checkpoint whose hardest-level pass@1 stays at or below this")
    select_min_easy_pass1: float = Field(0.9, gt=0, le=1, description="... and whose easiest-level pass@1 is at least "
                                         "this")
    select_problems_per_level: int = Field(40, gt=0, description="problems per level used to measure pass@1 for the "
                                           "checkpoint choice")
    reuse_policy: bool = Field(False, description="keep an existing policy in out_dir and train only the PRM")
    temperature: float = Field(0.7, ge=0, description="sampling temperature of the policy samples the PRM trains on")
    prm_train_problems_per_level: int = Field(400, gt=0, description="PRM training problems per level")
    prm_val_problems_per_level: int = Field(40, gt=0, description="PRM validation problems per level")
    prm_samples_per_problem: int = Field(8, gt=0, description="policy samples per PRM training problem")
    prm_perturbed_per_problem: int = Field(1, ge=0, description="perturbed (wrong-step) solutions per PRM training "
                                           "problem")
    prm_epochs: float = Field(3.0, gt=0, description="PRM training epochs")
    prm_lr: float = Field(5e-4, gt=0, description="PRM learning rate")
    prm_dense_weight: float = Field(0.5, ge=0, description="weight of the dense per-step loss")
    # Fresh layers on top of the (optionally frozen) base, and right/wrong minimal pairs
    # (session 2 options, README world card).
    prm_extra_layers: int = Field(0, ge=0, description="fresh layers on top of the base model")
    prm_freeze_base: bool = Field(False, description="freeze the base model's layers")
    prm_minimal_pairs_per_problem: int = Field(0, ge=0, description="right/wrong minimal pairs per problem")
    # Verification training (session 3): pairs ending at a slipped step, `prm_pair_share` of
    # every batch, and arithmetic targets (train_prm.arithmetic_targets) at that weight.
    prm_verification_pairs_per_problem: int = Field(0, ge=0, description="pairs ending at a slipped step, per problem")
    prm_pair_share: float = Field(0.0, ge=0, lt=1, description="share of every batch made of verification pairs")
    prm_arithmetic_weight: float = Field(0.0, ge=0, description="weight of the arithmetic targets "
                                         "(train_prm.arithmetic_targets)")
    prm_steps: int | None = Field(None, gt=0, description="PRM optimizer steps; None: from prm_epochs")
    prm_keep: Literal["best_auc", "last"] = Field("best_auc", description="which PRM to keep: the best validation AUC "
                                                  "or the last")
    threads: int = Field(2, gt=0, description="torch threads")

    @model_validator(mode="after")
    def _pairs_for_share(self):
        if self.prm_pair_share and not self.prm_verification_pairs_per_problem:
            raise ValueError("prm_pair_share > 0 needs prm_verification_pairs_per_problem > 0")
        return self


def sample_solutions(gen, questions: list[str], n: int, temperature: float, seed: int,
                     quiet: bool = False) -> list[list[str]]:
    from ttc.interfaces import GenerationRequest
    from ttc.prompts import get_format

    fmt = get_format("world")
    out = []
    for b in range(0, len(questions), 256):
        chunk = questions[b:b + 256]
        reqs = [GenerationRequest(prompt=fmt.policy_prompt(q), n=n, max_tokens=200,
                                  temperature=temperature, seed=seed + b + i)
                for i, q in enumerate(chunk)]
        out += [[c.text for c in comps] for comps in gen.generate_sync(reqs)]
        if not quiet:
            print(f"[world] sampled {len(out)}/{len(questions)} problems", flush=True)
    return out


def measure_pass1(model_dir: Path, levels: list[int], per_level: int, temperature: float,
                  seed: int) -> dict[int, float]:
    import gc

    from ttc.arithmetic import generate_problems
    from ttc.grading import answers_match
    from ttc.strategies import answer_of
    from ttc.vllm_engines import EngineSpec, VLLMGenerator

    gen = VLLMGenerator(EngineSpec(model=str(model_dir), seed=seed))
    out = {}
    for level in levels:
        probs = generate_problems(per_level, seed=seed, levels=[level])
        texts = sample_solutions(gen, [p.question for p in probs], 4, temperature, seed, quiet=True)
        out[level] = sum(answers_match(answer_of(t), p.answer) for p, ts in zip(probs, texts) for t in ts) / (4 * len(probs))
    del gen
    gc.collect()
    return out


def select_checkpoint(cfg: WorldConfig, out: Path) -> dict:
    """Pick the shipped policy among the checkpoints by measured pass@1 (see WorldConfig)."""
    from ttc.arithmetic import MAX_LEVEL, MIN_LEVEL

    cks = sorted((out / "policy_train" / "checkpoints").glob("tok-*"), key=lambda p: int(p.name[4:]))
    cks.append(out / "policy_train")  # the final weights are a candidate too
    scores = []
    for ck in cks:
        p = measure_pass1(ck, [MIN_LEVEL, MAX_LEVEL], cfg.select_problems_per_level, cfg.temperature,
                          cfg.seed + 3000)
        scores.append({"checkpoint": ck.name, "easy_pass1": p[MIN_LEVEL], "hard_pass1": p[MAX_LEVEL]})
        print(f"[world] {ck.name}: pass@1 level {MIN_LEVEL} {p[MIN_LEVEL]:.2f}, level {MAX_LEVEL} "
              f"{p[MAX_LEVEL]:.2f}", flush=True)
    ok = [i for i, s in enumerate(scores) if s["hard_pass1"] <= cfg.select_max_hard_pass1
          and s["easy_pass1"] >= cfg.select_min_easy_pass1]
    pick = ok[-1] if ok else min(range(len(scores)),
                                 key=lambda i: abs(scores[i]["hard_pass1"] - cfg.select_max_hard_pass1))
    if (out / "policy").exists():
        shutil.rmtree(out / "policy")
    shutil.copytree(cks[pick], out / "policy", ignore=shutil.ignore_patterns("checkpoints"))
    return {"candidates": scores, "chosen": scores[pick]["checkpoint"], "criteria_met": bool(ok)}


def build_world(cfg: WorldConfig) -> dict:
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from ttc.arithmetic import generate_problems
    from ttc.prompts import get_format
    from world.engines import world_generator
    from ttc.prompts import STEP_TAG
    from world.train_policy import train_policy
    from world.train_prm import (examples_from_samples, minimal_pairs, perturbed_solution, train_prm,
                                     verification_pairs)

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    card: dict = {"config": cfg.model_dump(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if cfg.reuse_policy and (out / "policy" / "model.safetensors").exists():
        print("[world] reusing the trained policy", flush=True)
        prev = out / "world_card.json"
        card["policy"] = json.loads(prev.read_text()).get("policy") if prev.exists() else None
        if not (out / "prm_base").exists():
            # The PRM's base is the policy run's final weights (not shipped): training is
            # seeded and deterministic, so rerunning it rebuilds the same weights.
            print("[world] rebuilding the PRM base (the policy run's final weights)", flush=True)
            train_policy(out / "prm_base", tokens=cfg.policy_tokens, seed=cfg.seed, threads=cfg.threads)
    else:
        marks = list(range(cfg.checkpoint_from, cfg.policy_tokens, cfg.checkpoint_every))
        card["policy"] = train_policy(out / "policy_train", tokens=cfg.policy_tokens, seed=cfg.seed,
                                      threads=cfg.threads, checkpoint_tokens=marks)
        card["policy"]["selection"] = select_checkpoint(cfg, out)
        # The PRM starts from the run's final weights: a stronger sibling of the shipped
        # policy, as a 7B PRM is to a 1.5B policy. A verifier no better at arithmetic than
        # the policy only learns priors (measured: its step score ignored the result digit).
        if (out / "prm_base").exists():
            shutil.rmtree(out / "prm_base")
        shutil.copytree(out / "policy_train", out / "prm_base", ignore=shutil.ignore_patterns("checkpoints"))
        shutil.rmtree(out / "policy_train")  # checkpoints are not shipped
    # PRM data: the policy's own samples on fresh problems (seeds disjoint from evaluation's).
    train_q = [p.question for p in generate_problems(cfg.prm_train_problems_per_level, seed=cfg.seed + 1000)]
    val_q = [p.question for p in generate_problems(cfg.prm_val_problems_per_level, seed=cfg.seed + 2000)]
    gen = world_generator(out, seed=cfg.seed)
    t0 = time.time()
    train_s = sample_solutions(gen, train_q, cfg.prm_samples_per_problem, cfg.temperature, cfg.seed)
    val_s = sample_solutions(gen, val_q, cfg.prm_samples_per_problem, cfg.temperature, cfg.seed + 7)
    sampling_s = time.time() - t0
    del gen
    rng = random.Random(cfg.seed)
    train = examples_from_samples([q for q, s in zip(train_q, train_s) for _ in s],
                                  [t for s in train_s for t in s])
    train += [perturbed_solution(rng, q) for q in train_q for _ in range(cfg.prm_perturbed_per_problem)]
    if cfg.prm_minimal_pairs_per_problem:
        train += [e for q in train_q for e in minimal_pairs(rng, q, cfg.prm_minimal_pairs_per_problem)]
    pairs = [e for q in train_q for e in verification_pairs(rng, q, cfg.prm_verification_pairs_per_problem)]
    val = examples_from_samples([q for q, s in zip(val_q, val_s) for _ in s], [t for s in val_s for t in s])
    tok = AutoTokenizer.from_pretrained(str(out / "policy"))
    tag_id = tok.convert_tokens_to_ids(STEP_TAG)
    base = out / "prm_base" if (out / "prm_base").exists() else out / "policy"
    card["prm_init"] = base.name
    policy = Qwen2ForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    prm, stats = train_prm(policy, tok, get_format("world"), train, val, tag_id,
                           epochs=cfg.prm_epochs, lr=cfg.prm_lr, seed=cfg.seed, threads=cfg.threads,
                           extra_layers=cfg.prm_extra_layers, freeze_base=cfg.prm_freeze_base,
                           dense_weight=cfg.prm_dense_weight, pairs=pairs, pair_share=cfg.prm_pair_share,
                           arithmetic_weight=cfg.prm_arithmetic_weight, steps=cfg.prm_steps, keep=cfg.prm_keep)
    prm_out = out / "prm"
    prm.save(prm_out, step_tag_id=tag_id)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(out / "policy" / f, prm_out / f)
    stats["sampling_seconds"] = sampling_s
    stats["val_bad_step_share"] = 1 - sum(sum(e.labels) for e in val) / max(1, sum(len(e.labels) for e in val))
    card["prm"] = stats
    (out / "world_card.json").write_text(json.dumps(card, indent=2))
    if (out / "prm_base").exists():
        shutil.rmtree(out / "prm_base")  # not shipped: the PRM carries what it learned
    return card


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="YAML/JSON config (fields of WorldConfig)")
    ap.add_argument("--out", help="output folder (overrides the config)")
    ap.add_argument("--reuse-policy", action="store_true", help="keep an already trained policy")
    args = ap.parse_args(argv)
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    cfg = load_config(WorldConfig, args.config)
    if args.out:
        cfg = cfg.model_copy(update={"out_dir": args.out})
    if args.reuse_policy:
        cfg = cfg.model_copy(update={"reuse_policy": True})
    card = build_world(cfg)
    print(json.dumps({"policy": card["policy"], "prm_best_val_auc": card["prm"]["best_val_auc"]}, indent=2))


if __name__ == "__main__":
    main()
