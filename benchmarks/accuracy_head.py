"""Accuracy heads over the probe, compared on validation, the chosen one reported on test.

    python -m benchmarks.accuracy_head --json [--artifact runs/demo/probe] [--labels runs/demo/labels]

The MLP predicts every (query, strategy) cell on its own, so per query the argmax over
strategies picks whichever cells its noise lifts most (a winner's curse): the per-level
lookup router, which averages, beats it. A difficulty head keeps one number per query
from the probe, theta = its mean logit over the grid, and fits each strategy's response
curve sigmoid(a_s * theta + b_s) on labeled queries (item response theory's 2PL, with
the probe as the difficulty scale); `mix` blends it with the MLP's own logits.
Fit on: `val_half` (the probe's calibration half of validation), or `train` (in-sample
thetas). Each variant also runs `_pruned`: strategies the training split shows dominated
are never chosen (probe.selection.dominated). Every variant is scored by the router's
normalized area on the validation half the probe did not calibrate on; the best (tokens +
latency area) and the plain MLP are then reported on test.
`shrinkW` pulls the MLP's probabilities towards each strategy's training mean (weight W kept
on the MLP).
Measured (session 5, default demo artifact): the MLP with exclusions won on validation,
what `jobs.train_probe` now does by default (`exclude_dominated`). Session 11: no `shrinkW`
variant beat the 5-seed ensemble with exclusions on validation (README demo card).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ttc.paths import CPU_RECIPE


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", default="runs/demo/probe")
    ap.add_argument("--labels", default="runs/demo/labels")
    ap.add_argument("--recipe", default=CPU_RECIPE)
    ap.add_argument("--mixes", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--shrinks", type=float, nargs="*", default=[0.25, 0.5, 0.75],
                    help="also score the MLP's probabilities shrunk this far towards each strategy's "
                         "training mean (weight kept on the MLP)")
    ap.add_argument("--ensembles", type=int, nargs="*", default=[5],
                    help="also score ensembles of this many probes (the artifact's seed + retrained seeds)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    from benchmarks import LogsToStderr

    with LogsToStderr():
        out = run(a)
    print(json.dumps(out, indent=1))


def run(a) -> dict:
    from probe.artifact import load_artifact
    from probe.calibration import Platt, auc
    from probe.evaluation import LevelLookup, Truth, evaluate, log_grid, strategy_methods
    from probe.features import get_featurizer
    from probe.mlp import TrainConfig, pair_features, train_probe
    from probe.selection import dominated as dominated_on
    from probe.training import embed_table, validation_halves
    from ttc.label_table import LabelTable
    from ttc.recipe import load_recipe

    art = load_artifact(a.artifact)
    recipe = load_recipe(a.recipe)
    feat = get_featurizer(art.featurizer, recipe.policy.resolved_model(), recipe.format())
    tables = {s: LabelTable.read(f"{a.labels}/labels_{s}.parquet") for s in ("train", "val", "test")}
    sf = art.strategy_features()
    logits, costs, qfs = {}, {}, {}
    for s, t in tables.items():
        qf = qfs[s] = embed_table(feat, t)
        logits[s] = art.probe.logits(pair_features(art.reducer(qf), sf)).reshape(len(t.query_ids), -1)
        costs[s] = art.predict_costs(qf)
        print(f"[accuracy_head] {s}: {len(t.query_ids)} queries embedded", file=sys.stderr, flush=True)
    y = {s: t.matrix("soft_label") for s, t in tables.items()}
    stop, cal = validation_halves(tables["val"])  # as probe.training cuts validation

    def theta(L):
        return L.mean(axis=1)

    def fit_heads(L, Y):
        th = theta(L)
        return [Platt.fit(th, Y[:, j]) for j in range(Y.shape[1])]

    def head_probs(heads, L, mix):
        th = theta(L)
        z = np.stack([h.a * th + h.b for h in heads], axis=1)
        z_mlp = art.platt.a * L + art.platt.b
        return 1 / (1 + np.exp(-((1 - mix) * z + mix * z_mlp)))

    diffs = tables["train"].difficulties()
    lookup = LevelLookup.fit([diffs[q] for q in tables["train"].query_ids], y["train"],
                             tables["train"].matrix("mean_tokens"), tables["train"].matrix("mean_latency_s"))
    lt, ll = log_grid(1e-6, 1e-1, 25), log_grid(1e-4, 10.0, 25)

    def score(split, acc, rows=None):
        t = tables[split]
        truth = Truth.from_table(t)
        if rows is None:
            rows = slice(None)
        else:
            truth = Truth(truth.acc[rows], truth.tokens[rows], truth.latency[rows],
                          None if truth.acc_a is None else truth.acc_a[rows],
                          None if truth.acc_b is None else truth.acc_b[rows])
        d = t.difficulties()
        qd = list(np.asarray([d[q] for q in t.query_ids], dtype=object)[rows])
        tok, lat = costs[split][0][rows], costs[split][1][rows]
        ev = evaluate(truth, art.grid.ids, strategy_methods(t), qd, (acc[rows], tok, lat), lt, ll, lookup=lookup)
        ar = ev["areas"]
        return {"tokens_all": ar["all"]["adaptive"]["tokens"]["value"],
                "latency_all": ar["all"]["adaptive"]["latency"]["value"],
                "tokens_paper": ar["paper"]["adaptive"]["tokens"]["value"],
                "latency_paper": ar["paper"]["adaptive"]["latency"]["value"],
                "lookup_tokens_all": ar["all"]["lookup"]["tokens"]["value"],
                "lookup_latency_all": ar["all"]["lookup"]["latency"]["value"],
                "tokens_to_match_paper": ev["tokens_to_match"]["paper"]["adaptive"],
                "matched": ev["static_configs_matched_or_beaten"]}

    variants = {"mlp_platt": lambda s: art.platt(logits[s])}
    # Ensembles: the artifact's MLP plus MLPs trained the same way with other seeds (same
    # reduced features, same early-stopping half); mean logits, Platt refitted on the
    # calibration half. Averaging shrinks each cell's noise, the source of the winner's curse.
    if a.ensembles:
        members = {s: [logits[s]] for s in tables}
        x = {s: pair_features(art.reducer(qfs[s]), sf) for s in tables}
        nq_val = len(tables["val"].query_ids)
        xv_stop = x["val"].reshape(nq_val, len(sf), -1)[stop].reshape(-1, x["val"].shape[1])
        from jobs.train_probe import TrainProbeConfig

        job = TrainProbeConfig.model_fields  # the job's training settings, not this script's own
        for seed in range(1, max(a.ensembles)):
            tc = TrainConfig(lr=job["lr"].default, batch_size=job["batch_size"].default,
                             max_epochs=job["max_epochs"].default, patience=job["patience"].default, seed=seed)
            m = train_probe(x["train"], y["train"].ravel(), xv_stop, y["val"][stop].ravel(), tc)
            for s in tables:
                members[s].append(m.logits(x[s]).reshape(len(tables[s].query_ids), -1))
            print(f"[accuracy_head] ensemble member seed {seed} trained", file=sys.stderr, flush=True)
        for k in a.ensembles:
            mean = {s: np.mean(members[s][:k], axis=0) for s in tables}
            pl = Platt.fit(mean["val"][cal].ravel(), y["val"][cal].ravel())
            variants[f"ensemble{k}"] = (lambda s, mean=mean, pl=pl: pl(mean[s]))
    # Per-strategy Platt on the calibration half: one global Platt leaves each strategy's own
    # bias, and at small lambdas a strategy the probe over-rates wins most queries' argmax.
    per_strategy = [Platt.fit(logits["val"][cal][:, j], y["val"][cal][:, j]) for j in range(len(sf))]
    variants["platt_per_strategy"] = lambda s: np.stack([p(logits[s][:, j]) for j, p in enumerate(per_strategy)], 1)
    # Shrinkage: at small lambdas the argmax over a query's cells picks the strategy its noise
    # lifts most; pulling every cell towards its strategy's training mean keeps the per-query
    # signal's ranking where it is strong and the static ranking where it is not.
    train_mean = y["train"].mean(axis=0)
    for w in a.shrinks:
        variants[f"shrink{w:g}"] = (lambda s, w=w: w * art.platt(logits[s]) + (1 - w) * train_mean[None, :])
    heads = {"val_half": fit_heads(logits["val"][cal], y["val"][cal]),
             "train": fit_heads(logits["train"], y["train"])}
    for src, hs in heads.items():
        for m in a.mixes:
            variants[f"difficulty_{src}_mix{m:g}"] = (lambda s, hs=hs, m=m: head_probs(hs, logits[s], m))
    # Exclusion: strategies the training split shows dominated (another is as accurate and no
    # dearer in tokens and latency) are never chosen, however a query's noisy cells rank them.
    dominated = dominated_on(y["train"].mean(0), tables["train"].matrix("mean_tokens").mean(0),
                             tables["train"].matrix("mean_latency_s").mean(0))
    print(f"[accuracy_head] dominated on train: {[art.grid.ids[j] for j in np.flatnonzero(dominated)]}",
          file=sys.stderr, flush=True)

    def pruned(f):
        def g(s):
            p = f(s).copy()
            p[:, dominated] = -1.0  # below any utility a kept strategy can have
            return p
        return g

    for name in list(variants):
        variants[name + "_pruned"] = pruned(variants[name])
    res = {}
    for name, f in variants.items():
        acc_val = f("val")
        res[name] = {"val_choose_half": score("val", acc_val, stop)}
        if not name.endswith("_pruned"):  # exclusion changes choices, not the probe's probabilities
            res[name]["val_auc_choose_half"] = auc(acc_val[stop].ravel(), y["val"][stop].ravel())
        print(f"[accuracy_head] {name}: {res[name]['val_choose_half']}", file=sys.stderr, flush=True)
    best = max(res, key=lambda n: res[n]["val_choose_half"]["tokens_all"] + res[n]["val_choose_half"]["latency_all"])
    for name in {best, "mlp_platt"}:
        res[name]["test"] = score("test", variants[name]("test"))
        base = variants[name.removesuffix("_pruned")]
        res[name]["test_auc"] = auc(base("test").ravel(), y["test"].ravel())
    return {"chosen_on_validation": best, "by_variant": res}


if __name__ == "__main__":
    main()
