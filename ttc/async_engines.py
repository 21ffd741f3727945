"""Engine clients over vLLM's AsyncLLM (continuous batching), for long-lived servers.

Same interfaces as `ttc.vllm_engines` (Generator / StepScorer), but every request
is its own engine request, so concurrent callers share batches inside vLLM.
"""

from __future__ import annotations

import asyncio
import itertools

from ttc.interfaces import Completion, GenerationRequest, ScoreRequest
from ttc.prompts import PromptFormat
from ttc.vllm_engines import EngineSpec, _prepare_env, cache_args, dedupe, map_finish_reason

_ids = itertools.count()


def _engine_args(spec: EngineSpec, **extra):
    from vllm.engine.arg_utils import AsyncEngineArgs

    return AsyncEngineArgs(model=spec.model, dtype=spec.dtype, max_model_len=spec.max_model_len,
                           seed=spec.seed, enforce_eager=spec.enforce_eager,
                           gpu_memory_utilization=spec.gpu_memory_utilization,
                           tensor_parallel_size=spec.tensor_parallel_size, max_num_seqs=spec.max_num_seqs,
                           max_num_batched_tokens=spec.max_num_batched_tokens,
                           enable_chunked_prefill=False, disable_log_stats=True, **cache_args(spec), **extra)


class AsyncVLLMGenerator:
    def __init__(self, spec: EngineSpec):
        _prepare_env(spec)
        from vllm.v1.engine.async_llm import AsyncLLM

        self.spec = spec
        self.engine = AsyncLLM.from_engine_args(_engine_args(spec))
        self.tokenizer = None
        self.max_model_len = spec.max_model_len

    async def _tokenizer(self):
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.spec.model)
        return self.tokenizer

    async def _one(self, req: GenerationRequest, ids: list[int]) -> list[Completion]:
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        n = 1 if req.temperature == 0 else req.n
        params = SamplingParams(n=n, temperature=req.temperature, top_p=req.top_p,
                                max_tokens=min(req.max_tokens, self.max_model_len - len(ids)),
                                stop=list(req.stop), seed=req.seed, output_kind=RequestOutputKind.FINAL_ONLY)
        final = None
        async for out in self.engine.generate({"prompt_token_ids": ids}, params, request_id=f"g{next(_ids)}"):
            final = out
        comps = [Completion(text=c.text, tokens=len(c.token_ids),
                            finish_reason=map_finish_reason(c.finish_reason, c.stop_reason),
                            stop_reason=c.stop_reason if isinstance(c.stop_reason, str) else None)
                 for c in sorted(final.outputs, key=lambda c: c.index)]
        return comps * (req.n if req.temperature == 0 else 1)

    async def _encode_prompts(self, requests: list[GenerationRequest]) -> list[list[int]]:
        tok = await self._tokenizer()
        ids = [tok.encode(r.prompt, add_special_tokens=False) for r in requests]
        for r, i in zip(requests, ids):
            if len(i) >= self.max_model_len:
                raise ValueError(f"prompt of {len(i)} tokens does not fit the model's context of "
                                 f"{self.max_model_len} tokens (prompt starts {r.prompt[:60]!r})")
        return ids

    async def generate(self, requests: list[GenerationRequest]) -> list[list[Completion]]:
        ids = await self._encode_prompts(requests)
        return list(await asyncio.gather(*(self._one(r, i) for r, i in zip(requests, ids))))

    async def stream(self, req: GenerationRequest):
        """One completion (n must be 1) as it is generated: yields (new text, tokens so far)
        per engine step, then the finished Completion."""
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        if req.n != 1:
            raise ValueError(f"streaming generates one completion, got n={req.n}")
        ids = (await self._encode_prompts([req]))[0]
        params = SamplingParams(n=1, temperature=req.temperature, top_p=req.top_p,
                                max_tokens=min(req.max_tokens, self.max_model_len - len(ids)),
                                stop=list(req.stop), seed=req.seed, output_kind=RequestOutputKind.DELTA)
        text, tokens, last = "", 0, None
        async for out in self.engine.generate({"prompt_token_ids": ids}, params, request_id=f"g{next(_ids)}"):
            c = out.outputs[0]
            text, tokens, last = text + c.text, tokens + len(c.token_ids), c
            if c.text:
                yield c.text, tokens
        yield Completion(text=text, tokens=tokens,
                         finish_reason=map_finish_reason(last.finish_reason, last.stop_reason),
                         stop_reason=last.stop_reason if isinstance(last.stop_reason, str) else None)

    def pending_requests(self) -> int:
        return int(self.engine.get_num_unfinished_requests())

    def shutdown(self) -> None:
        self.engine.shutdown()


class AsyncVLLMStepScorer:
    def __init__(self, spec: EngineSpec, prompt_format: PromptFormat):
        _prepare_env(spec)
        from vllm.v1.engine.async_llm import AsyncLLM

        from ttc.vllm_engines import VLLMStepScorer, prm_pooler_config

        self.spec = spec
        self.format = prompt_format
        self.tag_id = VLLMStepScorer._tag_id(spec.model, prompt_format.step_tag)
        self.engine = AsyncLLM.from_engine_args(_engine_args(
            spec, runner="pooling", pooler_config=prm_pooler_config()))
        self.tokenizer = None
        self.max_model_len = spec.max_model_len

    async def _encode(self, ids: list[int], incremental: bool):
        from ttc.vllm_engines import pooling_params

        final = None
        async for out in self.engine.encode({"prompt_token_ids": ids}, pooling_params(incremental),
                                            request_id=f"s{next(_ids)}"):
            final = out
        return final.outputs.data

    async def _one(self, req: ScoreRequest) -> list[float]:
        from ttc.vllm_engines import rewards_at_tags

        if len(req.steps) == req.known:
            return []
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.spec.model)
        ids = self.tokenizer.encode(self.format.prm_input(req.question, list(req.steps)),
                                    add_special_tokens=False)[:self.max_model_len]
        if req.known:
            out = rewards_at_tags(ids, await self._encode(ids, True), self.tag_id, len(req.steps), req.known)
            if out is not None:
                return out
        return rewards_at_tags(ids, await self._encode(ids, False), self.tag_id, len(req.steps), req.known)

    async def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        unique, index = dedupe(requests)
        scored = await asyncio.gather(*(self._one(r) for r in unique))
        return [list(scored[i]) for i in index]

    def pending_requests(self) -> int:
        return int(self.engine.get_num_unfinished_requests())

    def shutdown(self) -> None:
        self.engine.shutdown()
