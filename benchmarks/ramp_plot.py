"""Plot a serve_load ramp: p95 against the SLO, accuracy, and where the CPU went.

    python -m benchmarks.ramp_plot --ramp serve_load.json --out DIR     # writes DIR/ramp.png

Three panels over the load multiple: each router's p95 (the SLO as a line), each router's
accuracy over every request sent (a shed one counts as wrong) with the 90%-of-0.5x bar for
router (a), and router (a)'s CPU by component (benchmarks/cpu_share.py) as stacked bars.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = {"a_load_aware": "(a) load-aware", "b_load_awareness_off": "(b) awareness off",
          "c_best_static": "(c) best static"}
CPU_PARTS = (("engines", ("policy_engine", "prm_engine")), ("pool front ends", ("policy_pool", "prm_pool")),
             ("router", ("router",)), ("proxy", ("proxy",)), ("load client", ("client",)),
             ("Ray and Serve control", ("serve_controller", "ray_other")))


def plot(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ramp, slo = result["ramp"], result.get("slo_p95_s")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, rows in ramp.items():
        x = [r["load_multiple"] for r in rows]
        axes[0].plot(x, [r["p95_s"] for r in rows], marker="o", label=LABELS.get(name, name))
        axes[1].plot(x, [r["accuracy"] for r in rows], marker="o", label=LABELS.get(name, name))
    if slo:
        axes[0].axhline(slo, color="k", ls="--", lw=1, label=f"SLO p95 {slo:g} s")
    a = {r["load_multiple"]: r for r in ramp.get("a_load_aware", [])}
    if 0.5 in a and a[0.5].get("accuracy"):
        axes[1].axhline(0.9 * a[0.5]["accuracy"], color="k", ls="--", lw=1, label="bar: 0.9 x (a) at 0.5x")
    bound = result.get("accuracy_bound_at_2x") or {}
    bounds = {"tokens": (bound.get("all") or {}).get("ratio_bound"),
              "CPU": ((bound.get("cpu") or {}).get("all") or {}).get("ratio_bound")}
    for key, rb in bounds.items():
        if rb and 0.5 in a and a[0.5].get("accuracy"):
            axes[1].plot([2.0], [rb * a[0.5]["accuracy"]], marker="_", ms=22, mew=2, ls="none",
                         color="gray" if key == "tokens" else "firebrick", label=f"2x bound ({key}): {rb:.2f}x")
    for ax, title in ((axes[0], "p95 latency of answered requests (s)"),
                      (axes[1], "accuracy over every request sent")):
        ax.set_xscale("log", base=2)
        levels = sorted({r["load_multiple"] for rows in ramp.values() for r in rows})
        ax.set_xticks(levels, [f"{m:g}x" for m in levels])
        ax.set_xlabel("load (x the rate the plain router sustains)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    rows = [r for r in ramp.get("a_load_aware", []) if r.get("cpu")]
    if rows:
        xs = [f"{r['load_multiple']:g}x" for r in rows]
        bottom = [0.0] * len(rows)
        for label, parts in CPU_PARTS:
            h = [sum(r["cpu"]["cores"].get(p, 0.0) for p in parts) for r in rows]
            axes[2].bar(xs, h, bottom=bottom, label=label)
            bottom = [b + v for b, v in zip(bottom, h)]
        if result.get("cpu_count"):
            axes[2].axhline(result["cpu_count"], color="k", ls="--", lw=1, label=f"{result['cpu_count']} cores")
        for i, r in enumerate(rows):
            axes[2].text(i, bottom[i] + 0.03, f"{r['cpu']['cpu_ms_per_request']:.0f} ms/req", ha="center", fontsize=7)
        axes[2].set_title("router (a): CPU cores by component")
        axes[2].legend(fontsize=7, loc="upper left")
    else:
        axes[2].set_axis_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ramp", required=True, help="a JSON that benchmarks.serve_load printed")
    ap.add_argument("--out", default=".", help="directory for ramp.png")
    args = ap.parse_args(argv)
    result = json.loads(Path(args.ramp).read_text())
    if "ramp" not in result:
        ap.error(f"{args.ramp} is not a serve_load result (no 'ramp')")
    print(plot(result, Path(args.out) / "ramp.png"))


if __name__ == "__main__":
    main()
