"""Turns an OpenAI request into a solve job, and a solved job into a response or an SSE stream.

Streaming: when the chosen strategy is one sample, its tokens are sent as generated;
otherwise the role chunk goes out at once (the client sees a live connection) and the
chosen answer follows when the strategy has chosen it. Every stream ends `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import AsyncIterator

from serve_app.protocol import (ChatChoice, ChatChunkChoice, ChatCompletionChunk, ChatCompletionResponse,
                                ChatMessageOut, CompletionChoice, CompletionChunk, CompletionChunkChoice,
                                CompletionResponse, DeltaMessage, LatteError, LatteInfo, Usage)

PARALLEL = ("majority", "best_of_n", "weighted_best_of_n")


def single_sample(spec) -> bool:
    """The strategy's answer is its one sample, so the sample can be streamed as generated."""
    return spec.n == 1 and spec.method in PARALLEL


@dataclass
class SolveJob:
    """Everything a request asks of the router, validated."""

    route: str  # "solve" | "chat" | "completions": metrics and logs
    question: str
    preset: str | None = None
    strategy: str | None = None  # forced
    overrides: dict = field(default_factory=dict)  # lambdas and budgets for the decision
    budget: int | None = None  # hard cap on generated tokens
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    user: str | None = None


@dataclass
class Solved:
    strategy: str
    forced: bool
    result: object  # StrategyResult
    prompt_tokens: int
    predicted_accuracy: float | None
    predicted_tokens: float
    predicted_latency_s: float
    decision_s: float
    within_budget: bool
    latency_s: float
    finish_reason: str
    top: list
    request_id: str | None = None
    predicted_queue_s: float = 0.0
    decision_wall_s: float | None = None
    load_aware: bool = False
    admission_budget_s: float | None = None
    preference_fit: bool | None = None
    slo_guard_scale: float | None = None

    @property
    def stage(self) -> int | None:
        return self.result.trace.get("stage")

    @property
    def escalated(self) -> bool | None:
        return self.result.trace.get("escalated")

    def info(self) -> LatteInfo:
        prm = self.result.trace.get("prm_steps")
        return LatteInfo(strategy=self.strategy, forced=self.forced, stage=self.stage, escalated=self.escalated,
                         prm_steps=int(prm) if prm is not None else None, answer=self.result.answer,
                         predicted_accuracy=self.predicted_accuracy, predicted_tokens=self.predicted_tokens,
                         tokens=self.result.tokens, predicted_latency_s=self.predicted_latency_s,
                         latency_s=self.latency_s, decision_s=self.decision_s, within_budget=self.within_budget)

    def usage(self) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens, completion_tokens=self.result.tokens,
                     total_tokens=self.prompt_tokens + self.result.tokens)


def decision_headers(strategy: str, predicted_tokens: float, predicted_latency_s: float,
                     predicted_accuracy: float | None) -> dict:
    h = {"x-latte-strategy": strategy, "x-latte-predicted-tokens": f"{predicted_tokens:.1f}",
         "x-latte-predicted-latency-s": f"{predicted_latency_s:.4f}"}
    if predicted_accuracy is not None:
        h["x-latte-predicted-accuracy"] = f"{predicted_accuracy:.4f}"
    return h


def job_from_openai(req, route: str) -> SolveJob:
    """Refuse what latte does not support (400 naming the parameter), map the rest."""
    refused = req.refusal()
    if refused:
        param, why = refused
        raise LatteError(400, why, param=param, code="unsupported_parameter")
    question = req.question()
    return SolveJob(route=route, question=question, preset=req.preset or req.model, strategy=req.strategy,
                    overrides={"lambda_tokens": req.lambda_tokens, "lambda_latency": req.lambda_latency,
                               "max_latency_s": req.max_latency_s, "max_tokens": req.budget()},
                    budget=req.budget(), temperature=req.temperature, top_p=req.top_p, seed=req.seed,
                    stop=req.stops(), user=req.user)


