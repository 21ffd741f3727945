"""Build the CPU world's two engines (policy generator, PRM scorer) in this process."""

from __future__ import annotations

from pathlib import Path

from ttc.prompts import get_format
from ttc.vllm_engines import EngineSpec, VLLMGenerator, VLLMStepScorer
from ttc.world.paths import policy_dir, prm_dir


def world_generator(root: Path | None = None, seed: int = 0) -> VLLMGenerator:
    """The policy of the world under `root` (default: the shipped or LATTE_WORLD_DIR one)."""
    return VLLMGenerator(EngineSpec(model=str(policy_dir(root)), seed=seed))


def world_scorer(root: Path | None = None, seed: int = 0) -> VLLMStepScorer:
    return VLLMStepScorer(EngineSpec(model=str(prm_dir(root)), seed=seed), get_format("world"))
