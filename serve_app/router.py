"""The router deployment: HTTP ingress (native + OpenAI-compatible), decides and runs s*.

Per request: embed the question, predict accuracy / tokens / latency of every
strategy in one pass, pick the utility argmax (within budgets), and run it with
the same strategy code as the jobs, bound to the policy and PRM pools.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from ray import serve

api = FastAPI(title="latte", version="0.1.0",
              description="Latency- and token-aware test-time compute router")


def _finite(v):
    if v is not None and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


class SolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=20000)
    lambda_tokens: float | None = Field(None, ge=0)
    lambda_latency: float | None = Field(None, ge=0)
    max_latency_s: float | None = Field(None, gt=0)
    max_tokens: float | None = Field(None, gt=0)
    strategy: str | None = None
    preset: str | None = None

    _fin = field_validator("lambda_tokens", "lambda_latency", "max_latency_s", "max_tokens")(_finite)


class ChatMessage(BaseModel):
    role: str = Field(min_length=1)
    content: str


class ChatRequest(BaseModel):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    strategy: str | None = None


class CompletionRequest(BaseModel):
    model: str = Field(min_length=1)
    prompt: str
    strategy: str | None = None




# Handlers must be registered before @serve.ingress captures the app.
@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError):
    # FastAPI echoes the offending input, which may be NaN/inf and then fails to serialize
    # (a 500); answer 422 with location and reason only.
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": errors})


@api.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception):
    # Anything unforeseen is still answered (never a hang); logged by Serve.
    return JSONResponse(status_code=500, content={"detail": f"internal error: {type(exc).__name__}"})


def _install_overload_handler() -> None:
    from serve_app.load_control import Overloaded, overloaded_response

    api.add_exception_handler(Overloaded, overloaded_response)


_install_overload_handler()


@serve.deployment(name="Router")
@serve.ingress(api)
class Router:
    def __init__(self, policy, prm, router_config: dict):
        from serve_app.handle_clients import HandleGenerator, HandleScorer

        self.policy, self.prm = HandleGenerator(policy), HandleScorer(prm)
        self.source = "app args"
        self._apply(router_config)

    def _apply(self, router_config: dict) -> None:
        """(Re)load lambdas, presets, SLOs, token and, when it changed, the probe artifact."""
        from probe.artifact import load_artifact
        from probe.decider import Decider
        from probe.features import get_featurizer
        from probe.router_config import RouterConfig
        from serve_app.demand import DemandTracker
        from ttc.recipe import load_recipe
        from ttc.strategies import StrategyRunner

        cfg = RouterConfig(**router_config)
        old = getattr(self, "cfg", None)
        if old is None or (cfg.artifact, cfg.recipe, cfg.strategies) != (old.artifact, old.recipe, old.strategies):
            recipe = load_recipe(cfg.recipe)
            art = load_artifact(cfg.artifact_path())
            recipe.strategy_grid().subset(art.grid.ids)  # the artifact's grid must come from this recipe
            featurizer = get_featurizer(art.featurizer, recipe.policy.resolved_model(), recipe.format())
            decider = Decider(art, featurizer, cfg.strategies)
            decider.decide(["warm-up"])  # loads the encoder before the first request
            self.decider, self.grid = decider, art.grid
            self.runner = StrategyRunner(self.policy, self.prm, recipe.format(), recipe.sampling.config())
            self.demand = DemandTracker(self.decider.strategy_table())
            from serve_app.load_control import LoadControl

            if getattr(self, "load", None) is not None:
                self.load.stop()
            self.load = LoadControl(cfg.load_control, art.grid, decider.strategy_table(),
                                    {"policy": self.policy.handle, "prm": self.prm.handle})
        self.load.cfg = cfg.load_control
        self._predict.set_max_batch_size(cfg.load_control.decision_batch_size)
        self._predict.set_batch_wait_timeout_s(cfg.load_control.decision_batch_wait_s)
        self.cfg = cfg
        # Checked per endpoint on the replica (a module-level dependency would read the copy
        # of this module that @serve.ingress pickled, not the one configured here).
        self.token = cfg.resolved_token()

    def reconfigure(self, user_config: dict) -> None:
        """Serve calls this when the deployment's user_config changes: a new router config
        (e.g. written by the tuning job) takes effect without restarting the replica."""
        from probe.router_config import RouterConfig

        path = (user_config or {}).get("router_config")
        if path:
            self._apply(RouterConfig.load(path).model_dump())
            self.source = str(path)

    def _authorize(self, request: Request) -> None:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    async def _solve(self, question: str, preset_name: str | None, strategy: str | None,
                     overrides: dict) -> dict:
        from serve_app.handle_clients import PoolUnavailable
        from ttc.queries import Query

        if len(question) > self.cfg.max_question_chars:
            raise HTTPException(413, f"question has {len(question)} characters; the limit is "
                                     f"{self.cfg.max_question_chars}")
        if not question.strip():
            raise HTTPException(400, "question is empty")
        try:
            preset = self.cfg.preset(preset_name)
        except KeyError:
            raise HTTPException(404, f"unknown model/preset {preset_name!r}; "
                                     f"known: {sorted(self.cfg.presets)}") from None
        knobs = preset.model_dump()
        knobs.update({k: v for k, v in overrides.items() if v is not None})
        if strategy is not None and strategy not in self.decider.ids:
            raise HTTPException(404, f"unknown strategy {strategy!r}; GET /v1/strategies lists them")
        with self.load.admitted():
            t_enter = time.perf_counter()
            acc, tok, lat, compute_s = await self._predict(question)
            t1 = time.perf_counter()
            from serve_app.load_control import decide_row

            d = decide_row(self.load, self.decider.ids, acc, tok, lat, knobs, self.cfg.slo.p95_latency_s, strategy)
            decision_s, decision_wall_s = compute_s + time.perf_counter() - t1, time.perf_counter() - t_enter
            chosen = d["strategy"]
            t0 = time.perf_counter()
            self.demand.routed(chosen)
            try:
                result = (await self.runner.run(self.grid[chosen], [Query("req", question)]))[0]
            except PoolUnavailable as exc:
                raise HTTPException(503, f"{exc}; retry later") from None
            except ValueError as exc:  # e.g. a prompt longer than the model's context
                raise HTTPException(400, str(exc)) from None
            self.demand.observed(chosen, result)
            self.load.observe(chosen, result, time.perf_counter() - t_enter, d["predicted_tokens"],
                              d["predicted_latency_s"], d["predicted_queue_s"])
        return {"answer": result.answer, "text": result.text, "strategy": chosen,
                "forced": strategy is not None, "predicted_accuracy": d["predicted_accuracy"],
                "predicted_tokens": d["predicted_tokens"],
                "predicted_latency_s": d["predicted_latency_s"], "predicted_queue_s": d["predicted_queue_s"],
                "tokens": result.tokens, "latency_s": time.perf_counter() - t0,
                "decision_s": decision_s, "decision_wall_s": decision_wall_s, "within_budget": d["feasible"],
                "load_aware": self.load.cfg.aware, "top_utilities": d["top"]}

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def _predict(self, questions: list[str]) -> list[tuple]:
        """Concurrent requests' decisions in one featurizer + probe pass (off the event loop).
        Each gets its rows and its share of the batch's compute time."""
        t0 = time.perf_counter()
        acc, tok, lat = await asyncio.to_thread(self.decider.predict, questions)
        share = (time.perf_counter() - t0) / len(questions)
        return [(acc[i], tok[i], lat[i], share) for i in range(len(questions))]

    def record_autoscaling_stats(self) -> dict:
        return self.demand.rates()

    @api.get("/healthz")
    async def healthz(self):
        import os

        return {"status": "ok", "strategies": len(self.decider.ids), "router_config": self.source,
                "presets": sorted(self.cfg.presets), "pid": os.getpid()}

    @api.post("/v1/solve")
    async def solve(self, req: SolveRequest, request: Request):
        self._authorize(request)
        return await self._solve(req.question, req.preset, req.strategy, {
            "lambda_tokens": req.lambda_tokens, "lambda_latency": req.lambda_latency,
            "max_latency_s": req.max_latency_s, "max_tokens": req.max_tokens})

    @api.get("/v1/strategies")
    async def strategies(self, request: Request):
        self._authorize(request)
        return {"grid": self.grid.name, "grid_hash": self.grid.hash, "strategies": self.decider.strategy_table()}

    @api.get("/v1/models")
    async def models(self, request: Request):
        self._authorize(request)
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "latte", "created": 0}
                                           for name in self.cfg.presets]}

    def _openai(self, kind: str, model: str, out: dict) -> dict:
        usage = {"prompt_tokens": 0, "completion_tokens": out["tokens"], "total_tokens": out["tokens"]}
        base = {"id": f"{kind}-{uuid.uuid4().hex[:12]}", "created": int(time.time()), "model": model,
                "usage": usage, "latte": {k: out[k] for k in ("strategy", "answer", "predicted_accuracy",
                                                              "predicted_tokens", "latency_s", "forced")}}
        if kind == "chatcmpl":
            return {**base, "object": "chat.completion", "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": out["text"]}}]}
        return {**base, "object": "text_completion", "choices": [{
            "index": 0, "finish_reason": "stop", "text": out["text"], "logprobs": None}]}

    @api.post("/v1/chat/completions")
    async def chat(self, req: ChatRequest, request: Request):
        self._authorize(request)
        users = [m.content for m in req.messages if m.role == "user"]
        if not users:
            raise HTTPException(400, "messages need at least one user message")
        out = await self._solve(users[-1], req.model, req.strategy, {})
        return self._openai("chatcmpl", req.model, out)

    @api.post("/v1/completions")
    async def completions(self, req: CompletionRequest, request: Request):
        self._authorize(request)
        out = await self._solve(req.prompt, req.model, req.strategy, {})
        return self._openai("cmpl", req.model, out)
