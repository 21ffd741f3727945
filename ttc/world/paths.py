"""Where the shipped tiny world lives (overridable for experiments)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def load_yaml_mapping(path: str | Path, what: str) -> dict:
    """A YAML config file (found as `repo_path` finds it) that must hold a mapping;
    `what` names it in the errors ("recipe file", "router config")."""
    import yaml

    p = repo_path(path)
    if not p.is_file():
        raise ValueError(f"{what} {path} does not exist")
    data = yaml.safe_load(p.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold a mapping")
    return data

