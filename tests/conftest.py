"""Session-wide fixtures: one pair of real in-process vLLM engines for the whole run."""

from __future__ import annotations

import os
from pathlib import Path

from ttc.paths import CPU_RECIPE, CPU_SERVE_CONFIG

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"

# Before anything imports vLLM/torch: in-process engine (~4 s start instead of ~40 s),
# one OpenMP thread per engine, caches inside the project.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CACHE_ROOT", str(CACHE / "vllm"))
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(CACHE / "inductor"))
os.environ.setdefault("HF_HOME", str(CACHE / "hf"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import pytest  # noqa: E402

from jobs import label  # noqa: E402
from jobs.demo import SPLIT_SEEDS  # noqa: E402
from tests.support import label_cfg  # noqa: E402
from ttc.arithmetic import generate_problems  # noqa: E402
from ttc.queries import write_queries  # noqa: E402


@pytest.fixture(scope="session")
def generator():
    from world.engines import world_generator

    return world_generator(seed=0)


@pytest.fixture(scope="session")
def scorer():
    from world.engines import world_scorer

    return world_scorer(seed=0)


@pytest.fixture(scope="session")
def world_format():
    from ttc.prompts import get_format

    return get_format("world")


@pytest.fixture(scope="session")
def runner_with_seed(generator, scorer, world_format):
    """A StrategyRunner on the session's engines with the recipe's sampling and a given seed."""
    from ttc.strategies import SamplingConfig, StrategyRunner

    return lambda seed: StrategyRunner(generator, scorer, world_format, SamplingConfig(seed=seed))


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """One local Ray cluster for the whole test session (ray.init costs ~10 s here)."""
    import ray

    os.environ.setdefault("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             _temp_dir=os.environ["RAY_TMPDIR"])
    yield ray
    ray.shutdown()


# --- small labeled CPU-world data shared by the pipeline and Serve tests ---------------
@pytest.fixture(scope="session")
def query_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline")
    qs = []
    for split, per_level in (("train", 3), ("val", 1), ("test", 2)):
        qs += [p.to_query() for p in generate_problems(per_level, seed=SPLIT_SEEDS[split] + 5, prefix=split)]
    return write_queries(qs, d / "queries.parquet"), len(qs)


@pytest.fixture(scope="session")
def labeled(ray_session, query_file, tmp_path_factory):
    """A run that crashes after one shard, resumed, and an uninterrupted run to compare."""
    qpath, n = query_file
    d = tmp_path_factory.mktemp("labels")
    with pytest.raises(Exception, match="injected crash"):
        label.run(label_cfg(qpath, d / "resumed", fail_after_shards=1))
    shard_files = sorted((d / "resumed" / "shards").glob("shard-*.parquet"))
    first = {p.name: p.stat().st_mtime_ns for p in shard_files}
    resumed = label.run(label_cfg(qpath, d / "resumed"))
    straight = label.run(label_cfg(qpath, d / "straight"))
    return {"dir": d, "n": n, "first": first, "resumed": resumed, "straight": straight}




@pytest.fixture(scope="session")
def small_artifact(labeled, tmp_path_factory):
    """A probe artifact trained on the small labeled splits."""
    from jobs import train_probe
    from jobs.demo import split_table

    d = tmp_path_factory.mktemp("artifact")
    paths = split_table(labeled["dir"] / "straight" / "labels.parquet", d)
    train_probe.run(train_probe.TrainProbeConfig(train_labels=str(paths["train"]), val_labels=str(paths["val"]),
                                                 out_dir=str(d / "probe"), max_epochs=5))
    return {"path": d / "probe", "splits": paths}


@pytest.fixture(scope="session")
def serve_deployment(ray_session, small_artifact, tmp_path_factory):
    """The latte Serve app on the real tiny models, shared by every HTTP test."""
    import socket

    import yaml
    from ray import serve

    from serve_app.deploy import deploy
    from tests.support import SERVE_TOKEN

    d = tmp_path_factory.mktemp("serve")
    router_cfg = d / "router.yaml"
    router_cfg.write_text(yaml.safe_dump({
        "artifact": str(small_artifact["path"]), "recipe": CPU_RECIPE,
        "api_token": SERVE_TOKEN, "max_question_chars": 500,
        "presets": {"latte": {"lambda_tokens": 1e-4}, "latte-fast": {"lambda_tokens": 5e-3},
                    "latte-accurate": {}}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The shipped CPU Serve config, with one change: a PRM replica is declared to sustain
    # only 20 step-scorings/s, so a test-sized burst of beam search is enough to grow the pool.
    serve_cfg = yaml.safe_load(Path(REPO / CPU_SERVE_CONFIG).read_text())
    serve_cfg["applications"][0]["autoscaling_policy"]["policy_kwargs"]["prm_steps_per_s"] = 20
    serve_path = d / "serve.yaml"
    serve_path.write_text(yaml.safe_dump(serve_cfg))
    args = {"router_config": str(router_cfg)}
    deploy(serve_path, args, http_port=port)
    yield {"base": f"http://127.0.0.1:{port}", "port": port, "args": args, "router_config": router_cfg,
           "config": serve_path}
    serve.delete("latte")



def pytest_collection_modifyitems(session, config, items):
    """Tests that need the Serve app run last: its replicas hold the session's CPUs, so a
    labeling job's actors started after it could never be scheduled."""
    items.sort(key=lambda item: "serve_deployment" in getattr(item, "fixturenames", ()))
