"""Every file under cluster/ parses and every reference in it resolves; no Ray cluster is started.

Checked against the real validators: the jobs' pydantic config classes, ttc.recipe,
probe.router_config, Ray Serve's config schema, the Ray cluster launcher's JSON schema,
and the KubeRay autoscaler's reading of a worker group's resources.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
YAMLS = sorted(CLUSTER.rglob("*.yaml"))
TEXTS = sorted([*YAMLS, *CLUSTER.rglob("*.md"), *CLUSTER.rglob("*.py")])
ENTRY = re.compile(r"python -m jobs\.(\w+) --config ([\w./-]*\w)")
CLUSTER_PATH = re.compile(r"(?<![\w/.~-])(cluster/[\w./-]+\.(?:ya?ml|py|md))")
POOLS = {"PolicyPool": "policy", "PRMPool": "prm"}


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def load(p: Path):
    return yaml.safe_load(p.read_text())


def docs_of_kind(kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p in sorted((CLUSTER / "kuberay").glob("*.yaml")) if (d := load(p)).get("kind") == kind]


def serve_configs() -> list[tuple[str, dict]]:
    out = [(rel(p), d) for p in sorted((CLUSTER / "serve").glob("*.yaml")) if "applications" in (d := load(p))]
    for p, d in docs_of_kind("RayService"):
        out.append((f"{rel(p)} serveConfigV2", yaml.safe_load(d["spec"]["serveConfigV2"])))
    return out


def router_configs() -> list[Path]:
    return [p for p in sorted((CLUSTER / "serve").glob("*.yaml")) if "applications" not in load(p)]


def entrypoints() -> list[tuple[str, str, str]]:
    """(file, job module, config path) for every `python -m jobs.X --config Y` in cluster/."""
    found = set()
    for p in TEXTS:
        for m in ENTRY.finditer(p.read_text()):
            found.add((rel(p), m.group(1), m.group(2)))
    return sorted(found)


def import_attr(path: str):
    mod, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    return getattr(importlib.import_module(mod), attr)


def config_class(module: str):
    name = "".join(w.capitalize() for w in module.split("_")) + "Config"
    mod = importlib.import_module(f"jobs.{module}")
    assert hasattr(mod, name), f"jobs/{module}.py defines no {name} (the class its --config file is loaded into)"
    return getattr(mod, name)


def check_references(where: str, cfg) -> None:
    """A config's recipe / router config fields must point at files that load."""
    from probe.router_config import RouterConfig
    from ttc.recipe import load_recipe

    for field in type(cfg).model_fields:
        value = getattr(cfg, field)
        if not isinstance(value, str):
            continue
        try:
            if field == "recipe":
                load_recipe(value)
            elif field.endswith("router_config"):
                RouterConfig.load(value)
        except Exception as exc:
            pytest.fail(f"{where}: {field}: {value} does not load: {exc}")


# (a) ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", YAMLS, ids=rel)
def test_yaml_parses(path):
    try:
        data = load(path)
    except yaml.YAMLError as exc:
        pytest.fail(f"{rel(path)} is not valid YAML: {exc}")
    assert isinstance(data, dict), f"{rel(path)} must hold a mapping"
    for key in ("serveConfigV2", "runtimeEnvYAML"):  # YAML embedded in KubeRay strings
        text = (data.get("spec") or {}).get(key)
        if text is not None:
            assert isinstance(yaml.safe_load(text), dict), f"{rel(path)}: spec.{key} must hold a YAML mapping"


@pytest.mark.parametrize("path", TEXTS, ids=rel)
def test_cluster_paths_mentioned_exist(path):
    missing = sorted({m for m in CLUSTER_PATH.findall(path.read_text()) if not (REPO / m).exists()})
    assert not missing, f"{rel(path)} refers to missing file(s): {missing}"


