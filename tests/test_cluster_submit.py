"""`ray job submit` end to end: a separate local head (latte_cli/cluster.py), the repo's runtime env
and a real two-query labeling job (vLLM engines in a Ray Data actor) that must succeed.

Does not use the session's in-process Ray (`ray_session`): the Jobs API needs a head with
the dashboard, on its own ports and temp dir. Skip with `-m "not cluster"`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import yaml

from latte_cli import cluster as local

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(400)]

REPO = Path(__file__).resolve().parents[1]
STRATEGIES = ["majority/n=1", "best_of_n/n=2"]  # one of each engine: policy alone, policy + PRM


@pytest.fixture(scope="module")
def local_cluster():
    temp_dir = tempfile.mkdtemp(prefix="latte-ray-", dir="/tmp")  # short: unix socket paths
    port, dash = 6390, 8275
    if not all(local._port_free(p) for p in (port, dash)):
        port, dash = local.free_port(), local.free_port()
    info = local.up(num_cpus=1, port=port, dashboard_port=dash, temp_dir=temp_dir, timeout=150,
                    client_port=local.free_port(), agent_port=local.free_port())
    try:
        yield info
    finally:
        local.down(temp_dir)
        left = [(pid, st) for pid, st in local._group_members(info["pgid"]) if st != "Z"]
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"processes of the local cluster (group {info['pgid']}) survived down-local: {left}"


def test_status_reports_the_running_cluster(local_cluster):
    r = subprocess.run([sys.executable, "-m", "latte_cli", "cluster", "status-local", "--temp-dir", local_cluster["temp_dir"]],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert local_cluster["address"] in r.stdout and "answering" in r.stdout


def test_label_job_submitted_with_the_runtime_env_succeeds(local_cluster, tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    from jobs.label import LabelConfig
    from ttc.arithmetic import generate_problems
    from ttc.label_table import LabelTable
    from ttc.queries import write_queries

    queries = [p.to_query() for p in generate_problems(1, seed=11, levels=[1, 2])]
    write_queries(queries, tmp_path / "queries.jsonl")
    cfg = dict(queries=str(tmp_path / "queries.jsonl"), out_dir=str(tmp_path / "labels"), strategies=STRATEGIES,
               resamples=4, shard_size=2, replicas=1, num_cpus_per_replica=0.5)  # the head has 1 CPU
    LabelConfig(**cfg)
    (tmp_path / "label.yaml").write_text(yaml.safe_dump(cfg))

    address, sid = local_cluster["address"], f"latte-test-{uuid.uuid4().hex[:8]}"
    # --no-wait, then poll: the CLI's log tail is a websocket to the dashboard that Ray's own
    # client drops now and then (close code 1006) while the job runs on; what is tested here is
    # that the job submits, ships the checkout and succeeds.
    cmd = [str(Path(sys.executable).with_name("ray")), "job", "submit", "--address", address,
           "--submission-id", sid, "--runtime-env", "cluster/runtime_env.yaml", "--no-wait",
           "--", "python", "-m", "jobs.label", "--config", str(tmp_path / "label.yaml")]
    client = JobSubmissionClient(address)
    r = subprocess.run(cmd, cwd=REPO, env=local.ray_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"`ray job submit` failed ({r.returncode}):\n{(r.stdout + r.stderr)[-4000:]}"
    deadline = time.monotonic() + 300
    while not client.get_job_status(sid).is_terminal() and time.monotonic() < deadline:
        time.sleep(2.0)
    info = client.get_job_info(sid)
    if not info.status.is_terminal():
        client.stop_job(sid)
        pytest.fail(f"job {sid} did not finish in 300 s; logs:\n{client.get_job_logs(sid)[-3000:]}")
    assert info.status == JobStatus.SUCCEEDED, f"{info.message}\n{client.get_job_logs(sid)[-3000:]}"
    # The checkout was shipped as a package, not read from the local disk.
    assert str(info.runtime_env.get("working_dir", "")).startswith("gcs://"), info.runtime_env
    logs = client.get_job_logs(sid)
    assert f"[label] {len(queries)} queries x {len(STRATEGIES)} strategies" in logs, logs[-2000:]

    summary = json.loads((tmp_path / "labels" / "label_summary.json").read_text())
    assert summary["rows"] == len(queries) * len(STRATEGIES) and summary["shards_run"] == 1
    table = LabelTable.read(summary["table"])
    assert table.strategy_ids == STRATEGIES and sorted(table.query_ids) == sorted(q.query_id for q in queries)
