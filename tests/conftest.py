"""Session-wide fixtures: one pair of real in-process vLLM engines for the whole run."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def generator():
    from ttc.world.engines import world_generator

    return world_generator(seed=0)


@pytest.fixture(scope="session")
def scorer():
    from ttc.world.engines import world_scorer

    return world_scorer(seed=0)


@pytest.fixture(scope="session")
def world_format():
    from ttc.prompts import get_format

    return get_format("world")


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """One local Ray cluster for the whole test session (ray.init costs ~10 s here)."""
    import ray

    os.environ.setdefault("RAY_TMPDIR", str(tmp_path_factory.mktemp("ray")))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             _temp_dir=os.environ["RAY_TMPDIR"])
    yield ray
    ray.shutdown()