def test_runtime_env_ships_code_and_world_but_not_outputs():
    from ray._private.runtime_env.packaging import _get_excludes
    from ray.runtime_env import RuntimeEnv

    path = CLUSTER / "runtime_env.yaml"
    env = load(path)
    RuntimeEnv(**env)
    assert env["working_dir"] == ".", f"{rel(path)}: working_dir must be the repo root (run from there)"
    excluded = _get_excludes(REPO, env.get("excludes", []))
    for kept in ("assets/world/policy/config.json", "cluster/jobs/label_cpu.yaml", "jobs/label.py"):
        assert not excluded(REPO / kept), f"{rel(path)}: excludes drop {kept}, which jobs need"
    for dropped in ("runs/demo/labels/labels.parquet", ".git/HEAD", ".cache/vllm/x"):
        assert excluded(REPO / dropped), f"{rel(path)}: excludes should drop {dropped}"


# (b) ------------------------------------------------------------------------------------

@pytest.mark.parametrize("where,module,config", [pytest.param(*e, id=f"{e[0]}:jobs.{e[1]}:{e[2]}") for e in entrypoints()])
def test_entrypoint_module_and_config_resolve(where, module, config):
    from jobs.config import ConfigError, load_config

    assert (REPO / "jobs" / f"{module}.py").is_file(), \
        f"{where}: `python -m jobs.{module}` names jobs/{module}.py, which does not exist"
    assert (REPO / config).is_file(), f"{where}: `python -m jobs.{module} --config {config}`: no such file"
    cls = config_class(module)
    try:
        cfg = load_config(cls, str(REPO / config))
    except ConfigError as exc:
        pytest.fail(f"{where}: {config} does not validate as {cls.__name__}: {exc}")
    check_references(f"{where} -> {config}", cfg)


def test_every_job_config_is_used_and_valid():
    """Configs no entrypoint mentions still have to load into their job's class."""
    from jobs.config import load_config

    for path in sorted((CLUSTER / "jobs").glob("*.yaml")):
        module = path.stem.rsplit("_", 1)[0]
        assert (REPO / "jobs" / f"{module}.py").is_file(), f"{rel(path)}: no jobs/{module}.py for this config"
        check_references(rel(path), load_config(config_class(module), str(path)))


@pytest.mark.parametrize("path,doc", [pytest.param(p, d, id=rel(p)) for p, d in docs_of_kind("RayJob")])
def test_rayjob_entrypoint_and_runtime_env(path, doc):
    spec = doc["spec"]
    assert ENTRY.fullmatch(spec["entrypoint"]), f"{rel(path)}: entrypoint is not `python -m jobs.X --config Y`"
    assert spec.get("shutdownAfterJobFinishes") is True, f"{rel(path)}: shutdownAfterJobFinishes must be true"
    env = yaml.safe_load(spec.get("runtimeEnvYAML") or "{}")
    # The --config path is relative: the job must run in the repo copy inside the image.
    assert str(env.get("working_dir", "")).startswith("local:///"), \
        f"{rel(path)}: runtimeEnvYAML needs working_dir local:///<repo in the image>"


# (c) ------------------------------------------------------------------------------------

def _unknown_keys(where: str, data: dict, model) -> list[str]:
    # Serve's schemas ignore unknown keys; a typo would silently fall back to a default.
    return [f"{where}.{k}" for k in data if k not in model.model_fields]


