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
