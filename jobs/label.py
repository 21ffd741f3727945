"""Labeling job: soft labels, tokens and latency for every (query, strategy).

    python -m jobs.label --config cluster/jobs/label_cpu.yaml
    ray job submit --working-dir . -- python -m jobs.label --config cluster/jobs/label_cpu.yaml

Ray Data fans shards of queries out over an actor pool; each actor holds the
policy and PRM engines (in-process vLLM) and writes one Parquet file per finished
shard (atomically: temp file, then rename). A restarted job skips finished shards,
so a killed run resumes without redoing or duplicating work; at the end the
shards are merged into `labels.parquet` with model ids, grid hash, seed and
labeling mode in the file metadata.

`mode: batched` (default) puts a shard's queries into each engine call and labels a
calibration subset (spread over difficulty) one query at a time to model single-request
latency (ttc/latency_model.py); `mode: per_query` labels every query alone, timed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from jobs.config import load_config
from ttc.label_table import LabelStore, shard_queries
from ttc.config_types import RecipeFile
from ttc.paths import CPU_RECIPE


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: str = Field(description="query file (.jsonl/.json/.parquet) to label")
    out_dir: str = Field(description="label table folder: one Parquet file per shard, merged at the end; a rerun "
                         "resumes from it")
    recipe: RecipeFile = CPU_RECIPE
    strategies: list[str] | None = Field(None, description="subset of the recipe's grid to label; None: the whole "
                                         "grid")
    resamples: int = Field(30, gt=0, description="samples drawn per parallel config's soft label (from the shared "
                           "pool)")
    seed: int = Field(0, description="base seed of every request (per query and strategy)")
    mode: Literal["batched", "per_query"] = Field("batched", description="batched: all queries of a shard per engine "
                                                  "call, latency from a calibration subset + model; per_query: one "
                                                  "query at a time")
    beam_runs: int = Field(4, gt=0, description="independent seeded runs per query of each strategy that must run "
                           "(beam search)")
    calibration_fraction: float = Field(0.03, ge=0, le=1, description="batched mode: share of each difficulty level "
                                        "(at least one query) timed alone to fit the latency model")
    shard_size: int = Field(48, gt=0, description="queries per shard (the unit of resume and of one actor call)")
    replicas: int = Field(2, gt=0, description="LabelWorker actors (each holds a policy and a PRM engine)")
    num_cpus_per_replica: float | None = Field(None, ge=0, description="CPUs per actor; None: the recipe's engine "
                                               "resources")
    num_gpus_per_replica: float | None = Field(None, ge=0, description="GPUs per actor; None: the recipe's engine "
                                               "resources")
    memory_gib_per_replica: float | None = Field(None, gt=0, description="host memory per actor, GiB; None: both "
                                                 "engines' memory_gib")
    limit: int | None = Field(None, gt=0, description="label only the first N queries")
    fail_after_shards: int | None = Field(None, gt=0, description="fault injection for crash/resume tests: each actor "
                                          "dies after this many shards")


class LabelWorker:
    """Ray Data actor: builds both engines once, labels one shard per call."""

    def __init__(self, recipe_path: str, strategy_ids: list[str] | None, out_dir: str,
                 resamples: int, seed: int, meta: dict, beam_runs: int, calibration_ids: list[str],
                 mode: str = "batched", fail_after_shards: int | None = None):
        from ttc.runtime import configure_inprocess_vllm

        configure_inprocess_vllm(bind_threads=False)
        from ttc.recipe import load_recipe
        from ttc.strategies import StrategyRunner

        recipe = load_recipe(recipe_path)
        grid = recipe.strategy_grid()
        self.grid = grid.subset(strategy_ids) if strategy_ids else grid
        self.runner = StrategyRunner(recipe.build_generator(seed), recipe.build_scorer(seed),
                                     recipe.format(), recipe.sampling.config(seed))
        self.store = LabelStore(Path(out_dir))
        self.resamples, self.seed, self.meta = resamples, seed, meta
        self.beam_runs, self.calibration, self.mode = beam_runs, set(calibration_ids), mode
        self.fail_after, self.shards_done = fail_after_shards, 0
        self._warm_up()

    def _warm_up(self) -> None:
        """First engine calls compile kernels; run every strategy both ways once, untimed."""
        import asyncio

        from ttc.labeling import LabelPlan, measure_shard
        from ttc.queries import Query

        qs = [Query("warm-up", "1 + 2", "3"), Query("warm-up-2", "4 - 1", "3")]
        # One query alone, one batched, two runs each: both code paths of a shard.
        asyncio.run(measure_shard(self.runner, LabelPlan.of(self.grid), qs, {"warm-up"}, 2, "batched"))

    def label_shard(self, queries: list) -> tuple[list[dict], dict, list[dict]]:
        """Rows, token accounting and calibration timings of one shard (ttc.labeling.measure_shard)."""
        import asyncio

        from ttc.labeling import LabelPlan, measure_shard, rows_for, timing_points

        plan = LabelPlan.of(self.grid)
        measured = dict(zip([q.query_id for q in queries],
                            asyncio.run(measure_shard(self.runner, plan, queries, self.calibration,
                                                      self.beam_runs, self.mode))))
        rows, points = [], []
        acct = {"pool_tokens": 0, "separate_sampling_tokens": 0.0}
        for q in queries:  # rows in query order, whatever the mode
            r, a = rows_for(q, self.grid, measured[q.query_id], self.resamples, self.seed)
            rows += r
            points += timing_points(q, measured[q.query_id])
            acct["pool_tokens"] += a["pool_tokens"]
            acct["separate_sampling_tokens"] += a["separate_sampling_tokens"]
        return rows, acct, points

    def __call__(self, batch: dict) -> dict:
        from ttc.queries import Query

        out = {"shard": [], "rows": [], "seconds": [], "pool_tokens": [], "separate_sampling_tokens": []}
        for shard, payload in zip(batch["shard"], batch["queries"]):
            t0 = time.perf_counter()
            rows, acct, points = self.label_shard([Query(**q) for q in json.loads(payload)])
            acct["latency_points"] = json.dumps(points)
            if self.fail_after is not None and self.shards_done >= self.fail_after:
                raise RuntimeError(f"injected crash before shard {shard}")
            self.store.write_shard(str(shard), rows, {**self.meta, **acct})
            self.shards_done += 1
            out["shard"].append(str(shard))
            out["rows"].append(len(rows))
            out["seconds"].append(time.perf_counter() - t0)
            out["pool_tokens"].append(acct["pool_tokens"])
            out["separate_sampling_tokens"].append(acct["separate_sampling_tokens"])
        return out


def plan(cfg: LabelConfig):
    """Everything that can be refused is checked here, before Ray or an engine starts."""
    from ttc.queries import load_queries
    from ttc.recipe import load_recipe

    recipe = load_recipe(cfg.recipe)
    grid = recipe.strategy_grid()
    if cfg.strategies:
        dup = sorted({s for s in cfg.strategies if cfg.strategies.count(s) > 1})
        if dup:
            raise ValueError(f"strategies list has duplicate ids: {dup}")
        grid = grid.subset(cfg.strategies)  # unknown ids fail here
    queries = load_queries(cfg.queries, limit=cfg.limit)
    missing = [q.query_id for q in queries if q.answer is None]
    if missing:
        raise ValueError(f"queries without a reference answer cannot be labeled: {missing[:5]}")
    calibration = calibration_ids(queries, cfg)
    meta = {
        "latte.schema": "labels/v2", "grid_name": grid.name, "grid_hash": grid.hash,
        "grid_ids": json.dumps(grid.ids), "seed": str(cfg.seed), "resamples": str(cfg.resamples),
        "labeling_mode": cfg.mode, "beam_runs": str(cfg.beam_runs),
        "calibration_queries": str(len(calibration)),
        "calibration_sha": hashlib.sha256("".join(sorted(calibration)).encode()).hexdigest()[:16],
        "recipe": recipe.name, "policy_model": recipe.policy.model, "prm_model": recipe.prm.model,
        "temperature": str(recipe.sampling.temperature),
        "queries_sha": hashlib.sha256("".join(q.query_id for q in queries).encode()).hexdigest()[:16],
    }
    return recipe, grid, queries, meta, calibration


def calibration_ids(queries: list, cfg: LabelConfig) -> list[str]:
    """Queries labeled one at a time: all of them in per-query mode; otherwise a share of
    each difficulty level (at least one), picked by a seeded hash so a rerun picks the same."""
    from ttc.strategies import request_seed

    if cfg.mode == "per_query":
        return [q.query_id for q in queries]
    if cfg.calibration_fraction == 0:
        return []
    levels: dict = {}
    for q in queries:
        levels.setdefault(q.difficulty, []).append(q.query_id)
    out = []
    for ids in levels.values():
        k = max(1, round(cfg.calibration_fraction * len(ids)))
        out += sorted(ids, key=lambda i: request_seed(cfg.seed, i, "calibration"))[:k]
    return out


def run(cfg: LabelConfig) -> dict:
    import ray

    recipe, grid, queries, meta, calibration = plan(cfg)
    store = LabelStore(Path(cfg.out_dir))
    store.check_or_write_manifest(meta)
    shards = shard_queries(queries, cfg.shard_size)
    done = store.finished_shards()
    pending = [(sid, qs) for sid, qs in shards if sid not in done]
    # Longest first (question length stands in for work): the short shards then fill the
    # actors' last gaps instead of one long shard running alone at the end. Shards keep
    # their contents, so the labels do not depend on the order.
    pending.sort(key=lambda item: -sum(len(q.question) for q in item[1]))
    print(f"[label] {len(queries)} queries x {len(grid.ids)} strategies; {len(shards)} shards, "
          f"{len(shards) - len(pending)} already finished, {len(pending)} to run", flush=True)
    t0 = time.perf_counter()
    results = []
    if pending:
        ray.init(ignore_reinit_error=True, log_to_driver=False)
        res = recipe.policy.resources
        num_cpus = cfg.num_cpus_per_replica if cfg.num_cpus_per_replica is not None else res.num_cpus
        num_gpus = cfg.num_gpus_per_replica if cfg.num_gpus_per_replica is not None else res.num_gpus
        # Each actor holds both engines: declare their memory so Ray schedules by it.
        mem_gib = cfg.memory_gib_per_replica or (recipe.policy.resources.memory_gib + recipe.prm.resources.memory_gib)
        ds = ray.data.from_items([{"shard": sid, "queries": json.dumps([q.to_dict() for q in qs])}
                                  for sid, qs in pending])
        ds = ds.map_batches(
            LabelWorker, batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=min(cfg.replicas, len(pending))),
            num_cpus=num_cpus, num_gpus=num_gpus, memory=int(mem_gib * 2**30),
            fn_constructor_kwargs=dict(recipe_path=cfg.recipe, strategy_ids=cfg.strategies,
                                       out_dir=cfg.out_dir, resamples=cfg.resamples, seed=cfg.seed,
                                       meta=meta, beam_runs=cfg.beam_runs, calibration_ids=calibration,
                                       mode=cfg.mode,
                                       fail_after_shards=cfg.fail_after_shards))
        # Ray Data restarts dead actors and retries their shard (a shard is written whole
        # or not at all, so a retry is safe); an exception in the worker fails the run.
        for row in ds.iter_rows():  # streams: a shard is on disk as soon as its row arrives
            results.append(row)
            print(f"[label] shard {row['shard']}: {row['rows']} rows in {row['seconds']:.1f}s "
                  f"({len(done) + len(results)}/{len(shards)} shards)", flush=True)
    table_path = store.merge([sid for sid, _ in shards], meta, expected_rows=len(queries) * len(grid.ids))
    summary = store.summary()
    summary.update(seconds=time.perf_counter() - t0, shards_run=len(results),
                   shards_skipped=len(shards) - len(pending), table=str(table_path))
    (Path(cfg.out_dir) / "label_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    args = ap.parse_args(argv)
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    cfg = load_config(LabelConfig, args.config)
    print(json.dumps(run(cfg), indent=2))


if __name__ == "__main__":
    main()
