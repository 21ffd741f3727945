"""The same evaluation on a query set whose distribution differs from training.

The shift is an operator mix of the CPU world (`ttc.arithmetic.OP_MIXES`, default
`mul_heavy`: more multiplications per problem, same levels, same models). The demo
generates it with `shifted_queries` (ids start with `shift-`), labels it like the
splits, cuts its rows out of a merged table with `shift_table` when it was labeled
together with them, and reports it with `evaluate_shift`: the probe, cost table and
lookup router all come from the unshifted training split.
"""

from __future__ import annotations

from pathlib import Path

from ttc.paths import CPU_RECIPE

SHIFT_SEED = 404  # disjoint from jobs.demo.SPLIT_SEEDS
SHIFT_PREFIX = "shift"
DEFAULT_MIX = "mul_heavy"


def shifted_queries(per_level: int, seed: int = 0, mix: str = DEFAULT_MIX) -> list:
    from ttc.arithmetic import generate_problems

    return [p.to_query() for p in generate_problems(per_level, seed=SHIFT_SEED + seed, prefix=SHIFT_PREFIX, mix=mix)]


def describe(mix: str = DEFAULT_MIX) -> str:
    from ttc.arithmetic import op_mix

    weights = ", ".join(f"'{op}' {w:g}" for op, w in op_mix(mix).items())
    return f"shifted set {mix} (operator weights {weights}; training used uniform operators)"


def shift_table(table_path: str | Path, out_path: str | Path) -> Path:
    """The `shift-` rows of a merged label table, with its metadata (grid hash etc.) kept."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(table_path)
    part = table.filter(pc.starts_with(table["query_id"], f"{SHIFT_PREFIX}-"))
    if part.num_rows == 0:
        raise ValueError(f"{table_path} has no rows of the shifted set (query ids starting with {SHIFT_PREFIX}-)")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(part, out_path)
    return out_path


def evaluate_shift(labels: str | Path, artifact: str | Path, out_dir: str | Path, train_labels: str | Path | None,
                   recipe: str = CPU_RECIPE, mix: str = DEFAULT_MIX, **evaluate_kw) -> dict:
    """The full evaluation report on the shifted set's label table, named as the shift."""
    from jobs import evaluate

    return evaluate.run(evaluate.EvaluateConfig(
        test_labels=str(labels), artifact=str(artifact), out_dir=str(out_dir), recipe=recipe,
        train_labels=str(train_labels) if train_labels else None, query_set=describe(mix), **evaluate_kw))