def _ids(kind: str) -> tuple[str, int]:
    return f"{kind}-{uuid.uuid4().hex[:24]}", int(time.time())


def chat_response(model: str, s: Solved) -> ChatCompletionResponse:
    rid, created = _ids("chatcmpl")
    return ChatCompletionResponse(
        id=rid, created=created, model=model, usage=s.usage(), latte=s.info(),
        choices=[ChatChoice(message=ChatMessageOut(content=s.result.text), finish_reason=s.finish_reason)])


def completion_response(model: str, s: Solved) -> CompletionResponse:
    rid, created = _ids("cmpl")
    return CompletionResponse(
        id=rid, created=created, model=model, usage=s.usage(), latte=s.info(),
        choices=[CompletionChoice(text=s.result.text, finish_reason=s.finish_reason)])


class StreamSink:
    """Between the router's solve task and the SSE generator: the decision, then text deltas."""

    def __init__(self):
        self.decided = asyncio.Event()
        self.headers: dict = {}
        self.streams_tokens = False
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def decide(self, headers: dict, streams_tokens: bool) -> None:
        self.headers, self.streams_tokens = headers, streams_tokens
        self.decided.set()

    def delta(self, text: str) -> None:
        self.queue.put_nowait(text)


async def until_decided(task: asyncio.Task, sink: StreamSink) -> None:
    """Wait for the decision; an error before it (bad preset, too long...) is raised here,
    so it is answered with its own status, not inside a 200 stream."""
    waiter = asyncio.ensure_future(sink.decided.wait())
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if not sink.decided.is_set():
        waiter.cancel()
        task.result()  # raises the error
        raise RuntimeError("solve finished without a decision")


def _sse(obj) -> str:
    body = obj.model_dump_json(exclude_none=False) if hasattr(obj, "model_dump_json") else json.dumps(obj)
    return f"data: {body}\n\n"


async def sse_stream(kind: str, model: str, task: asyncio.Task, sink: StreamSink,
                     include_usage: bool) -> AsyncIterator[str]:
    """chat.completion.chunk / text_completion events, then `data: [DONE]`."""
    rid, created = _ids("chatcmpl" if kind == "chat" else "cmpl")

    def chunk(text: str | None = None, role: bool = False, finish: str | None = None, s: Solved | None = None):
        if kind == "chat":
            return ChatCompletionChunk(id=rid, created=created, model=model, latte=s.info() if s else None,
                                       choices=[ChatChunkChoice(delta=DeltaMessage(
                                           role="assistant" if role else None, content=text),
                                           finish_reason=finish)])
        return CompletionChunk(id=rid, created=created, model=model, latte=s.info() if s else None,
                               choices=[CompletionChunkChoice(text=text or "", finish_reason=finish)])

    try:
        yield _sse(chunk(text="", role=True))
        sent = False
        while True:
            getter = asyncio.ensure_future(sink.queue.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                sent = True
                yield _sse(chunk(text=getter.result()))
                continue
            getter.cancel()
            break
        while not sink.queue.empty():
            sent = True
            yield _sse(chunk(text=sink.queue.get_nowait()))
        try:
            s: Solved = task.result()
        except Exception as exc:  # after the 200 header: the error travels as an event
            err = exc if isinstance(exc, LatteError) else LatteError(
                500, f"internal error: {type(exc).__name__}", type="server_error", code="internal_error")
            yield f"data: {err.response().model_dump_json()}\n\n"
            yield "data: [DONE]\n\n"
            return
        if not sent and s.result.text:
            yield _sse(chunk(text=s.result.text))
        yield _sse(chunk(finish=s.finish_reason, s=s))
        if include_usage:
            cls = ChatCompletionChunk if kind == "chat" else CompletionChunk
            yield _sse(cls(id=rid, created=created, model=model, choices=[], usage=s.usage()))
        yield "data: [DONE]\n\n"
    finally:
        if not task.done():  # the client went away: stop the work
            task.cancel()
