"""The `latte` command: the README's main job path and its refusals."""

import json
import re
import subprocess
import sys

from latte_cli import main
from ttc.paths import REPO_ROOT


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "latte_cli", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_unknown_strategy_is_refused_before_engines_start():
    r = run_cli("solve", "--strategy", "beam_search/n=8/m=3/it=10")
    assert r.returncode == 2
    assert "beam width 3 must divide n=8" in r.stderr
    r = run_cli("solve", "--strategy", "majority/n=64")
    assert r.returncode == 2 and "'majority/n=64' is not in grid 'cpu'" in r.stderr


def test_bad_query_file_is_refused(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"question": "1 + 2"}) + "\n")
    r = run_cli("solve", "--queries", str(f))
    assert r.returncode == 2 and "lacks column(s) ['answer']" in r.stderr


def test_solve_prints_accuracy_tokens_latency(capsys):
    assert main(["solve", "--per-level", "2", "--levels", "1", "2", "--json",
                 "--strategy", "majority/n=1", "--strategy", "weighted_best_of_n/n=4"]) == 0
    out = capsys.readouterr().out
    rows = json.loads(out[re.search(r"^\[$", out, re.M).start():])
    assert [r["strategy"] for r in rows] == ["majority/n=1", "weighted_best_of_n/n=4"]
    for r in rows:
        assert len(r["answers"]) == 4 and r["tokens_per_query"] > 0 and r["batch_latency_s"] > 0
    # Level-1 and -2 problems are easy for the trained policy.
    assert rows[1]["accuracy"] >= 0.5
