"""Offline evaluation of selection policies on a labeled test split.

Every policy picks one strategy per query; it is scored with the TRUE soft label,
tokens and latency of that (query, strategy) from the test label table. Curves come
from sweeping lambda_T (accuracy vs tokens) and lambda_L (accuracy vs latency).

Baselines that keep the evaluation honest: a per-difficulty lookup-table router fitted
on the training split (no learning), and a split-label oracle that chooses with one half
of each cell's resamples and is scored with the other half (the full oracle sees the
labels it is scored on, so its lead over everything includes label noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probe.selection import select


# The reference method's families; everything else in a grid (escalate, ...) is latte's own.
PAPER_METHODS = frozenset({"majority", "best_of_n", "weighted_best_of_n", "beam_search"})


def is_paper_method(method: str) -> bool:
    return method in PAPER_METHODS


SPLIT_COLUMNS = ("soft_label_a", "soft_label_b")
TOL = 1e-9  # accuracies are means of soft labels: compare with a hair of float slack


@dataclass(frozen=True)
class Truth:
    acc: np.ndarray  # [Q, S] soft labels
    tokens: np.ndarray  # [Q, S]
    latency: np.ndarray  # [Q, S]
    acc_a: np.ndarray | None = None  # [Q, S] soft label from the first half of each cell's samples
    acc_b: np.ndarray | None = None  # ... and from the second half

    @classmethod
    def from_table(cls, table) -> "Truth":
        """Measured soft labels and costs of a LabelTable, in its query and grid order."""
        have_split = all(c in table.table.column_names for c in SPLIT_COLUMNS)
        a, b = (table.matrix(c) for c in SPLIT_COLUMNS) if have_split else (None, None)
        return cls(table.matrix("soft_label"), table.matrix("mean_tokens"), table.matrix("mean_latency_s"), a, b)


def outcome(truth: Truth, index: np.ndarray) -> dict:
    q = np.arange(len(index))
    return {"accuracy": float(truth.acc[q, index].mean()), "tokens": float(truth.tokens[q, index].mean()),
            "latency": float(truth.latency[q, index].mean())}


def static_points(truth: Truth, ids: list[str]) -> list[dict]:
    return [{"strategy": sid, "accuracy": float(truth.acc[:, j].mean()),
             "tokens": float(truth.tokens[:, j].mean()), "latency": float(truth.latency[:, j].mean())}
            for j, sid in enumerate(ids)]


def sweep(truth: Truth, acc: np.ndarray, tokens: np.ndarray, latency: np.ndarray,
          lambdas_t, lambdas_l, allowed: np.ndarray | None = None) -> list[dict]:
    pts = []
    for lt in lambdas_t:
        for ll in lambdas_l:
            sel = select(acc, tokens, latency, lambda_tokens=lt, lambda_latency=ll, allowed=allowed)
            pts.append({"lambda_tokens": float(lt), "lambda_latency": float(ll), **outcome(truth, sel.index)})
    return pts


def random_point(truth: Truth, seeds: int = 20) -> dict:
    q, s = truth.acc.shape
    outs = [outcome(truth, np.random.default_rng(k).integers(0, s, q)) for k in range(seeds)]
    return {k: float(np.mean([o[k] for o in outs])) for k in outs[0]}


def frontier(points: list[dict], cost: str) -> tuple[np.ndarray, np.ndarray]:
    """Upper envelope: for increasing cost, the best accuracy reachable at or below it."""
    pts = sorted(points, key=lambda p: (p[cost], -p["accuracy"]))
    xs, ys, best = [], [], -np.inf
    for p in pts:
        if p["accuracy"] > best:
            best = p["accuracy"]
            xs.append(p[cost])
            ys.append(best)
    return np.array(xs), np.array(ys)


def accuracy_at(points: list[dict], cost: str, budget: float) -> float:
    xs, ys = frontier(points, cost)
    ok = xs <= budget * (1 + 1e-9)
    return float(ys[ok].max()) if ok.any() else float("nan")


def normalized_area(static: list[dict], adaptive: list[dict], oracle: list[dict], cost: str = "tokens",
                    grid_points: int = 400) -> dict:
    """(area adaptive - static frontier) / (area oracle - static frontier) over the shared cost range.

    Costs on a log axis (strategies span orders of magnitude). 0 = no better than the best
    static configs, 1 = as good as the oracle; negative when adaptive falls below static."""
    if not (static and adaptive and oracle):
        return {"value": float("nan"), "range": [float("nan"), float("nan")], "reason": "an empty curve"}
    lo = max(frontier(c, cost)[0].min() for c in (static, adaptive, oracle))
    hi = min(max(p[cost] for p in c) for c in (static, adaptive, oracle))
    if not hi > lo:
        return {"value": float("nan"), "range": [float(lo), float(hi)]}
    xs = np.exp(np.linspace(np.log(lo), np.log(hi), grid_points))

    def curve(pts):
        return np.array([accuracy_at(pts, cost, x) for x in xs])

    s, a, o = curve(static), curve(adaptive), curve(oracle)
    denom = np.trapezoid(o - s, np.log(xs))
    value = float(np.trapezoid(a - s, np.log(xs)) / denom) if denom > 0 else float("nan")
    return {"value": value, "range": [float(lo), float(hi)]}


def log_grid(lo: float, hi: float, k: int) -> list[float]:
    return [0.0] + list(np.logspace(np.log10(lo), np.log10(hi), k))


def strategy_methods(table) -> list[str]:
    """The method of every strategy of a LabelTable, in grid order (from its `method` column)."""
    by_id = dict(zip(table.table["strategy_id"].to_pylist(), table.table["method"].to_pylist()))
    return [by_id[s] for s in table.strategy_ids]


def level_keys(difficulties) -> list:
    """Hashable difficulty keys; None (or NaN) for queries without a known level."""
    out = []
    for d in difficulties:
        out.append(None if d is None or (isinstance(d, float) and np.isnan(d)) else int(d))
    return out


@dataclass(frozen=True)
class LevelLookup:
    """The router with no learning: per difficulty level, the training split's mean soft label,
    tokens and latency of every strategy. A level never seen in training gets the overall means."""

    levels: tuple
    acc: np.ndarray  # [K, S]
    tokens: np.ndarray
    latency: np.ndarray
    overall: tuple[np.ndarray, np.ndarray, np.ndarray]  # [S] each

    @classmethod
    def fit(cls, difficulties, acc: np.ndarray, tokens: np.ndarray, latency: np.ndarray) -> "LevelLookup":
        keys = level_keys(difficulties)
        levels = tuple(sorted({k for k in keys if k is not None}))
        mask = {lv: np.array([k == lv for k in keys]) for lv in levels}

        def per_level(m):
            return np.array([np.nanmean(m[mask[lv]], axis=0) for lv in levels]).reshape(len(levels), m.shape[1])

        overall = tuple(np.nanmean(m, axis=0) for m in (acc, tokens, latency))
        return cls(levels, per_level(acc), per_level(tokens), per_level(latency), overall)

    def predict(self, difficulties) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[Q, S] accuracy, tokens and latency tables for queries of these levels."""
        index = {lv: i for i, lv in enumerate(self.levels)}
        rows = [index.get(k) for k in level_keys(difficulties)]
        out = []
        for table, fallback in zip((self.acc, self.tokens, self.latency), self.overall):
            out.append(np.array([table[r] if r is not None else fallback for r in rows]).reshape(len(rows), -1))
        return out[0], out[1], out[2]


