from pathlib import Path

import pytest
from pydantic import ValidationError

from ttc.recipe import CPU_RECIPE, GPU_RECIPE, Recipe, load_recipe
from ttc.paths import REPO_ROOT


def test_cpu_recipe_points_at_shipped_world():
    r = load_recipe(CPU_RECIPE)
    assert r.strategy_grid().name == "cpu"
    for eng in (r.policy, r.prm):
        assert eng.resources.num_gpus == 0
        assert (Path(eng.resolved_model()) / "config.json").is_file()
        assert (Path(eng.resolved_model()) / "tokenizer.json").is_file()


def test_gpu_recipe_is_consistent():
    r = load_recipe(GPU_RECIPE)
    grid = r.strategy_grid()
    assert grid.name == "paper"
    # The paper's 22 configs, with escalation beside them.
    assert sum(s.method != "escalate" for s in grid.strategies) == 22
    assert any(s.method == "escalate" for s in grid.strategies)
    assert r.format().step_tag == "<extra_0>"
    for eng in (r.policy, r.prm):
        assert eng.resources.num_gpus >= 1 and eng.dtype == "bfloat16"
        assert not eng.is_local()
    # Same fields as the CPU recipe: only models and resources differ.
    cpu = load_recipe(CPU_RECIPE)
    assert set(cpu.model_dump()) == set(r.model_dump())


def test_bad_recipes_are_refused(tmp_path):
    base = load_recipe(CPU_RECIPE).model_dump()
    with pytest.raises(ValidationError, match="unknown grid"):
        Recipe(**{**base, "grid": "huge"})
    with pytest.raises(ValidationError, match="unknown prompt format"):
        Recipe(**{**base, "prompt_format": "chatml"})
    with pytest.raises(ValidationError, match="greater than 0"):
        Recipe(**{**base, "sampling": {"max_tokens": 0}})
    with pytest.raises(ValueError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_world_job_config_parses():
    from jobs.config import load_config
    from jobs.world import WorldConfig

    cfg = load_config(WorldConfig, str(REPO_ROOT / "cluster/jobs/world_cpu.yaml"))
    assert cfg.out_dir == "assets/world" and cfg.policy_tokens > 0
