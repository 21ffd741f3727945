"""Utility-maximizing strategy selection, vectorized over a batch of queries.

    U[q, s] = A[q, s] - lambda_T * T[q, s] - lambda_L * L[q, s],   s*(q) = argmax_s U[q, s]

A (predicted accuracy), T (tokens) and L (seconds) are [queries x strategies]
arrays (a per-strategy cost row broadcasts). The constrained mode picks the most
accurate strategy whose predicted cost fits a token and/or latency budget, and the
cheapest one when none fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import TypeAdapter, ValidationError

from ttc.config_types import FiniteNonNegative, FinitePositive

# The config and request models' own number types, so a value passes here iff it passes there.
_LAMBDA, _BUDGET = TypeAdapter(FiniteNonNegative), TypeAdapter(FinitePositive)


def _checked(adapter: TypeAdapter, name: str, value) -> float:
    try:
        return float(adapter.validate_python(value))
    except ValidationError as exc:
        raise ValueError(f"{name}: {exc.errors()[0]['msg']}, got {value!r}") from None


def check_lambda(name: str, value) -> float:
    return _checked(_LAMBDA, name, value)


def check_budget(name: str, value) -> float | None:
    return None if value is None else _checked(_BUDGET, name, value)


@dataclass
class Selection:
    index: np.ndarray  # [Q] chosen strategy per query
    utility: np.ndarray  # [Q, S]
    rank: np.ndarray  # [Q, S] utility / max(1, lambdas): same order, finite under huge lambdas
    feasible: np.ndarray  # [Q] whether the choice met the budgets (always True without budgets)


def utilities(acc: np.ndarray, tokens: np.ndarray, latency: np.ndarray,
              lambda_tokens: float, lambda_latency: float) -> np.ndarray:
    lt = check_lambda("lambda_tokens", lambda_tokens)
    ll = check_lambda("lambda_latency", lambda_latency)
    acc = np.asarray(acc, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        return acc - lt * np.broadcast_to(tokens, acc.shape) - ll * np.broadcast_to(latency, acc.shape)


def dominated(accuracy, tokens, latency) -> np.ndarray:
    """[S] True where another strategy is at least as accurate and no dearer in tokens and
    latency, better in one (means over a labeled split). The router never chooses these:
    per query, noise in the probe's cells lifts some of them over the strategy that beats
    them on average (a winner's curse), and no query is better served by them on average."""
    a, t, l = (np.asarray(x, dtype=np.float64) for x in (accuracy, tokens, latency))
    ge = (a[None, :] >= a[:, None]) & (t[None, :] <= t[:, None]) & (l[None, :] <= l[:, None])
    gt = (a[None, :] > a[:, None]) | (t[None, :] < t[:, None]) | (l[None, :] < l[:, None])
    return (ge & gt).any(axis=1)  # row j: some column k dominates j


def fitting(tokens: np.ndarray, latency: np.ndarray, max_tokens: float | None = None,
            max_latency_s: float | None = None, allowed: np.ndarray | None = None) -> np.ndarray:
    """[Q, S] (or [S]) the strategies that compete: those within the budgets, the allowed ones
    among them where any allowed one fits. A budget is a constraint, the exclusion a
    preference: where no allowed strategy fits a query's budget, the excluded ones that fit
    compete."""
    max_tokens = check_budget("max_tokens", max_tokens)
    max_latency_s = check_budget("max_latency_s", max_latency_s)
    fits = np.ones(np.shape(latency), dtype=bool)
    if max_tokens is not None:
        fits &= tokens <= max_tokens
    if max_latency_s is not None:
        fits &= latency <= max_latency_s
    if allowed is not None:
        preferred = fits & np.asarray(allowed, dtype=bool)
        fits = np.where(preferred.any(axis=-1, keepdims=True), preferred, fits)
    return fits


def select(acc: np.ndarray, tokens: np.ndarray, latency: np.ndarray, lambda_tokens: float = 0.0,
           lambda_latency: float = 0.0, max_tokens: float | None = None,
           max_latency_s: float | None = None, allowed: np.ndarray | None = None,
           budget_latency: np.ndarray | None = None) -> Selection:
    """argmax utility per query; with budgets, only strategies predicted to fit compete.
    `allowed` [S] (default all): the strategies preferred; the others compete only for a
    query whose budget no allowed strategy fits. `budget_latency` (default `latency`): the
    seconds compared with `max_latency_s` (the router's tail-aware figure), while the
    utility prices `latency`."""
    acc = np.atleast_2d(np.asarray(acc, dtype=np.float64))
    tok = np.broadcast_to(np.asarray(tokens, dtype=np.float64), acc.shape)
    lat = np.broadcast_to(np.asarray(latency, dtype=np.float64), acc.shape)
    lt, ll = check_lambda("lambda_tokens", lambda_tokens), check_lambda("lambda_latency", lambda_latency)
    u = utilities(acc, tok, lat, lt, ll)
    # Huge (finite) lambdas overflow U to -inf for every strategy; the argmax then runs on
    # U / s, s = max(1, lambdas), which orders strategies the same and stays finite.
    scale = max(1.0, lt, ll)
    u_rank = u if scale == 1.0 else utilities(acc / scale, tok, lat, lt / scale, ll / scale)
    checked = lat if budget_latency is None else np.broadcast_to(np.asarray(budget_latency, dtype=np.float64),
                                                                  acc.shape)
    fits = fitting(tok, checked, max_tokens, max_latency_s, allowed)
    masked = np.where(fits, u_rank, -np.inf)
    any_fit = fits.any(axis=1)
    # Nothing fits: fall back to the cheapest strategy (by latency, then tokens).
    cheapest = np.lexsort((tok, lat), axis=1)[:, 0] if acc.size else np.zeros(0, dtype=int)
    index = np.where(any_fit, np.argmax(masked, axis=1), cheapest)
    return Selection(index=index, utility=u, rank=u_rank, feasible=any_fit)
