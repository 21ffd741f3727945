"""`latte demo | world | bench`: hand the rest of the line to a job or benchmark module."""

from __future__ import annotations


def cmd_demo(rest: list[str]) -> int:
    from jobs import demo

    demo.main(rest)
    return 0


def cmd_world(rest: list[str]) -> int:
    from jobs import world

    world.main(rest)
    return 0


def cmd_bench(rest: list[str]) -> int:
    import importlib

    if not rest or rest[0].startswith("-"):
        raise ValueError("usage: latte bench NAME [args]  (NAME: world_quality, beam_batching, ...)")
    mod = importlib.import_module(f"benchmarks.{rest[0]}")
    mod.main(rest[1:])
    return 0
