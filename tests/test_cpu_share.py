"""benchmarks/cpu_share.py: CPU by deployment component, on synthetic snapshots and on the
session's live Serve app; benchmarks/serve_load.py's pinned pools."""

import httpx
import yaml

from benchmarks import cpu_share
from benchmarks.serve_load import pinned_serve_config
from tests.support import SERVE_TOKEN
from ttc.paths import CPU_SERVE_CONFIG


def _snap(t, rows):
    return {"t": t, "procs": rows}


def test_cores_group_processes_and_engines_follow_their_pool():
    before = _snap(0.0, {10: ("ray::ServeReplica:latte:PolicyPool", 1, 1.0),
                         11: ("VLLM::EngineCore", 10, 5.0),
                         20: ("ray::ServeReplica:latte:PRMPool.score", 1, 1.0),
                         21: ("VLLM::EngineCore", 20, 2.0),
                         30: ("ray::IDLE", 1, 0.5),
                         40: ("/usr/bin/bash", 1, 9.0),
                         50: ("python -m benchmarks.serve_load", 1, 3.0)})
    after = _snap(2.0, {10: ("ray::ServeReplica:latte:PolicyPool.generate", 1, 1.5),
                        11: ("VLLM::EngineCore", 10, 6.6),
                        20: ("ray::ServeReplica:latte:PRMPool", 1, 1.2),
                        21: ("VLLM::EngineCore", 20, 2.4),
                        30: ("ray::ServeReplica:latte:Router", 1, 1.3),  # the same worker, retitled
                        40: ("/usr/bin/bash", 1, 15.0),  # not ours: left out
                        50: ("python -m benchmarks.serve_load", 1, 3.2),
                        60: ("ray::ProxyActor", 1, 0.2)})  # started in between: counts from zero
    c = cpu_share.cores(before, after, client_pid=50)
    assert c["policy_engine"] == 0.8 and c["prm_engine"] == 0.2
    assert c["policy_pool"] == 0.25 and c["prm_pool"] == 0.1
    assert c["router"] == 0.4 and c["proxy"] == 0.1 and c["client"] == 0.1
    s = cpu_share.summary(c, requests=40, seconds=2.0)
    assert abs(s["total_cores"] - 1.95) < 1e-9
    assert s["engine_fraction"] == round(1.0 / 1.95, 3)
    assert s["cpu_ms_per_request"] == round(1.95 * 2.0 * 1000 / 40, 2)
    assert abs(s["engine_ms_per_request"] + s["other_ms_per_request"] - s["cpu_ms_per_request"]) < 0.02


def test_pinned_serve_config_fixes_both_pools_and_leaves_the_router(tmp_path):
    assert pinned_serve_config(CPU_SERVE_CONFIG, None, tmp_path) == CPU_SERVE_CONFIG
    data = yaml.safe_load(open(pinned_serve_config(CPU_SERVE_CONFIG, 1, tmp_path)))
    deps = {d["name"]: d for d in data["applications"][0]["deployments"]}
    for pool in ("PolicyPool", "PRMPool"):
        a = deps[pool]["autoscaling_config"]
        assert a["min_replicas"] == a["max_replicas"] == a["initial_replicas"] == 1
    shipped = {d["name"]: d for d in yaml.safe_load(open(CPU_SERVE_CONFIG))["applications"][0]["deployments"]}
    assert deps["Router"] == shipped["Router"]
    assert shipped["PolicyPool"]["autoscaling_config"]["max_replicas"] > 1  # the shipped config still autoscales


def test_live_deployment_is_split_into_its_components(serve_deployment):
    import time

    want = {"router", "policy_pool", "prm_pool", "proxy", "policy_engine", "prm_engine"}
    deadline = time.monotonic() + 30  # Ray retitles a worker once its actor runs; allow for that
    while True:
        before = cpu_share.snapshot()
        found = {cpu_share.component(pid, before["procs"], -1) for pid in before["procs"]}
        if want <= found or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert want <= found, sorted(c for c in found if c)
    headers = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    for q in ("3 + 4", "7 - 2 * 3", "9 * 2 + 1"):
        r = httpx.post(serve_deployment["base"] + "/v1/solve", headers=headers, timeout=60,
                       json={"question": q, "strategy": "best_of_n/n=4"})  # both engines run
        assert r.status_code == 200, r.text
    c = cpu_share.cores(before, cpu_share.snapshot())
    for part in ("router", "policy_pool", "proxy", "policy_engine", "prm_engine"):
        assert c[part] > 0, (part, c)
