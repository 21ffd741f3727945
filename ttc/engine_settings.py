"""Engine settings: what a recipe states of one engine, and the runtime spec an engine is built from.

`EngineSettings` is the one definition of the fields a recipe sets (defaults,
constraints, descriptions). `EngineSpec` derives from it: the same fields with the
model resolved to a path or id, plus what the code fixes rather than the recipe
(seed, eager mode, prefix caching). It is frozen and travels as a plain dict
(`model_dump()`) to the Serve pools, which rebuild it with `EngineSpec(**engine)`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model id, or a checkpoint folder (absolute, or relative to the repo; "
                                   "assets/world/... follows LATTE_WORLD_DIR)")
    max_model_len: int = Field(512, gt=0, description="context length in tokens (prompt + generation)")
    dtype: str = Field("float32", description="weights and activations dtype (float32 on CPU: bf16 is "
                                              "slower on AVX2)")
    kv_cache_gib: float = Field(1.0, gt=0, description="CPU only: KV cache size in GiB "
                                                       "(VLLM_CPU_KVCACHE_SPACE, rounded, at least 1)")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="GPU only: share of the GPU's "
                                          "memory this engine may take")
    tensor_parallel_size: int = Field(1, gt=0, description="devices one engine is split over")
    max_num_seqs: int = Field(256, gt=0, description="sequences the engine runs in one batch at most")
    max_num_batched_tokens: int = Field(8192, gt=0, description="tokens the engine processes in one "
                                        "step at most")
    # Small KV blocks let prefix caching reuse beam prefixes (CPU's default block is 128
    # tokens, longer than most world solutions).
    block_size: int | None = Field(None, gt=0, multiple_of=16, description="KV cache block size in tokens; "
                                   "None keeps vLLM's default")


class EngineSpec(EngineSettings):
    """What it takes to build one engine; the same fields on CPU and GPU."""

    model_config = ConfigDict(frozen=True)

    seed: int = Field(0, description="engine seed")
    enforce_eager: bool = Field(True, description="run without CUDA graphs (faster start)")
    enable_prefix_caching: bool = Field(True, description="reuse the KV cache of shared prefixes "
                                        "(beam search, incremental PRM scoring)")

    def replace(self, **changes) -> EngineSpec:
        """A copy with `changes` applied, validated like the original."""
        return EngineSpec(**{**self.model_dump(), **changes})
