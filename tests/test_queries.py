import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ttc.arithmetic import generate_problems
from ttc.grading import answers_match, normalize_answer
from ttc.queries import Query, gsm8k_test_path, load_queries, write_queries


def test_gsm8k_shipped_test_set_loads_and_normalizes():
    qs = load_queries(gsm8k_test_path())
    assert len(qs) == 1319
    assert qs[0].answer == "18" and "Janet" in qs[0].question
    norm = [normalize_answer(q.answer) for q in qs]
    # Every GSM8K answer is a number: all must normalize to an integer or fraction.
    assert all(n is not None and n.lstrip("-").replace("/", "").isdigit() for n in norm), \
        [q.answer for q, n in zip(qs, norm) if not (n or "").lstrip("-").replace("/", "").isdigit()][:5]
    commas = [q for q in qs if "," in q.answer]
    assert commas, "the test set has answers with thousands separators"
    for q in commas:
        assert answers_match(q.answer, q.answer.replace(",", ""))
    assert len({q.query_id for q in qs}) == 1319


def test_roundtrip_parquet_and_jsonl(tmp_path):
    qs = [p.to_query() for p in generate_problems(2, seed=5)]
    for name in ("q.parquet", "q.jsonl"):
        assert load_queries(write_queries(qs, tmp_path / name)) == qs


def test_bad_files_are_refused_with_reason(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_queries(empty)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"question": "1 + 1"}) + "\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['answer'\]"):
        load_queries(missing)
    extra = tmp_path / "extra.parquet"
    pq.write_table(pa.table({"question": ["1 + 1"], "answer": ["2"], "qestion_typo": ["x"]}), extra)
    with pytest.raises(ValueError, match="unexpected column"):
        load_queries(extra)
    assert load_queries(extra, strict=False)[0].answer == "2"
    blank = tmp_path / "blank.jsonl"
    blank.write_text(json.dumps({"question": "  ", "answer": "2"}) + "\n")
    with pytest.raises(ValueError, match="empty question"):
        load_queries(blank)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "1 + 1", "answer": "2"}\n{oops\n')
    with pytest.raises(ValueError, match="broken.jsonl:2"):
        load_queries(broken)
    with pytest.raises(ValueError, match="does not exist"):
        load_queries(tmp_path / "nope.jsonl")


def test_shipped_dataset_by_name():
    qs = load_queries("gsm8k:test", limit=5)
    assert len(qs) == 5 and all(q.answer for q in qs)

