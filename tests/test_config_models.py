"""Config models document themselves, and the runtime types derived from them keep their fields."""

import pytest

from jobs.evaluate import EvaluateConfig
from jobs.label import LabelConfig
from jobs.train_probe import TrainProbeConfig
from jobs.tune import OnlineConfig, TuneConfig
from jobs.world import WorldConfig
from probe.router_config import LoadControl, Preset, RouterConfig, SLOTargets
from serve_app.app import AppArgs
from ttc.engine_settings import EngineSettings, EngineSpec
from ttc.recipe import CPU_RECIPE, EngineConfig, Recipe, Resources, load_recipe
from ttc.sampling import SamplingConfig, SamplingSettings

DESCRIBED = [Recipe, EngineConfig, Resources, SamplingSettings, SamplingConfig, EngineSpec,
             RouterConfig, Preset, SLOTargets, LoadControl, EvaluateConfig, LabelConfig, TrainProbeConfig,
             OnlineConfig, TuneConfig, WorldConfig, AppArgs]


@pytest.mark.parametrize("model", DESCRIBED, ids=lambda m: m.__name__)
def test_every_config_field_has_a_description(model):
    missing = [name for name, f in model.model_fields.items() if not (f.description or "").strip()]
    assert not missing, f"{model.__name__} fields without a description: {missing}"


@pytest.mark.parametrize("base, runtime", [(SamplingSettings, SamplingConfig), (EngineSettings, EngineSpec),
                                           (EngineSettings, EngineConfig)])
def test_derived_types_carry_the_config_defaults_and_constraints(base, runtime):
    for name, f in base.model_fields.items():
        g = runtime.model_fields[name]
        assert (g.default, g.metadata, g.annotation) == (f.default, f.metadata, f.annotation), name


def test_the_recipe_values_reach_the_runtime_types():
    r = load_recipe(CPU_RECIPE)
    for eng in (r.policy, r.prm):
        spec = eng.spec(seed=7)
        assert spec.seed == 7 and spec.model == eng.resolved_model()
        assert {k: getattr(spec, k) for k in EngineSettings.model_fields if k != "model"} == \
            {k: getattr(eng, k) for k in EngineSettings.model_fields if k != "model"}
        assert EngineSpec(**spec.model_dump()) == spec  # the dict the Serve pools receive
    s = r.sampling.config(seed=3)
    assert s.model_dump() == {**r.sampling.model_dump(), "seed": 3}
    assert s.replace(temperature=0.0).temperature == 0.0 and s.temperature == r.sampling.temperature
    with pytest.raises(ValueError):
        s.replace(top_p=2.0)  # replace validates like the constructor