def split_label_strategies(truth: Truth) -> np.ndarray | None:
    """Indices of strategies with both half labels on every query; None if the table has none."""
    if truth.acc_a is None or truth.acc_b is None:
        return None
    ok = np.isfinite(truth.acc_a).all(axis=0) & np.isfinite(truth.acc_b).all(axis=0)
    return np.flatnonzero(ok)


def split_oracle_sweep(truth: Truth, lambdas_t, lambdas_l, cols: np.ndarray,
                       in_sample: bool = False) -> list[dict]:
    """Oracle that chooses with one half label and is scored with the other (both ways, averaged).

    Costs are the cells' true means (the halves split the correctness samples, not the costs).
    in_sample=True scores each half with itself: the same chooser, scored on what it saw."""
    q = np.arange(truth.acc.shape[0])
    pts = []
    for lt in lambdas_t:
        for ll in lambdas_l:
            outs = []
            for choose, score in ((truth.acc_a, truth.acc_b), (truth.acc_b, truth.acc_a)):
                sel = select(choose[:, cols], truth.tokens[:, cols], truth.latency[:, cols],
                             lambda_tokens=lt, lambda_latency=ll)
                idx = cols[sel.index]
                scored = choose if in_sample else score
                outs.append({"accuracy": float(scored[q, idx].mean()), "tokens": float(truth.tokens[q, idx].mean()),
                             "latency": float(truth.latency[q, idx].mean())})
            pts.append({"lambda_tokens": float(lt), "lambda_latency": float(ll),
                        **{k: float(np.mean([o[k] for o in outs])) for k in outs[0]}})
    return pts


