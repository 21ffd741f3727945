"""The router deployment: the HTTP route table, and the one place a request is decided and run.

Per request: embed the question, predict accuracy / tokens / latency of every
strategy in one pass, pick the utility argmax (within budgets), and run it with
the same strategy code as the jobs, bound to the policy and PRM pools
(`Router._solve`). Request and response models live in `protocol`, response and
stream building in `serving`, the error shape in `errors`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve

from serve_app import errors
from serve_app.protocol import ChatCompletionRequest, CompletionRequest, ErrorResponse, LatteError, SolveRequest

logger = logging.getLogger("ray.serve")

api = FastAPI(title="latte", version="0.2.0",
              description="Latency- and token-aware test-time compute router",
              responses={c: {"model": ErrorResponse} for c in (400, 401, 404, 413, 422, 429, 503)})
errors.install(api)  # before @serve.ingress captures the app


def _request_id() -> str | None:
    try:
        return serve.context._get_serve_request_context().request_id or None
    except Exception:
        return None


def _install_overload_handler() -> None:
    from serve_app.load_control import Overloaded, overloaded_response

    api.add_exception_handler(Overloaded, overloaded_response)


_install_overload_handler()


@serve.deployment(name="Router")
@serve.ingress(api)
class Router:
    def __init__(self, policy, prm, router_config: dict):
        from serve_app.handle_clients import HandleGenerator, HandleScorer
        from serve_app.metrics import get_metrics

        self.policy, self.prm = HandleGenerator(policy), HandleScorer(prm)
        self.metrics = get_metrics()
        self.source = "app args"
        self._apply(router_config)

    def _apply(self, router_config: dict) -> None:
        """(Re)load lambdas, presets, SLOs, token and, when it changed, the probe artifact."""
        from transformers import AutoTokenizer

        from probe.artifact import load_artifact
        from probe.decider import Decider
        from probe.features import get_featurizer
        from probe.router_config import RouterConfig
        from serve_app.demand import DemandTracker
        from serve_app.serving import single_sample
        from ttc.recipe import load_recipe

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
            self.format, self.sampling = recipe.format(), recipe.sampling.config()
            # usage.prompt_tokens counts the prompt as the policy sees it.
            self.tokenizer = AutoTokenizer.from_pretrained(recipe.policy.resolved_model())
            self.table = {row["strategy"]: row for row in decider.strategy_table()}
            # Where a request sets its own sampling, it runs as one sample (see _solve).
            singles = [sid for sid in decider.ids if single_sample(self.grid[sid])]
            self.single_id = min(singles, key=lambda s: self.table[s]["predicted_tokens"]) if singles else None
            self.demand = DemandTracker(self.decider.strategy_table())
        if old is None or self.decider is not getattr(self, "_load_decider", None) \
                or cfg.load_control != old.load_control:
            # New load-control settings start from the artifact's seeds: estimates learned
            # under other settings (awareness off has no shedding, so its queues run long)
            # would mislead these. A reload that changes only lambdas or presets keeps them.
            from serve_app.load_control import LoadControl

            if getattr(self, "load", None) is not None:
                self.load.stop()
            self.load = LoadControl(cfg.load_control, self.grid, self.decider.strategy_table(),
                                    {"policy": self.policy.handle, "prm": self.prm.handle})
            self._load_decider = self.decider
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
        from serve_app.access import authorize

        authorize(request.headers, self.token)

    def _sampling_for(self, job, chosen: str, forced: bool) -> tuple[str, object]:
        """The strategy and SamplingConfig a job runs with. The probe's predictions hold for
        the recipe's sampling, which multi-sample strategies also need (diverse samples): a
        request that sets its own temperature / top_p / stop runs as one sample."""
        from serve_app.serving import single_sample

        s = self.sampling
        own = [name for name, value, default in (("temperature", job.temperature, s.temperature),
                                                  ("top_p", job.top_p, s.top_p), ("stop", job.stop or None, None))
               if value is not None and value != default]
        if own:
            if forced and not single_sample(self.grid[chosen]):
                raise LatteError(400, f"{own[0]} is fixed by strategy {chosen}; it can be set only on a "
                                      f"single-sample strategy", param=own[0], code="fixed_by_strategy")
            if not forced:
                if self.single_id is None:
                    raise LatteError(400, f"{own[0]} needs a single-sample strategy, and this router's grid "
                                          f"has none", param=own[0], code="fixed_by_strategy")
                chosen = self.single_id
        kw = {k: v for k, v in (("temperature", job.temperature), ("top_p", job.top_p), ("seed", job.seed))
              if v is not None}
        return chosen, (s.replace(**kw) if kw else s)

    async def _solve(self, job, sink=None):
        """Decide and run one request: the single place the decision happens.

        `sink` (streaming) gets the decision as soon as it is made, and the sample's
        text as it is generated when the strategy is a single sample."""
        from serve_app.access import resolve_knobs
        from serve_app.handle_clients import PoolUnavailable, RequestGenerator
        from serve_app.serving import Solved, decision_headers, single_sample
        from ttc.queries import Query
        from ttc.strategies import StrategyRunner

        question = job.question
        if len(question) > self.cfg.max_question_chars:
            raise LatteError(413, f"question has {len(question)} characters; the limit is "
                                  f"{self.cfg.max_question_chars}", param="question", code="question_too_long")
        if not question.strip():
            raise LatteError(400, "question is empty", param="question", code="empty_question")
        knobs = resolve_knobs(self.cfg, job.preset, job.overrides)
        if job.strategy is not None and job.strategy not in self.decider.ids:
            raise LatteError(404, f"unknown strategy {job.strategy!r}; GET /v1/strategies lists them",
                             param="strategy", code="strategy_not_found")
        from serve_app.load_control import decide_row

        with self.load.admitted() as slot:
            t_enter = time.perf_counter()
            acc, tok, lat, compute_s = await self._predict(question)
            t1 = time.perf_counter()
            d = await decide_row(self.load, self.decider.ids, acc, tok, lat, knobs, self.cfg.slo.p95_latency_s,
                                 job.strategy, allowed=self.decider.allowed)
            decision_s = compute_s + time.perf_counter() - t1
            chosen, sampling = self._sampling_for(job, d["strategy"], job.strategy is not None)
            # What was predicted for the strategy that runs (a forced one may lie outside the top).
            row = next((r for r in d["top"] if r["strategy"] == chosen), None)
            if chosen == d["strategy"]:
                pred = (d["predicted_accuracy"], d["predicted_tokens"], d["predicted_latency_s"])
            elif row is not None:
                pred = (row["predicted_accuracy"], row["predicted_tokens"], row["predicted_latency_s"])
            else:
                pred = (None, self.table[chosen]["predicted_tokens"], self.table[chosen]["predicted_latency_s"])
            spec = self.grid[chosen]
            served = self.load.served_prediction(chosen)  # before this request joins the in-flight set
            slot.start(chosen, served["latency_s"])
            streams = sink is not None and single_sample(spec)
            if sink is not None:
                sink.decide(decision_headers(chosen, pred[1], pred[2], pred[0]), streams)
            budget = max(1, int(knobs["max_tokens"])) if knobs.get("max_tokens") is not None else None
            gen = RequestGenerator(self.policy, budget=budget, stop=job.stop,
                                   on_delta=sink.delta if streams else None)
            runner = StrategyRunner(gen, self.prm, self.format, sampling)
            prompt_tokens = len(self.tokenizer.encode(self.format.policy_prompt(question), add_special_tokens=False))
            t0 = time.perf_counter()
            self.demand.routed(chosen)
            try:
                result = (await runner.run(spec, [Query("req", question)]))[0]
            except PoolUnavailable as exc:
                raise LatteError(503, f"{exc}; retry later", code="pool_unavailable") from None
            except ValueError as exc:  # e.g. a prompt longer than the model's context
                raise LatteError(400, str(exc), param="question", code="invalid_prompt") from None
            latency_s = time.perf_counter() - t0
            self.demand.observed(chosen, result)
            served_s = time.perf_counter() - t_enter
            self.load.observe(chosen, result, served_s, pred[1], served["latency_s"],
                              served["queue_s"], slot, pool_queue_raw_s=served["pool_queue_raw_s"])
            if self.load.cfg.aware and job.strategy is None and knobs.get("max_latency_s") is None:
                self.load.delivered(served_s, self.cfg.slo.p95_latency_s)  # the SLO's budget chose it
        one = single_sample(spec)
        finish = "length" if gen.truncated or (one and gen.finish_reason == "length") else "stop"
        solved = Solved(strategy=chosen, forced=job.strategy is not None, result=result,
                        prompt_tokens=prompt_tokens, predicted_accuracy=pred[0], predicted_tokens=pred[1],
                        predicted_latency_s=pred[2], decision_s=decision_s,
                        within_budget=d["feasible"], latency_s=latency_s, finish_reason=finish,
                        top=d["top"], request_id=_request_id(), predicted_queue_s=d["predicted_queue_s"],
                        decision_wall_s=time.perf_counter() - t_enter - latency_s, load_aware=self.load.cfg.aware,
                        admission_budget_s=d["admission_budget_s"], preference_fit=d["preference_fit"],
                        slo_guard_scale=d["slo_guard_scale"])
        self.metrics.served(job.route, chosen, solved.stage, bool(solved.escalated), pred[1], result.tokens,
                            pred[2], latency_s, decision_s)
        logger.info("latte request_id=%s route=%s strategy=%s stage=%s tokens=%d latency_s=%.3f user=%s",
                    solved.request_id, job.route, chosen, solved.stage, result.tokens, latency_s, job.user)
        return solved

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

    # --- routes -------------------------------------------------------------------------
    @api.get("/healthz")
    async def healthz(self):
        import os

        return {"status": "ok", "strategies": len(self.decider.ids), "router_config": self.source,
                "presets": sorted(self.cfg.presets), "pid": os.getpid()}

    @api.post("/v1/solve")
    async def solve(self, req: SolveRequest, request: Request):
        from serve_app.serving import SolveJob, decision_headers

        self._authorize(request)
        s = await self._solve(SolveJob(
            route="solve", question=req.question, preset=req.preset, strategy=req.strategy,
            overrides={"lambda_tokens": req.lambda_tokens, "lambda_latency": req.lambda_latency,
                       "max_latency_s": req.max_latency_s, "max_tokens": req.max_tokens}))
        r = s.result
        body = {"answer": r.answer, "text": r.text, "strategy": s.strategy, "forced": s.forced,
                "predicted_accuracy": s.predicted_accuracy, "predicted_tokens": s.predicted_tokens,
                "predicted_latency_s": s.predicted_latency_s, "tokens": r.tokens, "prompt_tokens": s.prompt_tokens,
                "latency_s": s.latency_s, "decision_s": s.decision_s, "within_budget": s.within_budget,
                "stage": s.stage, "escalated": s.escalated, "prm_steps": r.trace.get("prm_steps"),
                "top_utilities": s.top, "request_id": s.request_id, "predicted_queue_s": s.predicted_queue_s,
                "decision_wall_s": s.decision_wall_s, "load_aware": s.load_aware,
                "admission_budget_s": s.admission_budget_s, "preference_fit": s.preference_fit,
                "slo_guard_scale": s.slo_guard_scale}
        return JSONResponse(body, headers=decision_headers(s.strategy, s.predicted_tokens, s.predicted_latency_s,
                                                           s.predicted_accuracy))

    @api.get("/v1/strategies")
    async def strategies(self, request: Request):
        self._authorize(request)
        # The artifact's costs (served alone, in process) and, when the router is load-aware,
        # what it now predicts a served request pays: the figures its budgets compare.
        rows = self.decider.strategy_table()
        if self.load.cfg.aware:
            served = self.load.served_table()
            rows = [{**r, **served[r["strategy"]]} for r in rows]
        return {"grid": self.grid.name, "grid_hash": self.grid.hash, "load_aware": self.load.cfg.aware,
                "strategies": rows}

    @api.get("/v1/models")
    async def models(self, request: Request):
        self._authorize(request)
        return {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "latte", "created": 0}
                                           for name in self.cfg.presets]}

    async def _openai(self, kind: str, req, request: Request):
        from serve_app import serving

        self._authorize(request)
        job = serving.job_from_openai(req, kind)
        if not req.stream:
            s = await self._solve(job)
            body = serving.chat_response(req.model, s) if kind == "chat" else serving.completion_response(req.model, s)
            return JSONResponse(body.model_dump(), headers=serving.decision_headers(
                s.strategy, s.predicted_tokens, s.predicted_latency_s, s.predicted_accuracy))
        sink = serving.StreamSink()
        task = asyncio.create_task(self._solve(job, sink))
        await serving.until_decided(task, sink)
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(serving.sse_stream(kind, req.model, task, sink, include_usage),
                                 media_type="text/event-stream",
                                 headers={**sink.headers, "cache-control": "no-cache"})

    @api.post("/v1/chat/completions", response_model=None)
    async def chat(self, req: ChatCompletionRequest, request: Request):
        return await self._openai("chat", req, request)

    @api.post("/v1/completions", response_model=None)
    async def completions(self, req: CompletionRequest, request: Request):
        return await self._openai("completions", req, request)
