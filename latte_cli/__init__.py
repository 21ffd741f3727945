"""`latte` command line: one entry point for the jobs, benchmarks, serving and the local cluster.

One module per command group: `solve`, `jobs` (demo / world / bench), `serve`, `cluster`."""

from __future__ import annotations

import argparse
import sys

from latte_cli.jobs import cmd_bench, cmd_demo, cmd_world
from latte_cli.serve import cmd_serve
from latte_cli.solve import cmd_solve
from ttc.paths import CPU_RECIPE


def cmd_cluster(rest: list[str]) -> int:
    from latte_cli import cluster

    return cluster.main(rest)


# Sub-commands that own their flags: the rest of the line goes to them untouched.
PASSTHROUGH = {"demo": cmd_demo, "world": cmd_world, "bench": cmd_bench, "serve": cmd_serve,
               "cluster": cmd_cluster}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="latte", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    # Listed for --help; their own parsers take their flags (see PASSTHROUGH).
    sub.add_parser("demo", help="label, train the probe and evaluate on the CPU world (local Ray)")
    sub.add_parser("world", help="train the tiny policy and PRM (jobs.world)")
    sub.add_parser("bench", help="run benchmarks.NAME")
    sub.add_parser("serve", help="serve the router over HTTP (cluster/serve/cpu_world.yaml)")
    sub.add_parser("cluster", help="up-local / status-local / down-local: a one-machine Ray cluster for `ray job submit`")

    for name, help_ in (("solve", "solve generated problems or a query file with each strategy"),):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--per-level", type=int, default=2)
        p.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8])
        p.add_argument("--recipe", default=CPU_RECIPE,
                       help="models, prompt format, grid and sampling (cluster/recipes/)")
        p.add_argument("--queries", help="query file (.jsonl/.json/.parquet) instead of generated problems")
        p.add_argument("--limit", type=int, help="use the first N queries of --queries")
        p.add_argument("--strategy", action="append", help="strategy id (repeatable); default: whole grid")
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--json", action="store_true")
        p.add_argument("-v", "--verbose", action="store_true")
        p.set_defaults(func=cmd_solve)

    return ap


def main(argv=None) -> int:
    from ttc.runtime import configure_inprocess_vllm

    configure_inprocess_vllm()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        # Sub-commands that own their flags get the rest of the line untouched.
        if argv and argv[0] in PASSTHROUGH:
            return PASSTHROUGH[argv[0]](argv[1:])
        args = build_parser().parse_args(argv)
        return args.func(args)
    except (ValueError, KeyError) as exc:  # bad input from the user: one clear line, no traceback
        print(f"latte: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2