def tokens_to_match(curve: list[dict], static: list[dict], cost: str = "tokens") -> dict:
    """The least cost at which a policy's curve reaches the best static accuracy, over that config's cost.

    The target is the most accurate static config (the cheaper one on ties). ratio < 1: the
    policy matches it for less; NaN when the curve never reaches it."""
    if not static:
        return {"reached": False, "ratio": float("nan"), "reason": "no static configs"}
    target = max(static, key=lambda p: (p["accuracy"], -p[cost]))
    reached = [p for p in curve if p["accuracy"] >= target["accuracy"] - TOL]
    out = {"target_strategy": target["strategy"], "target_accuracy": target["accuracy"],
           f"target_{cost}": target[cost], "reached": bool(reached)}
    if not reached:
        return {**out, f"policy_{cost}": float("nan"), "ratio": float("nan")}
    best = min(reached, key=lambda p: p[cost])
    return {**out, f"policy_{cost}": best[cost], "policy_accuracy": best["accuracy"],
            "ratio": float(best[cost] / target[cost]) if target[cost] > 0 else float("nan")}


def mean_budget_selection(acc: np.ndarray, tokens: np.ndarray, latency: np.ndarray, budget: float,
                          cost: str = "latency", allowed: np.ndarray | None = None, steps: int = 48):
    """The choice with the least cost weight whose PREDICTED mean cost over the queries fits `budget`.

    A batch's budget is a mean, like a static config's cost: a query may go over it if others
    stay under. The chosen cost per query does not increase with its lambda, so the least
    fitting lambda (bisected on a log scale) is the most accurate choice that fits by prediction.
    Returns (Selection, lambda); the largest lambda tried when even that does not fit."""
    table = latency if cost == "latency" else tokens
    q = np.arange(acc.shape[0])
    key = "lambda_latency" if cost == "latency" else "lambda_tokens"

    def run(lam):
        sel = select(acc, tokens, latency, **{key: lam}, allowed=allowed)
        return sel, float(table[q, sel.index].mean())

    sel, mean = run(0.0)
    if mean <= budget * (1 + TOL):
        return sel, 0.0
    # Utilities are accuracy (<= 1) minus lambda * cost: past 1 / (smallest cost gap) nothing changes.
    lo, hi = -9.0, float(np.log10(1e3 / max(np.nanmin(table[table > 0]), 1e-12)))
    best = run(10.0 ** hi) + (10.0 ** hi,)
    for _ in range(steps):
        mid = (lo + hi) / 2
        sel, mean = run(10.0 ** mid)
        if mean <= budget * (1 + TOL):
            hi, best = mid, (sel, mean, 10.0 ** mid)
        else:
            lo = mid
    return best[0], best[2]


