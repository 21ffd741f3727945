"""A recipe names the models, prompt format, grid and sampling of one world.

The CPU world and the GPU recipe are two files of this one shape
(cluster/recipes/*.yaml); every job and the Serve app take a recipe, so the
code path is the same and only models and resources differ.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ttc.config_types import FiniteNonNegative
from ttc.engine_settings import EngineSettings, EngineSpec
from ttc.grid import GRIDS, StrategyGrid, get_grid
from ttc.prompts import FORMATS, PromptFormat, get_format
from ttc.sampling import SamplingSettings
from ttc.paths import CPU_RECIPE, GPU_RECIPE, REPO_ROOT, read_mapping, world_dir  # noqa: F401 (re-exported)


class Resources(BaseModel):
    """What Ray reserves for one process holding the engine (a Serve replica, a labeling actor)."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: FiniteNonNegative = Field(1, description="CPUs reserved")
    num_gpus: FiniteNonNegative = Field(0, description="GPUs reserved (fractions share a GPU)")
    accelerator_type: str | None = Field(None, description="Ray accelerator type the process must run "
                                         "on (e.g. A10G); None: any")
    memory_gib: float = Field(1.5, gt=0, description="host memory the process uses, in GiB (Ray schedules "
                              "and warns by it)")


class EngineConfig(EngineSettings):
    """One engine of a recipe: the engine settings, plus the resources its process reserves."""

    resources: Resources = Field(Resources(), description="what Ray reserves for the engine's process")

    def resolved_model(self) -> str:
        """Local paths are relative to the repo (the world folder may be moved with
        LATTE_WORLD_DIR); anything else is a model id."""
        if self.model.startswith("assets/world/"):
            return str(world_dir() / self.model[len("assets/world/"):])
        p = Path(self.model)
        if not p.is_absolute() and (REPO_ROOT / p).exists():
            return str(REPO_ROOT / p)
        return self.model

    def is_local(self) -> bool:
        return Path(self.model).is_absolute() or self.model.startswith(("assets/", "./"))

    def spec(self, seed: int = 0) -> EngineSpec:
        settings = self.model_dump(include=set(EngineSettings.model_fields))
        return EngineSpec(**{**settings, "model": self.resolved_model(), "seed": seed})


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the recipe's name (recorded with labels and artifacts)")
    prompt_format: str = Field(description=f"prompt format of policy and PRM, one of {sorted(FORMATS)} "
                                           f"(ttc.prompts)")
    grid: str = Field(description=f"strategy grid, one of {sorted(GRIDS)} (ttc.grid)")
    policy: EngineConfig = Field(description="the policy model's engine (generates solutions)")
    prm: EngineConfig = Field(description="the process reward model's engine (scores steps)")
    sampling: SamplingSettings = Field(SamplingSettings(), description="how the policy samples")

    @field_validator("prompt_format", "grid")
    @classmethod
    def _registered(cls, v, info: ValidationInfo):
        known = {"prompt_format": FORMATS, "grid": GRIDS}[info.field_name]
        if v not in known:
            raise ValueError(f"unknown {info.field_name.replace('_', ' ')} {v!r}; known: {sorted(known)}")
        return v

    def format(self) -> PromptFormat:
        return get_format(self.prompt_format)

    def strategy_grid(self) -> StrategyGrid:
        return get_grid(self.grid)

    def build_generator(self, seed: int = 0):
        from ttc.vllm_engines import VLLMGenerator

        return VLLMGenerator(self.policy.spec(seed))

    def build_scorer(self, seed: int = 0):
        from ttc.vllm_engines import VLLMStepScorer

        return VLLMStepScorer(self.prm.spec(seed), self.format())


def load_recipe(path: str | Path) -> Recipe:
    return Recipe(**read_mapping(path, "recipe file"))

