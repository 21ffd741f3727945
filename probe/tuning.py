"""Tune the router's lambdas against SLO targets by offline replay over a label table.

Operators state SLOs (mean generated tokens, p50/p95 latency per query), not lambdas.
A trial picks (lambda_T, lambda_L); the selector replays every validation query with
the probe's predictions and is scored with the table's TRUE soft labels and measured
costs. Optuna maximizes accuracy subject to the SLOs as constraints (<= 0 feasible),
or, in multi-objective mode, returns the Pareto set of accuracy / tokens / p95 latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probe.evaluation import Truth
from probe.router_config import SLOTargets
from probe.selection import select

# SLO targets; each bounds the outcome metric of the same name.
SLO_FIELDS = ("mean_tokens", "p50_latency_s", "p95_latency_s")


class InfeasibleSLO(ValueError):
    """No lambdas meet the SLOs; names the binding constraint and the closest achievable values."""

    def __init__(self, message: str, binding: str, closest: dict):
        super().__init__(message)
        self.binding = binding
        self.closest = closest


@dataclass(frozen=True)
class Replay:
    """Predictions of the router and the truth of the same queries, [queries x strategies]."""

    ids: list[str]
    acc_hat: np.ndarray
    tokens_hat: np.ndarray
    latency_hat: np.ndarray
    truth: Truth
    allowed: np.ndarray | None = None  # [S] what the router may choose (the artifact's exclusions)

    def outcome(self, lambda_tokens: float, lambda_latency: float) -> dict:
        idx = select(self.acc_hat, self.tokens_hat, self.latency_hat, lambda_tokens, lambda_latency,
                     allowed=self.allowed).index
        return outcome_of(self.truth, idx, self.ids)


def outcome_of(truth: Truth, index: np.ndarray, ids: list[str]) -> dict:
    q = np.arange(len(index))
    lat = truth.latency[q, index]
    share = np.bincount(index, minlength=len(ids)) / max(1, len(index))
    return {"accuracy": float(truth.acc[q, index].mean()), "mean_tokens": float(truth.tokens[q, index].mean()),
            "p50_latency_s": float(np.percentile(lat, 50)), "p95_latency_s": float(np.percentile(lat, 95)),
            "strategy_share": {ids[j]: float(s) for j, s in enumerate(share) if s > 0}}


def constraint_values(outcome: dict, slo: SLOTargets, margin: float = 0.0) -> dict[str, float]:
    """Relative violation per stated target: value / (target * (1 - margin)) - 1, <= 0 is met.

    Relative, so constraints in tokens and seconds compare when naming the binding one."""
    out = {}
    for field in SLO_FIELDS:
        target = getattr(slo, field)
        if target is not None:
            out[field] = outcome[field] / (target * (1.0 - margin)) - 1.0
    return out


def check_slo(slo: SLOTargets) -> None:
    if all(getattr(slo, f) is None for f in SLO_FIELDS):
        raise ValueError(f"the SLO states no target; give at least one of {sorted(SLO_FIELDS)}")


def floors(truth: Truth) -> dict[str, float]:
    """The lowest value each metric can reach with ANY per-query choice (its own cheapest)."""
    q = np.arange(truth.acc.shape[0])
    cheap_t = truth.tokens.argmin(axis=1)
    cheap_l = truth.latency.argmin(axis=1)
    lat = truth.latency[q, cheap_l]
    return {"mean_tokens": float(truth.tokens[q, cheap_t].mean()),
            "p50_latency_s": float(np.percentile(lat, 50)), "p95_latency_s": float(np.percentile(lat, 95))}


def refuse_impossible(truth: Truth, slo: SLOTargets, margin: float = 0.0) -> None:
    """Before any trial: a target below what even the cheapest choice per query reaches."""
    check_slo(slo)
    low = floors(truth)
    bad = {f: (getattr(slo, f) * (1.0 - margin), low[f]) for f in SLO_FIELDS
           if getattr(slo, f) is not None and low[f] > getattr(slo, f) * (1.0 - margin)}
    if bad:
        binding = max(bad, key=lambda f: bad[f][1] / bad[f][0])
        parts = ", ".join(f"{f} <= {t:g}{' (after the safety margin)' if margin else ''} but the cheapest "
                          f"possible choice reaches {v:.4g}" for f, (t, v) in bad.items())
        raise InfeasibleSLO(f"SLO cannot be met by any lambdas: {parts} (binding: {binding})",
                            binding, {f: v for f, (_, v) in bad.items()})


def feasible(trial) -> bool:
    return all(v <= 0 for v in trial.constraints.values())


def choose(trials: list, slo: SLOTargets) -> object:
    """Most accurate feasible trial (ties: fewer tokens, then lower p95 latency).

    Raises InfeasibleSLO naming the constraint that binds at the least-violating trial."""
    done = [t for t in trials if t.user_attrs.get("accuracy") is not None]
    if not done:
        raise ValueError("the study has no finished trials")
    ok = [t for t in done if feasible(t)]
    if ok:
        return max(ok, key=lambda t: (round(t.user_attrs["accuracy"], 12), -t.user_attrs["mean_tokens"],
                                      -t.user_attrs["p95_latency_s"]))
    closest = min(done, key=lambda t: sum(max(0.0, v) for v in t.constraints.values()))
    binding = max(closest.constraints, key=closest.constraints.get)
    values = {f: closest.user_attrs[f] for f in SLO_FIELDS if getattr(slo, f) is not None}
    targets = ", ".join(f"{f} <= {getattr(slo, f):g} (closest {values[f]:.4g})" for f in values)
    raise InfeasibleSLO(f"no trial met the SLO: {targets}; binding constraint: {binding} "
                        f"(violated by {100 * closest.constraints[binding]:.1f}% at the closest trial, "
                        f"lambda_tokens={closest.params['lambda_tokens']:.3g}, "
                        f"lambda_latency={closest.params['lambda_latency']:.3g})", binding, values)


def make_objective(evaluate, slo: SLOTargets, lambda_tokens_range, lambda_latency_range,
                   multi_objective: bool = False, margin: float = 0.0):
    """Optuna objective around `evaluate(lt, ll) -> outcome dict` (offline replay or online load)."""

    def objective(trial):
        lt = trial.suggest_float("lambda_tokens", *lambda_tokens_range, log=True)
        ll = trial.suggest_float("lambda_latency", *lambda_latency_range, log=True)
        out = evaluate(lt, ll)
        for k, v in out.items():
            trial.set_user_attr(k, v)
        for k, v in constraint_values(out, slo, margin).items():
            trial.set_constraint(k, v)
        if multi_objective:
            return out["accuracy"], out["mean_tokens"], out["p95_latency_s"]
        return out["accuracy"]

    return objective


def trial_rows(trials: list) -> list[dict]:
    return [{"number": t.number, **t.params,
             **{k: t.user_attrs[k] for k in ("accuracy", "mean_tokens", "p50_latency_s", "p95_latency_s")},
             "constraints": dict(t.constraints), "feasible": feasible(t)}
            for t in trials if t.user_attrs.get("accuracy") is not None]


def grid_search_best(replay: Replay, slo: SLOTargets, lambdas_t, lambdas_l, margin: float = 0.0) -> dict | None:
    """Exhaustive reference point under the same SLO: best feasible (lt, ll) on a grid."""
    best = None
    for lt in lambdas_t:
        for ll in lambdas_l:
            out = replay.outcome(lt, ll)
            if all(v <= 0 for v in constraint_values(out, slo, margin).values()):
                if best is None or out["accuracy"] > best["accuracy"]:
                    best = {"lambda_tokens": float(lt), "lambda_latency": float(ll), **out}
    return best
