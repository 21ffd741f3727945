"""Repository paths: the repo root, config paths relative to it, the shipped world's assets, and
the one YAML loader every config (recipes, jobs, router) goes through."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The embedded default: every job, benchmark and the router use this recipe unless told otherwise.
CPU_RECIPE = "cluster/recipes/cpu_world.yaml"
GPU_RECIPE = "cluster/recipes/gpu_qwen.yaml"
CPU_SERVE_CONFIG = "cluster/serve/cpu_world.yaml"


def world_dir() -> Path:
    return Path(os.environ.get("LATTE_WORLD_DIR", REPO_ROOT / "assets" / "world"))


def policy_dir(root: Path | None = None) -> Path:
    return (root or world_dir()) / "policy"


def prm_dir(root: Path | None = None) -> Path:
    return (root or world_dir()) / "prm"


def repo_path(path: str | Path) -> Path:
    """A config path as given if it exists (or is absolute), else relative to the repo root,
    so commands and Ray workers find cluster/ files whatever their working directory."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else REPO_ROOT / p


class ConfigFileError(ValueError):
    """A config file that is missing, unparsable or not a mapping (jobs, recipes, router)."""


def read_mapping(path: str | Path, what: str = "config file") -> dict:
    """A YAML (or, by suffix, JSON) config file, found as `repo_path` finds it, that must hold
    a mapping; `what` names it in the errors ("recipe file", "router config")."""
    import json

    import yaml

    p = repo_path(path)
    if not p.is_file():
        raise ConfigFileError(f"{what} {path} does not exist")
    try:
        data = json.loads(p.read_text()) if p.suffix == ".json" else (yaml.safe_load(p.read_text()) or {})
    except Exception as exc:  # any parse error is the user's file: say so
        raise ConfigFileError(f"{what} {path} is not valid {'JSON' if p.suffix == '.json' else 'YAML'}: "
                              f"{exc}") from exc
    if not isinstance(data, dict):
        raise ConfigFileError(f"{what} {path} must hold a mapping of settings")
    return data
