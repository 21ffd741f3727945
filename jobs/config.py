"""Load a job config file into its Pydantic model, refusing bad files before any work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    pass


def load_config(model: type[M], path: str | None) -> M:
    if path is None:
        return model()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # any parse error is the user's file, say so
        raise ConfigError(f"config file {path} is not valid {p.suffix[1:] or 'JSON'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    try:
        return model(**data)
    except ValidationError as exc:
        raise ConfigError(f"config file {path} is invalid:\n{exc}") from exc


def check_lambda_ranges(cfg, names=("lambda_tokens_range", "lambda_latency_range")) -> None:
    """Log-spaced lambda ranges (sweeps, Optuna search spaces) need 0 < lo < hi, both finite."""
    import math

    for name in names:
        lo, hi = getattr(cfg, name)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= lo:
            raise ValueError(f"{name} must be two finite numbers 0 < lo < hi, got {(lo, hi)}")