@pytest.mark.parametrize("where,cfg", [pytest.param(w, c, id=w) for w, c in serve_configs()])
def test_serve_config_validates_and_resolves(where, cfg):
    from ray.serve.config import AutoscalingConfig, AutoscalingPolicy
    from ray.serve.schema import (DeploymentSchema, HTTPOptionsSchema, RayActorOptionsSchema,
                                  ServeApplicationSchema, ServeDeploySchema)

    from probe.router_config import RouterConfig
    from serve_app.app import AppArgs
    from serve_app.pools import PolicyPool, PRMPool
    from serve_app.router import Router
    from ttc.recipe import load_recipe

    try:
        ServeDeploySchema(**cfg)
    except Exception as exc:
        pytest.fail(f"{where} is not a valid Serve config: {exc}")
    unknown = _unknown_keys(where, cfg, ServeDeploySchema)
    unknown += _unknown_keys(f"{where}.http_options", cfg.get("http_options", {}), HTTPOptionsSchema)
    known_deployments = {PolicyPool.name, PRMPool.name, Router.name}
    for app in cfg["applications"]:
        at = f"{where}: application {app.get('name')!r}"
        unknown += _unknown_keys(at, app, ServeApplicationSchema)
        try:
            builder = import_attr(app["import_path"])
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"{at}: import_path {app['import_path']} does not import: {exc}")
        assert callable(builder), f"{at}: import_path {app['import_path']} is not callable"
        try:
            args = AppArgs(**app.get("args", {}))
            recipe = load_recipe(args.recipe)
            router = RouterConfig.load(args.router_config)
            router_recipe = load_recipe(router.recipe)
        except Exception as exc:
            pytest.fail(f"{at}: args {app.get('args')} do not resolve: {exc}")
        assert router_recipe == recipe, \
            f"{at}: router config {args.router_config} is for recipe {router.recipe}, the app serves {args.recipe}"
        policy = app.get("autoscaling_policy")
        if policy:
            AutoscalingPolicy(**policy)
            try:
                fn = import_attr(policy["policy_function"])
            except (ImportError, AttributeError) as exc:
                pytest.fail(f"{at}: policy_function {policy['policy_function']} does not import: {exc}")
            if isinstance(fn, type):
                fn(**policy.get("policy_kwargs", {}))  # the kwargs must fit the class
        for dep in app.get("deployments", []):
            dat = f"{at} deployment {dep['name']!r}"
            assert dep["name"] in known_deployments, f"{dat}: the app has no such deployment {sorted(known_deployments)}"
            DeploymentSchema(**dep)
            unknown += _unknown_keys(dat, dep, DeploymentSchema)
            unknown += _unknown_keys(f"{dat}.ray_actor_options", dep.get("ray_actor_options", {}),
                                     RayActorOptionsSchema)
            unknown += _unknown_keys(f"{dat}.autoscaling_config", dep.get("autoscaling_config") or {},
                                     AutoscalingConfig)
    assert not unknown, f"keys Ray Serve does not know (would be ignored): {unknown}"


@pytest.mark.parametrize("path", router_configs(), ids=rel)
def test_router_config_loads(path):
    from probe.router_config import RouterConfig
    from ttc.recipe import load_recipe

    try:
        cfg = RouterConfig.load(path)
        load_recipe(cfg.recipe)
    except Exception as exc:
        pytest.fail(f"{rel(path)} does not load: {exc}")


# (d) ------------------------------------------------------------------------------------

def test_rayservice_embeds_the_gpu_serve_config():
    serve_file = CLUSTER / "serve" / "gpu_qwen.yaml"
    expected = load(serve_file)
    for path, doc in docs_of_kind("RayService"):
        got = yaml.safe_load(doc["spec"]["serveConfigV2"])
        diff = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
        if "applications" in diff:
            for a, b in zip(expected["applications"], got["applications"]):
                diff += [f"applications[{a['name']}].{k}" for k in set(a) | set(b) if a.get(k) != b.get(k)]
                for da, db in zip(a.get("deployments", []), b.get("deployments", [])):
                    diff += [f"deployment {da['name']}.{k}" for k in set(da) | set(db) if da.get(k) != db.get(k)]
        assert not diff, f"{rel(path)} serveConfigV2 differs from {rel(serve_file)} in: {diff}"


def test_ray_versions_and_images_agree():
    import ray

    launcher = load(CLUSTER / "launcher" / "gpu_cluster.yaml")
    image = launcher["docker"]["image"]
    assert image.startswith(f"rayproject/ray:{ray.__version__}-py311"), \
        f"cluster/launcher/gpu_cluster.yaml: image {image} is not Ray {ray.__version__} / Python 3.11"
    images = set()
    for path in sorted((CLUSTER / "kuberay").glob("*.yaml")):
        doc = load(path)
        spec = doc["spec"].get("rayClusterConfig") or doc["spec"].get("rayClusterSpec")
        assert spec["rayVersion"] == ray.__version__, f"{rel(path)}: rayVersion {spec['rayVersion']} != {ray.__version__}"
        for group in [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]:
            images |= {c["image"] for c in group["template"]["spec"]["containers"]}
    assert len(images) == 1, f"cluster/kuberay uses several images: {sorted(images)}"


# (e) ------------------------------------------------------------------------------------

