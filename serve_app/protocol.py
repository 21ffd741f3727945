"""The HTTP contract: request, response and stream-chunk models, and one error shape.

OpenAI request fields fall in three groups (the README's "OpenAI compatibility" table):
honoured ones are typed fields; refused ones are declared too, so that a request using
them gets a 400 naming the parameter (`refusal()`), not a silent no-op; anything else
is unknown and refused by validation (422), as everywhere in latte (extra="forbid").
latte's own knobs (`extra_body` in the openai client) are typed fields as well.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ttc.config_types import Finite, FiniteNonNegative, FinitePositive


# --- errors ----------------------------------------------------------------------------
class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
               503: "service_unavailable_error"}


class LatteError(Exception):
    """A request latte refuses or cannot serve; answered as ErrorResponse with `status`."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.headers = headers or {}

    def response(self) -> ErrorResponse:
        return ErrorResponse(error=ErrorInfo(message=self.message, type=self.type, param=self.param,
                                             code=self.code))


# --- latte's knobs, shared by /v1/solve and the OpenAI routes (extra_body) ---------------
class Knobs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lambda_tokens: FiniteNonNegative | None = Field(None, description="weight of predicted tokens in the utility")
    lambda_latency: FiniteNonNegative | None = Field(None, description="weight of predicted seconds in the utility")
    max_latency_s: FinitePositive | None = Field(None, description="latency budget: only strategies predicted to fit")
    strategy: str | None = Field(None, description="force a strategy id (GET /v1/strategies lists them)")
    preset: str | None = Field(None, description="named lambdas/budgets; on OpenAI routes `model` is the preset")


class SolveRequest(Knobs):
    question: str = Field(min_length=1, max_length=20000)
    max_tokens: FinitePositive | None = Field(None, description="token budget of the whole request")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool | None = None
    continuous_usage_stats: bool | None = None  # vLLM's extension; refused when true


# A refused parameter passes when it holds its "off" value (what a client sends by default).
def _off(value: Any, *allowed) -> bool:
    return value is None or value in allowed


class _OpenAIBase(Knobs):
    model: str = Field(min_length=1, description="a preset name (GET /v1/models)")
    # honoured
    max_tokens: int | None = Field(None, ge=1, description="token budget of the whole request (all samples)")
    n: int | None = Field(None, ge=1, description="only 1: latte returns the one answer its strategy chose")
    temperature: FiniteNonNegative | None = Field(None, le=2)
    top_p: FinitePositive | None = Field(None, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256, description="end-user id; written to the request log")
    # refused unless off
    frequency_penalty: Finite | None = None
    presence_penalty: Finite | None = None
    logit_bias: dict[str, float] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else v
        if stops is not None and (len(stops) > 4 or any(not s for s in stops)):
            raise ValueError("stop takes up to 4 non-empty strings")
        return v

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def refusal(self) -> tuple[str, str] | None:
        """(parameter, reason) of the first parameter latte does not support, or None."""
        if not _off(self.n, 1):
            return "n", ("n > 1 is not supported: latte returns the one answer its strategy selected "
                         "(for more samples behind the answer, pick a larger strategy via `strategy`)")
        for name in ("frequency_penalty", "presence_penalty"):
            if not _off(getattr(self, name), 0, 0.0):
                return name, f"{name} is not supported: latte's strategies sample with the recipe's settings"
        if self.logit_bias:
            return "logit_bias", "logit_bias is not supported"
        if self.stream_options is not None:
            if not self.stream:
                return "stream_options", "stream_options is only allowed with stream=true"
            if self.stream_options.continuous_usage_stats:
                return "stream_options", "stream_options.continuous_usage_stats is not supported"
        return None


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ChatCompletionRequest(_OpenAIBase):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="same as max_tokens")
    # refused unless off
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict] | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict] | None = None
    function_call: str | dict | None = None
    response_format: dict | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    modalities: list[str] | None = None
    audio: dict | None = None
    prediction: dict | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    web_search_options: dict | None = None

    def budget(self) -> int | None:
        if self.max_tokens is not None and self.max_completion_tokens is not None \
                and self.max_tokens != self.max_completion_tokens:
            raise LatteError(400, "give max_completion_tokens or max_tokens, not two different values",
                             param="max_completion_tokens", code="conflicting_parameters")
        return self.max_completion_tokens or self.max_tokens

    def question(self) -> str:
        """latte answers one question: the conversation must be one user message."""
        if len(self.messages) != 1 or self.messages[0].role != "user":
            raise LatteError(400, "messages must be exactly one user message (the question): latte's "
                                  "prompt format fixes the instructions, and it holds no conversation",
                             param="messages", code="unsupported_messages")
        return self.messages[0].text()

    def refusal(self) -> tuple[str, str] | None:
        base = super().refusal()
        if base:
            return base
        if self.logprobs or self.top_logprobs:
            name = "logprobs" if self.logprobs else "top_logprobs"
            return name, f"{name} is not supported: the answer is chosen across samples"
        if self.tools or self.functions:
            name = "tools" if self.tools else "functions"
            return name, f"{name} is not supported: latte does no tool calling"
        for name, off in (("tool_choice", ("none",)), ("function_call", ("none",)),
                          ("parallel_tool_calls", ()), ("store", (False,)), ("metadata", ()),
                          ("service_tier", ("auto", "default")), ("modalities", ()), ("audio", ()),
                          ("prediction", ()), ("reasoning_effort", ()), ("verbosity", ()),
                          ("web_search_options", ())):
            value = getattr(self, name)
            if name == "modalities" and value == ["text"]:
                continue
            if not _off(value, *off):
                return name, f"{name} is not supported"
        if self.response_format is not None and self.response_format != {"type": "text"}:
            return "response_format", "response_format other than {'type': 'text'} is not supported"
        return None