def under_budgets(truth: Truth, static: list[dict], policies: dict, cost: str = "latency",
                  allowed: dict | None = None) -> list[dict]:
    """At each static config's mean cost as a budget: every policy run with that budget
    against the best static config that fits, two ways: per query (each query keeps only the
    strategies predicted to fit, lambdas 0: a served request's SLO) and as a mean
    (`mean_budget_selection`: a batch's budget, the same kind of mean the static config has).

    policies: name -> (A, T, L) predicted [Q, S] tables. Each policy row also says whether its
    TRUE mean cost stayed within the budget (a policy can overrun on mispredicted costs).
    allowed: name -> [S] mask of what that policy may choose (default: everything)."""
    key = {"latency": "max_latency_s", "tokens": "max_tokens"}[cost]
    rows = []
    for p in sorted(static, key=lambda p: p[cost]):
        budget = p[cost]
        fits = [s for s in static if s[cost] <= budget * (1 + TOL)]
        best = max(fits, key=lambda s: (s["accuracy"], -s[cost]))
        row = {"budget": budget, "budget_of": p["strategy"], "static_fitting": len(fits),
               "best_static_within": best["strategy"], "best_static_accuracy": best["accuracy"]}
        for name, (a, t, lat) in policies.items():
            # The budget is a mean over queries: float slack so the config it came from fits itself.
            sel = select(a, t, lat, **{key: budget * (1 + TOL)}, allowed=(allowed or {}).get(name))
            o = outcome(truth, sel.index)
            msel, lam = mean_budget_selection(a, t, lat, budget, cost, (allowed or {}).get(name))
            mo = outcome(truth, msel.index)
            row[name] = {**o, "gain": o["accuracy"] - best["accuracy"],
                         "within_budget": bool(o[cost] <= budget * (1 + TOL)),
                         "predicted_fit_share": float(sel.feasible.mean()),
                         "mean_budget": {**mo, "gain": mo["accuracy"] - best["accuracy"], "lambda": lam,
                                         "within_budget": bool(mo[cost] <= budget * (1 + TOL))}}
        rows.append(row)
    return rows


def chosen_shares(index: np.ndarray, difficulties, ids: list[str]) -> dict:
    """{level: {strategy id: share of that level's queries}}, levels as strings (JSON keys)."""
    keys = level_keys(difficulties)
    out = {}
    for lv in sorted(set(keys), key=lambda k: (k is None, k)):
        picks = np.asarray(index)[np.array([k == lv for k in keys], dtype=bool)]
        counts = np.bincount(picks, minlength=len(ids))
        out[str(lv)] = {ids[j]: float(c / len(picks)) for j, c in enumerate(counts) if c}
    return out


FRONTIERS = ("paper", "all")  # the paper's four methods only; every static config of the grid
COSTS = ("tokens", "latency")


