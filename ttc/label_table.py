"""The label table on disk: resumable shards, the merged Parquet table, and reading it back.

Layout of a label folder::

    manifest.json            what these labels are (grid hash, seed, models, queries)
    shards/shard-00000.parquet  one file per finished shard, written atomically
    labels.parquet           the merged table, one row per (query, strategy)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ttc.grid import StrategyGrid
from ttc.labeling import LABEL_COLUMNS

# Keys whose change makes old shards belong to a different labeling.
IDENTITY_KEYS = ("grid_hash", "seed", "resamples", "recipe", "policy_model", "prm_model",
                 "queries_sha", "temperature", "labeling_mode", "beam_runs", "calibration_sha")


def shard_queries(queries: list, size: int) -> list[tuple[str, list]]:
    return [(f"shard-{i // size:05d}", queries[i:i + size]) for i in range(0, len(queries), size)]


def _write_atomic(table, path: Path) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)  # readers see the whole file or none of it


def _with_meta(rows: list[dict], meta: dict):
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    return table.replace_schema_metadata({k: str(v) for k, v in meta.items()})


class LabelStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.shard_dir = self.root / "shards"

    @property
    def table_path(self) -> Path:
        return self.root / "labels.parquet"

    def check_or_write_manifest(self, meta: dict) -> None:
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        path = self.root / "manifest.json"
        if path.exists():
            old = json.loads(path.read_text())
            diff = [k for k in IDENTITY_KEYS if str(old.get(k)) != str(meta.get(k))]
            if diff:
                raise ValueError(
                    f"{self.root} holds labels of a different run ({', '.join(diff)} differ: "
                    + "; ".join(f"{k}: {old.get(k)} -> {meta.get(k)}" for k in diff)
                    + "); use a new out_dir or delete the old one")
        else:
            path.write_text(json.dumps(meta, indent=2))

    def finished_shards(self) -> set[str]:
        if not self.shard_dir.exists():
            return set()
        return {p.stem for p in self.shard_dir.glob("shard-*.parquet")}

    def write_shard(self, shard_id: str, rows: list[dict], meta: dict) -> Path:
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        path = self.shard_dir / f"{shard_id}.parquet"
        _write_atomic(_with_meta(rows, meta), path)
        return path

    def merge(self, shard_ids: list[str], meta: dict, expected_rows: int) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        missing = [s for s in shard_ids if not (self.shard_dir / f"{s}.parquet").exists()]
        if missing:
            raise RuntimeError(f"labeling incomplete: shards {missing[:5]} are missing")
        from ttc.latency_model import fill_latency

        tables = [pq.read_table(self.shard_dir / f"{s}.parquet") for s in shard_ids]
        pool = sum(int(t.schema.metadata.get(b"pool_tokens", b"0")) for t in tables)
        separate = sum(float(t.schema.metadata.get(b"separate_sampling_tokens", b"0")) for t in tables)
        points = [p for t in tables for p in json.loads(t.schema.metadata.get(b"latency_points", b"[]"))]
        table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables])
        keys = list(zip(table["query_id"].to_pylist(), table["strategy_id"].to_pylist()))
        if len(set(keys)) != len(keys):
            raise RuntimeError("label shards overlap: duplicated (query, strategy) rows")
        if len(keys) != expected_rows:
            raise RuntimeError(f"label table has {len(keys)} rows, expected {expected_rows}")
        rows, latency_report = fill_latency(table.to_pylist(), points)
        full_meta = {**meta, "pool_tokens": pool, "separate_sampling_tokens": separate,
                     "latency_model": json.dumps(latency_report)}
        _write_atomic(pa.Table.from_pylist(rows, schema=table.schema).replace_schema_metadata(
            {k: str(v) for k, v in full_meta.items()}), self.table_path)
        return self.table_path

    def summary(self) -> dict:
        t = LabelTable.read(self.table_path)
        pool = float(t.meta.get("pool_tokens", 0))
        separate = float(t.meta.get("separate_sampling_tokens", 0))
        latency = json.loads(t.meta.get("latency_model", "{}"))
        return {"rows": t.n_rows, "queries": len(t.query_ids), "strategies": len(t.strategy_ids),
                "labeling_mode": t.meta.get("labeling_mode"),
                "latency_model_error": latency.get("error_on_held_out_calibration_queries"),
                "pool_tokens": pool, "separate_sampling_tokens": separate,
                "token_saving_ratio": separate / pool if pool else None,
                "mean_soft_label": float(np.mean(t.column("soft_label")))}


class LabelTable:
    """A merged label table as dense [queries x strategies] arrays."""

    def __init__(self, table, meta: dict):
        self.table = table
        self.meta = meta
        self.n_rows = table.num_rows
        self.query_ids = list(dict.fromkeys(table["query_id"].to_pylist()))
        self.strategy_ids = list(json.loads(meta["grid_ids"])) if "grid_ids" in meta else \
            list(dict.fromkeys(table["strategy_id"].to_pylist()))

    @classmethod
    def read(cls, path: str | Path, expected_grid: StrategyGrid | None = None) -> "LabelTable":
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise ValueError(f"label table {path} does not exist")
        table = pq.read_table(path)
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        missing = [c for c in LABEL_COLUMNS if c not in table.column_names]
        if missing:
            raise ValueError(f"{path} is not a label table: columns {missing} are missing")
        if expected_grid is not None and meta.get("grid_hash") != expected_grid.hash:
            raise ValueError(f"label table {path} was made for grid {meta.get('grid_name')!r} "
                             f"(hash {meta.get('grid_hash')}), not grid {expected_grid.name!r} "
                             f"(hash {expected_grid.hash})")
        return cls(table, meta)

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.table[name].to_pylist())

    def matrix(self, name: str, query_ids: list[str] | None = None) -> np.ndarray:
        """[queries x strategies] of a numeric column, in grid order."""
        qids = query_ids or self.query_ids
        qi = {q: i for i, q in enumerate(qids)}
        si = {s: j for j, s in enumerate(self.strategy_ids)}
        out = np.full((len(qids), len(self.strategy_ids)), np.nan)
        for q, s, v in zip(self.table["query_id"].to_pylist(), self.table["strategy_id"].to_pylist(),
                           self.table[name].to_pylist()):
            if q in qi:
                out[qi[q], si[s]] = v
        return out

    def questions(self) -> dict[str, str]:
        return dict(zip(self.table["query_id"].to_pylist(), self.table["question"].to_pylist()))

    def difficulties(self) -> dict[str, int | None]:
        return dict(zip(self.table["query_id"].to_pylist(), self.table["difficulty"].to_pylist()))