class CompletionRequest(_OpenAIBase):
    prompt: str | list[str]
    # refused unless off
    best_of: int | None = None
    echo: bool | None = None
    logprobs: int | None = None
    suffix: str | None = None

    def budget(self) -> int | None:
        return self.max_tokens

    def question(self) -> str:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise LatteError(400, "prompt must be one string (batched prompts are not supported)",
                                 param="prompt", code="unsupported_prompt")
            return self.prompt[0]
        return self.prompt

    def refusal(self) -> tuple[str, str] | None:
        base = super().refusal()
        if base:
            return base
        for name, off in (("best_of", (1,)), ("echo", (False,)), ("logprobs", ()), ("suffix", ("",))):
            if not _off(getattr(self, name), *off):
                why = " (latte chooses how many samples stand behind the answer)" if name == "best_of" else ""
                return name, f"{name} is not supported{why}"
        return None


# --- responses ----------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LatteInfo(BaseModel):
    """latte's extension block: what was decided and what it cost."""

    strategy: str
    forced: bool
    stage: int | None = None
    escalated: bool | None = None
    prm_steps: int | None = None
    answer: str | None = None
    predicted_accuracy: float | None  # None for a forced strategy the decision did not rank
    predicted_tokens: float
    tokens: int
    predicted_latency_s: float
    latency_s: float
    decision_s: float
    within_budget: bool


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


# The four OpenAI objects share a head and a choice shape; a full response always carries
# usage and latte's block, a stream chunk only in its last chunk(s).
class _Choice(BaseModel):
    index: int = 0
    logprobs: None = None


class _FinalChoice(_Choice):
    finish_reason: Literal["stop", "length"]


class _ChunkChoice(_Choice):
    finish_reason: Literal["stop", "length"] | None = None


class _Head(BaseModel):
    id: str
    created: int
    model: str


class _Full(_Head):
    usage: Usage
    latte: LatteInfo


class _Chunk(_Head):
    usage: Usage | None = None
    latte: LatteInfo | None = None


class ChatChoice(_FinalChoice):
    message: ChatMessageOut


class CompletionChoice(_FinalChoice):
    text: str


class ChatChunkChoice(_ChunkChoice):
    delta: DeltaMessage


class CompletionChunkChoice(_ChunkChoice):
    text: str


class ChatCompletionResponse(_Full):
    object: Literal["chat.completion"] = "chat.completion"
    choices: list[ChatChoice]


class CompletionResponse(_Full):
    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChoice]


class ChatCompletionChunk(_Chunk):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChatChunkChoice]


class CompletionChunk(_Chunk):
    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChunkChoice]
