"""A recipe names the models, prompt format, grid and sampling of one world.

The CPU world and the GPU recipe are two files of this one shape
(cluster/recipes/*.yaml); every job and the Serve app take a recipe, so the
code path is the same and only models and resources differ.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ttc.grid import GRIDS, StrategyGrid, get_grid
from ttc.prompts import FORMATS, PromptFormat, get_format
from ttc.strategies import SamplingConfig
from ttc.vllm_engines import EngineSpec
from ttc.paths import CPU_RECIPE, GPU_RECIPE, REPO_ROOT, read_mapping, world_dir  # noqa: F401 (re-exported)


class Resources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(1, ge=0)
    num_gpus: float = Field(0, ge=0)
    accelerator_type: str | None = None
    # Host memory one process holding this engine uses (Ray schedules and warns by it).
    memory_gib: float = Field(1.5, gt=0)


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    max_model_len: int = Field(512, gt=0)
    dtype: str = "float32"
    kv_cache_gib: float = Field(1.0, gt=0)
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    tensor_parallel_size: int = Field(1, gt=0)
    max_num_seqs: int = Field(256, gt=0)
    max_num_batched_tokens: int = Field(8192, gt=0)
    block_size: int | None = Field(None, gt=0, multiple_of=16)
    resources: Resources = Resources()

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
        return EngineSpec(model=self.resolved_model(), max_model_len=self.max_model_len,
                          dtype=self.dtype, seed=seed, kv_cache_gib=self.kv_cache_gib,
                          gpu_memory_utilization=self.gpu_memory_utilization,
                          tensor_parallel_size=self.tensor_parallel_size,
                          max_num_seqs=self.max_num_seqs, max_num_batched_tokens=self.max_num_batched_tokens,
                          block_size=self.block_size)


class SamplingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(0.7, ge=0)
    max_tokens: int = Field(256, gt=0)
    step_max_tokens: int = Field(48, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)

    def config(self, seed: int = 0) -> SamplingConfig:
        return SamplingConfig(temperature=self.temperature, max_tokens=self.max_tokens,
                              step_max_tokens=self.step_max_tokens, top_p=self.top_p, seed=seed)


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    prompt_format: str
    grid: str
    policy: EngineConfig
    prm: EngineConfig
    sampling: SamplingSettings = SamplingSettings()

    @field_validator("prompt_format")
    @classmethod
    def _known_format(cls, v):
        if v not in FORMATS:
            raise ValueError(f"unknown prompt format {v!r}; known: {sorted(FORMATS)}")
        return v

    @field_validator("grid")
    @classmethod
    def _known_grid(cls, v):
        if v not in GRIDS:
            raise ValueError(f"unknown grid {v!r}; known: {sorted(GRIDS)}")
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

