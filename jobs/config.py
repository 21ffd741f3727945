"""Load a job config file into its Pydantic model, refusing bad files before any work."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ttc.paths import ConfigFileError as ConfigError, read_mapping

M = TypeVar("M", bound=BaseModel)


def load_config(model: type[M], path: str | None) -> M:
    if path is None:
        return model()
    data = read_mapping(path)
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