@pytest.mark.parametrize("where,cfg", [pytest.param(w, c, id=w) for w, c in serve_configs()])
def test_pools_request_the_recipes_devices(where, cfg):
    from serve_app.app import AppArgs
    from ttc.recipe import load_recipe

    for app in cfg["applications"]:
        recipe = load_recipe(AppArgs(**app.get("args", {})).recipe)
        gpu = recipe.policy.resources.num_gpus > 0 or recipe.prm.resources.num_gpus > 0
        for dep in app.get("deployments", []):
            opts = dep.get("ray_actor_options")
            if opts is None:
                continue  # build_app derives the options from the recipe
            at = f"{where}: {dep['name']}.ray_actor_options"
            if dep["name"] in POOLS:
                res = getattr(recipe, POOLS[dep["name"]]).resources
                # These options replace build_app's recipe-derived ones (whole dict).
                assert (opts.get("num_gpus") or 0) == res.num_gpus, \
                    f"{at}: num_gpus {opts.get('num_gpus')} but the recipe ({recipe.name}) asks {res.num_gpus}"
                assert opts.get("accelerator_type") == res.accelerator_type, \
                    f"{at}: accelerator_type {opts.get('accelerator_type')} but the recipe asks {res.accelerator_type}"
                if gpu:
                    assert opts.get("num_gpus"), f"{at}: a GPU recipe's pool must request a GPU"
            else:
                assert not opts.get("num_gpus") and not opts.get("accelerator_type"), \
                    f"{at}: the router runs on CPU, no GPU or accelerator type"


@pytest.mark.parametrize("path", sorted((CLUSTER / "jobs").glob("*.yaml")), ids=rel)
def test_job_config_device_matches_its_name(path):
    from jobs.config import load_config
    from ttc.recipe import load_recipe

    module, kind = path.stem.rsplit("_", 1)
    cfg = load_config(config_class(module), str(path))
    if not hasattr(cfg, "recipe") or kind not in ("cpu", "gpu"):
        return
    recipe = load_recipe(cfg.recipe)
    gpus = recipe.policy.resources.num_gpus + recipe.prm.resources.num_gpus
    gpus_per_replica = getattr(cfg, "num_gpus_per_replica", None)
    if kind == "gpu":
        assert gpus > 0, f"{rel(path)}: a _gpu config uses recipe {cfg.recipe}, which requests no GPU"
        assert gpus_per_replica is None or gpus_per_replica > 0, f"{rel(path)}: num_gpus_per_replica is 0"
    else:
        assert gpus == 0 and not gpus_per_replica, f"{rel(path)}: a _cpu config requests GPUs"


def _accelerators_needed() -> set[str]:
    from serve_app.app import AppArgs
    from ttc.recipe import load_recipe

    out = set()
    for _, cfg in serve_configs():
        for app in cfg["applications"]:
            recipe = load_recipe(AppArgs(**app.get("args", {})).recipe)
            out |= {e.resources.accelerator_type for e in (recipe.policy, recipe.prm) if e.resources.accelerator_type}
    return out


def test_launcher_validates_and_offers_the_recipe_accelerator():
    import jsonschema
    import ray.autoscaler

    path = CLUSTER / "launcher" / "gpu_cluster.yaml"
    cfg = load(path)
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    try:
        jsonschema.validate(cfg, schema)
    except jsonschema.ValidationError as exc:
        pytest.fail(f"{rel(path)} fails the cluster launcher schema: {exc.message} at {list(exc.path)}")
    types = cfg["available_node_types"]
    head = types[cfg["head_node_type"]]["resources"]
    assert head.get("GPU", 0) == 0, f"{rel(path)}: the head node type must declare GPU: 0"
    workers = [t for name, t in types.items() if name != cfg["head_node_type"]]
    gpu_workers = [t for t in workers if t["resources"].get("GPU", 0) > 0]
    assert gpu_workers, f"{rel(path)}: no worker node type with GPUs"
    for acc in _accelerators_needed():
        assert any(t["resources"].get(f"accelerator_type:{acc}") for t in gpu_workers), \
            f"{rel(path)}: no GPU node type offers accelerator_type:{acc}, which the recipe requests"
    assert cfg["file_mounts"].get("~/latte") == ".", f"{rel(path)}: file_mounts must sync the repo to ~/latte"
    assert any("pip install" in c and "-e" in c and "latte[gpu]" in c for c in cfg["setup_commands"]), \
        f"{rel(path)}: setup_commands must `pip install -e` the synced repo with the gpu extra"


