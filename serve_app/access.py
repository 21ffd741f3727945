"""Who may call (bearer token) and which knobs a request runs with (preset + overrides)."""

from __future__ import annotations

from serve_app.protocol import LatteError


def authorize(headers, token: str | None) -> None:
    if token and headers.get("authorization") != f"Bearer {token}":
        raise LatteError(401, "missing or wrong bearer token", code="invalid_api_key")


def resolve_knobs(cfg, preset_name: str | None, overrides: dict) -> dict:
    """The preset's lambdas and budgets, overridden by the request's own (validated) values."""
    try:
        preset = cfg.preset(preset_name)
    except KeyError:
        raise LatteError(404, f"unknown model/preset {preset_name!r}; known: {sorted(cfg.presets)}",
                         param="model", code="model_not_found") from None
    knobs = preset.model_dump()
    knobs.update({k: v for k, v in overrides.items() if v is not None})
    return knobs
