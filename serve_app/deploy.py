"""Start Serve and deploy the latte application from a Serve config file.

The config file path is what `serve run` takes too; deploying through the config
schema (not `serve.run(app)`) is what enables the application-level autoscaling
policy declared in it.
"""

from __future__ import annotations

import copy
from pathlib import Path


def load_serve_config(path: str | Path, app_args: dict | None = None, http_port: int | None = None) -> dict:
    import yaml

    from ttc.paths import repo_path

    data = yaml.safe_load(repo_path(path).read_text())
    data = copy.deepcopy(data)
    if app_args:
        for app in data["applications"]:
            app.setdefault("args", {}).update(app_args)
    if http_port is not None:
        data.setdefault("http_options", {})["port"] = http_port
    return data


def deploy(path: str | Path, app_args: dict | None = None, http_port: int | None = None,
           deployment_overrides: dict | None = None, wait_s: float = 900.0) -> dict:
    """Deploy (or update) the app and wait until it is RUNNING.

    Serve's own blocking deploy gives up after 60 s, but two in-process vLLM engines
    starting side by side on a 2-core machine take about 70 s, so keep waiting up to
    `wait_s` and fail early with Serve's message if a deployment fails."""
    import time

    from ray import serve
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    data = load_serve_config(path, app_args, http_port)
    for app in data["applications"]:
        for dep in app.get("deployments", []):
            dep.update((deployment_overrides or {}).get(dep["name"], {}))
    schema = ServeDeploySchema(**data)
    serve.start(http_options=data.get("http_options"), proxy_location=data.get("proxy_location"))
    try:
        _get_global_client().deploy_apps(schema, _blocking=True)
        return data
    except TimeoutError:
        pass
    names = [a["name"] for a in data["applications"]]
    t0 = time.monotonic()
    while time.monotonic() - t0 < wait_s:
        apps = serve.status().applications
        failed = [f"{n}: {apps[n].message}" for n in names if n in apps and apps[n].status == "DEPLOY_FAILED"]
        if failed:
            raise RuntimeError(f"Serve application failed to deploy: {'; '.join(failed)}")
        if all(n in apps and apps[n].status == "RUNNING" for n in names):
            return data
        time.sleep(2)
    raise TimeoutError(f"Serve applications {names} are not running after {60 + wait_s:.0f} s")


def reload_router(path: str | Path, router_config: str | Path, app_args: dict | None = None,
                  http_port: int | None = None) -> dict:
    """Apply a new router config to the running app without restarting any replica.

    Only the Router's user_config changes, which Serve applies in place by calling
    Router.reconfigure; `path`, `app_args` and `http_port` must be those of the running
    deployment (changing them redeploys the app)."""
    from probe.router_config import RouterConfig

    RouterConfig.load(router_config)  # refuse a bad file before touching the live app
    return deploy(path, app_args, http_port,
                  deployment_overrides={"Router": {"user_config": {"router_config": str(router_config)}}})