def evaluate(truth: Truth, ids: list[str], methods: list[str], difficulties, predicted: tuple,
             lambdas_t, lambdas_l, lookup: LevelLookup | None = None,
             shares_lambdas: tuple[float, float] = (0.0, 0.0), extra_policies: dict | None = None,
             allowed: np.ndarray | None = None) -> dict:
    """Every curve and comparison of the report, scored on `truth` (pure: arrays in, dict out).

    predicted: the adaptive router's (A, T, L) [Q, S] tables. lookup: the per-level baseline
    fitted on the training split (None: reported as unavailable). extra_policies: more
    name -> (A, T, L) curves (ablations), swept and plotted but not compared. allowed: [S]
    what the probe's policies (adaptive, probe_with_oracle_costs) may choose, as the router does."""
    static = static_points(truth, ids)
    for p, m in zip(static, methods):
        p["method"] = m
    subsets = {"paper": [p for p in static if is_paper_method(p["method"])], "all": static}
    policies = {"adaptive": predicted, "oracle": (truth.acc, truth.tokens, truth.latency)}
    if lookup is not None:
        policies["lookup"] = lookup.predict(difficulties)
    policies.update(extra_policies or {})
    probe_driven = {"adaptive", "probe_with_oracle_costs"}
    masks = {n: allowed for n in policies if n in probe_driven and allowed is not None}
    curves = {name: {"tokens": sweep(truth, *tab, lambdas_t, [0.0], masks.get(name)),
                     "latency": sweep(truth, *tab, [0.0], lambdas_l, masks.get(name))}
              for name, tab in policies.items()}
    cols = split_label_strategies(truth)
    split = {"available": cols is not None and len(cols) > 0}
    if split["available"]:
        split["strategies_without_split_labels"] = [ids[j] for j in range(len(ids)) if j not in set(cols.tolist())]
        for name, ins in (("split_oracle", False), ("split_oracle_in_sample", True)):
            curves[name] = {"tokens": split_oracle_sweep(truth, lambdas_t, [0.0], cols, ins),
                            "latency": split_oracle_sweep(truth, [0.0], lambdas_l, cols, ins)}
        best = {n: max(curves[n]["tokens"], key=lambda p: p["accuracy"])
                for n in ("oracle", "split_oracle", "split_oracle_in_sample")}
        split.update({"best_" + n: b for n, b in best.items()},
                     optimism_full_minus_split=best["oracle"]["accuracy"] - best["split_oracle"]["accuracy"],
                     optimism_in_sample_minus_split=(best["split_oracle_in_sample"]["accuracy"]
                                                     - best["split_oracle"]["accuracy"]))
    else:
        split["reason"] = ("the label table has no soft_label_a / soft_label_b columns" if cols is None
                           else "no strategy has both half labels on every query")
    compared = [n for n in ("adaptive", "lookup", "split_oracle") if n in curves]
    areas = {f: {n: {c: normalized_area(subsets[f], curves[n][c], curves["oracle"][c], c) for c in COSTS}
                 for n in compared} for f in FRONTIERS}
    learned_minus_lookup = ({f: {c: areas[f]["adaptive"][c]["value"] - areas[f]["lookup"][c]["value"] for c in COSTS}
                             for f in FRONTIERS} if "lookup" in curves else None)
    to_match = {f: {n: tokens_to_match(curves[n]["tokens"], subsets[f]) for n in compared + ["oracle"]}
                for f in FRONTIERS}
    matched = []
    for p in static:
        row = {"strategy": p["strategy"], "static_accuracy": p["accuracy"], "tokens": p["tokens"]}
        for n in compared:
            row[f"{n}_accuracy"] = accuracy_at(curves[n]["tokens"], "tokens", p["tokens"])
        row["gain"] = row["adaptive_accuracy"] - p["accuracy"]
        matched.append(row)
    budget_policies = {n: policies[n] for n in ("adaptive", "lookup") if n in policies}
    budgets = under_budgets(truth, static, budget_policies, "latency", masks)
    lt, ll = shares_lambdas
    shares = {"lambda_tokens": lt, "lambda_latency": ll}
    for n in ("adaptive", "lookup", "oracle"):
        if n in policies:
            idx = select(*policies[n], lambda_tokens=lt, lambda_latency=ll, allowed=masks.get(n)).index
            shares[n] = {"outcome": outcome(truth, idx), "by_difficulty": chosen_shares(idx, difficulties, ids)}
    return {
        "static": static, "frontier_sets": {f: [p["strategy"] for p in subsets[f]] for f in FRONTIERS},
        "best_static": max(static, key=lambda p: p["accuracy"]),
        "best_static_paper": max(subsets["paper"], key=lambda p: p["accuracy"]) if subsets["paper"] else None,
        "random": random_point(truth),
        "adaptive_at_static_tokens": matched,
        "static_configs_matched_or_beaten": sum(1 for m in matched if m["gain"] >= -TOL),
        "normalized_area_tokens": areas["all"]["adaptive"]["tokens"],
        "normalized_area_latency": areas["all"]["adaptive"]["latency"],
        "normalized_area_tokens_paper": areas["paper"]["adaptive"]["tokens"],
        "normalized_area_latency_paper": areas["paper"]["adaptive"]["latency"],
        "areas": areas, "learned_minus_lookup_area": learned_minus_lookup,
        "lookup_router": {"available": lookup is not None,
                          **({"levels": list(lookup.levels)} if lookup is not None else
                             {"reason": "no training label table given (train_labels)"})},
        "split_oracle": split, "tokens_to_match": to_match, "latency_budgets": budgets,
        "latency_budgets_adaptive_at_least_best_static": sum(1 for b in budgets if b["adaptive"]["gain"] >= -TOL),
        # A mean budget lets single queries overrun, so it counts only where the TRUE mean fits.
        "latency_mean_budgets_adaptive_at_least_best_static": sum(
            1 for b in budgets if b["adaptive"]["mean_budget"]["gain"] >= -TOL
            and b["adaptive"]["mean_budget"]["within_budget"]),
        "chosen_shares": shares,
        "oracle_best": max(curves["oracle"]["tokens"], key=lambda p: p["accuracy"]),
        "curves": curves,
    }
