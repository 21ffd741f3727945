"""Build the Serve application (policy pool, PRM pool, router) from a config.

    serve run cluster/serve/cpu_world.yaml          # or: latte serve
Deployment sizes, resources and autoscaling come from the Serve config file;
models from the recipe; lambdas, presets and the probe artifact from the router config.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from ttc.config_types import RecipeFile
from ttc.paths import CPU_RECIPE


class AppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipe: RecipeFile = CPU_RECIPE
    router_config: str = Field("cluster/serve/router_cpu.yaml", description="router config file "
                               "(cluster/serve/router_*.yaml): artifact, presets, SLO, load control")


def _engine_dict(engine, seed: int = 0) -> dict:
    return engine.spec(seed).model_dump()


def build_app(args: AppArgs):
    from probe.router_config import RouterConfig
    from serve_app.pools import PolicyPool, PRMPool
    from serve_app.router import Router
    from ttc.recipe import load_recipe

    if isinstance(args, dict):
        args = AppArgs(**args)
    recipe = load_recipe(args.recipe)
    router_cfg = RouterConfig.load(args.router_config)
    res_p, res_r = recipe.policy.resources, recipe.prm.resources
    policy = PolicyPool.options(ray_actor_options={
        "num_cpus": res_p.num_cpus, "num_gpus": res_p.num_gpus,
        **({"accelerator_type": res_p.accelerator_type} if res_p.accelerator_type else {})}).bind(
        _engine_dict(recipe.policy))
    prm = PRMPool.options(ray_actor_options={
        "num_cpus": res_r.num_cpus, "num_gpus": res_r.num_gpus,
        **({"accelerator_type": res_r.accelerator_type} if res_r.accelerator_type else {})}).bind(
        _engine_dict(recipe.prm), recipe.prompt_format)
    return Router.bind(policy, prm, router_cfg.model_dump())