def _groups(doc):
    spec = doc["spec"].get("rayClusterConfig") or doc["spec"].get("rayClusterSpec")
    return spec["headGroupSpec"], spec.get("workerGroupSpecs", [])


def _ray_resources(group, is_head):
    # The KubeRay autoscaler's own reading of a group (rayStartParams + container limits).
    from ray.autoscaler._private.kuberay.autoscaling_config import _get_ray_resources_from_group_spec

    return _get_ray_resources_from_group_spec(group, is_head)


@pytest.mark.parametrize("path", sorted((CLUSTER / "kuberay").glob("*.yaml")), ids=rel)
def test_kuberay_head_is_cpu_and_gpu_groups_offer_the_accelerator(path):
    doc = load(path)
    head, workers = _groups(doc)
    assert head["rayStartParams"].get("num-gpus") == "0", f"{rel(path)}: head rayStartParams needs num-gpus: \"0\""
    assert _ray_resources(head, True).get("GPU", 0) == 0, f"{rel(path)}: the head requests a GPU"
    for group in workers:
        res = _ray_resources(group, False)
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits.get("nvidia.com/gpu", 0)) == res.get("GPU", 0) > 0, \
            f"{rel(path)}: worker group {group['groupName']} has no nvidia.com/gpu limit"
        for acc in _accelerators_needed():
            assert res.get(f"accelerator_type:{acc}") == 1, \
                f"{rel(path)}: worker group {group['groupName']} does not advertise accelerator_type:{acc}"


def test_rayservice_workers_fit_the_pools():
    for path, doc in docs_of_kind("RayService"):
        cfg = yaml.safe_load(doc["spec"]["serveConfigV2"])
        _, workers = _groups(doc)
        for app in cfg["applications"]:
            deps = [d for d in app["deployments"] if (d.get("ray_actor_options") or {}).get("num_gpus")]
            need_max = sum(d["autoscaling_config"]["max_replicas"] * d["ray_actor_options"]["num_gpus"] for d in deps)
            need_min = sum(d["autoscaling_config"]["min_replicas"] * d["ray_actor_options"]["num_gpus"] for d in deps)
            have_max = sum(g["maxReplicas"] * _ray_resources(g, False)["GPU"] for g in workers)
            have_min = sum(g["minReplicas"] * _ray_resources(g, False)["GPU"] for g in workers)
            assert have_max >= need_max, f"{rel(path)}: GPU workers max out at {have_max} GPUs, the pools need {need_max}"
            assert have_min >= need_min, f"{rel(path)}: minReplicas give {have_min} GPUs, the pools' minimum is {need_min}"
            for d in deps:
                assert any(_ray_resources(g, False)["CPU"] >= d["ray_actor_options"].get("num_cpus", 1) for g in workers), \
                    f"{rel(path)}: no worker pod has the {d['ray_actor_options']['num_cpus']} CPUs {d['name']} needs"


def test_label_rayjob_has_the_gpus_its_config_asks():
    from jobs.config import load_config
    from jobs.label import LabelConfig
    from ttc.recipe import load_recipe

    for path, doc in docs_of_kind("RayJob"):
        m = ENTRY.fullmatch(doc["spec"]["entrypoint"])
        if m.group(1) != "label":
            continue
        cfg = load_config(LabelConfig, str(REPO / m.group(2)))
        res = load_recipe(cfg.recipe).policy.resources
        gpus = cfg.num_gpus_per_replica if cfg.num_gpus_per_replica is not None else res.num_gpus
        cpus = cfg.num_cpus_per_replica if cfg.num_cpus_per_replica is not None else res.num_cpus
        _, workers = _groups(doc)
        pods = [(g["replicas"], _ray_resources(g, False)) for g in workers]
        slots = sum(n * min(r.get("GPU", 0) // gpus, r["CPU"] // cpus) for n, r in pods)
        assert slots >= cfg.replicas, \
            f"{rel(path)}: its workers hold {slots} label actors of {gpus} GPU + {cpus} CPU, {m.group(2)} runs {cfg.replicas}"
