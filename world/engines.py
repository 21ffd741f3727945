"""Build the CPU world's two engines (policy generator, PRM scorer) in this process.

Engine settings come from the CPU world recipe (cluster/recipes/cpu_world.yaml), so
jobs, benchmarks and tests run the engines exactly as the recipe declares them."""

from __future__ import annotations

from pathlib import Path

from ttc.prompts import get_format
from ttc.vllm_engines import EngineSpec, VLLMGenerator, VLLMStepScorer
from ttc.paths import policy_dir, prm_dir
from ttc.paths import CPU_RECIPE



def _spec(role: str, model: Path, seed: int) -> EngineSpec:
    from ttc.recipe import load_recipe

    engine = getattr(load_recipe(CPU_RECIPE), role)
    return engine.spec(seed).replace(model=str(model))


def world_generator(root: Path | None = None, seed: int = 0) -> VLLMGenerator:
    """The policy of the world under `root` (default: the shipped or LATTE_WORLD_DIR one)."""
    return VLLMGenerator(_spec("policy", policy_dir(root), seed))


def world_scorer(root: Path | None = None, seed: int = 0) -> VLLMStepScorer:
    return VLLMStepScorer(_spec("prm", prm_dir(root), seed), get_format("world"))
