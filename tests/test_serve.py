"""The Serve application with the real tiny models, over HTTP (native and OpenAI)."""

import collections
import concurrent.futures as cf
import json
import time

import httpx
import pytest
import yaml

from ttc.arithmetic import generate_problems
from ttc.grading import answers_match

from tests.support import SERVE_TOKEN as TOKEN
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def app(serve_deployment):
    return serve_deployment["base"]


def post(base, path, body, headers=HEADERS, timeout=120):
    return httpx.post(base + path, json=body, headers=headers, timeout=timeout)


def test_health_models_strategies(app):
    assert httpx.get(app + "/healthz", timeout=30).json()["status"] == "ok"
    models = httpx.get(app + "/v1/models", headers=HEADERS, timeout=30).json()
    assert {m["id"] for m in models["data"]} == {"latte", "latte-fast", "latte-accurate"}
    table = httpx.get(app + "/v1/strategies", headers=HEADERS, timeout=30).json()
    assert len(table["strategies"]) == 5 and all(s["predicted_tokens"] > 0 for s in table["strategies"])
    # Load-aware: the served estimates the budgets use sit beside the artifact's, queue included.
    assert table["load_aware"] and all(
        s["served_tail_s"] >= s["served_latency_s"] >= s["served_queue_s"] >= 0 and s["served_tokens"] > 0
        for s in table["strategies"])


def test_solve_over_http(app):
    probs = generate_problems(3, seed=31, levels=[1, 2])
    correct = 0
    for p in probs:
        r = post(app, "/v1/solve", {"question": p.question})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["strategy"] and body["tokens"] > 0 and 0 <= body["predicted_accuracy"] <= 1
        assert len(body["top_utilities"]) >= 1
        correct += answers_match(body["answer"], p.answer)
    assert correct >= 4  # 1- and 2-step problems: the policy gets nearly all right


def test_forced_strategy_runs_that_strategy(app):
    for sid in ("majority/n=4", "beam_search/n=4/m=2/it=10"):
        body = post(app, "/v1/solve", {"question": "3 + 4 * 2", "strategy": sid}).json()
        assert body["strategy"] == sid and body["forced"]


def test_latency_budget_is_respected(app):
    # The load-aware router budgets SERVED latency (online estimates + queue), which it reports
    # per request; a budget over the third-fastest estimate leaves at least three strategies.
    top = post(app, "/v1/solve", {"question": "1 + 2"}).json()["top_utilities"]
    budget = sorted(t["predicted_latency_s"] for t in top)[2] * 1.5
    for p in generate_problems(2, seed=5, levels=[3, 7]):
        body = post(app, "/v1/solve", {"question": p.question, "max_latency_s": budget}).json()
        assert body["predicted_latency_s"] <= budget and body["within_budget"]


def test_openai_client_chat_and_completions(app):
    from openai import OpenAI

    client = OpenAI(base_url=app + "/v1", api_key=TOKEN)
    chat = client.chat.completions.create(model="latte", messages=[{"role": "user", "content": "2 + 3"}])
    assert "\\boxed{5}" in chat.choices[0].message.content
    assert chat.usage.completion_tokens > 0
    extra = chat.model_extra["latte"]
    assert extra["strategy"] and extra["answer"] == "5"
    comp = client.completions.create(model="latte-fast", prompt="4 * 2")
    assert "\\boxed{8}" in comp.choices[0].text
    assert [m.id for m in client.models.list()]


def test_concurrent_requests(app):
    probs = generate_problems(2, seed=77, levels=[1, 2, 3, 4])
    with cf.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda p: post(app, "/v1/solve", {"question": p.question}), probs))
    assert [r.status_code for r in results] == [200] * len(probs)


@pytest.mark.parametrize("body, status", [
    ({"question": ""}, 422),
    ({}, 422),
    ({"question": 5}, 422),
    ({"question": "1 + 1", "lambda_tokens": -1}, 422),
    ({"question": "1 + 1", "lambda_latency": "fast"}, 422),
    ({"question": "1 + 1", "max_latency_s": 0}, 422),
    ({"question": "1 + 1", "strategy": "majority/n=999"}, 404),
    ({"question": "1 + 1", "preset": "nope"}, 404),
    ({"question": "1 + 1", "unknown_field": 1}, 422),
    ({"question": "1 + " * 200}, 413),
    ({"question": "   "}, 400),
])
def test_bad_requests_get_4xx_with_reason(app, body, status):
    r = post(app, "/v1/solve", body)
    assert r.status_code == status, r.text
    err = r.json()["error"]  # OpenAI's error shape on every /v1 route
    assert err["message"] and err["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
    assert err["code"]


def test_malformed_json_nan_and_auth(app):
    r = httpx.post(app + "/v1/solve", content=b"{not json", headers={**HEADERS, "content-type": "application/json"},
                   timeout=30)
    assert r.status_code == 422, r.text
    r = httpx.post(app + "/v1/solve", content=b'{"question": "1 + 1", "lambda_tokens": NaN}',
                   headers={**HEADERS, "content-type": "application/json"}, timeout=30)
    assert r.status_code == 422
    r = post(app, "/v1/solve", {"question": "1 + 1"}, headers={})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert post(app, "/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "1 + 1"}]}
                ).status_code == 404
    assert post(app, "/v1/chat/completions", {"model": "latte", "messages": []}).status_code == 422


def test_killing_a_policy_replica_loses_no_request(app):
    import ray

    probs = generate_problems(3, seed=88, levels=[2, 5, 8])

    def send(p):
        try:
            return post(app, "/v1/solve", {"question": p.question, "strategy": "majority/n=4"}, timeout=180)
        except httpx.HTTPError as exc:  # a lost request
            return exc

    with cf.ThreadPoolExecutor(6) as ex:
        futures = [ex.submit(send, p) for p in probs * 2]
        time.sleep(0.5)
        victims = [a for a in ray.util.list_named_actors(all_namespaces=True)
                   if "PolicyPool" in a["name"] and a["namespace"] == "serve"]
        assert victims, "no policy replica found"
        ray.kill(ray.get_actor(victims[0]["name"], namespace="serve"), no_restart=False)
        results = [f.result() for f in futures]
    for r in results:
        assert isinstance(r, httpx.Response), f"request lost: {r!r}"
        assert r.status_code in (200, 503), r.text
        if r.status_code == 503:
            err = r.json()["error"]
            assert "retry" in err["message"] and err["type"] == "service_unavailable_error"
    # The pool recovers: Serve replaces the replica and requests succeed again.
    deadline = time.time() + 180
    while time.time() < deadline:
        r = post(app, "/v1/solve", {"question": "2 + 2", "strategy": "majority/n=1"})
        if r.status_code == 200:
            break
        time.sleep(3)
    assert r.status_code == 200 and json.loads(r.text)["answer"] == "4"


def test_router_config_reloads_without_restart(serve_deployment, tmp_path):
    """A new router config (as the tuning job writes) applies in place: same replica process."""
    from serve_app.deploy import reload_router

    app = serve_deployment["base"]
    before = httpx.get(app + "/healthz", timeout=30).json()
    cfg = yaml.safe_load(serve_deployment["router_config"].read_text())
    cfg["presets"]["latte-tuned"] = {"lambda_tokens": 0.01, "lambda_latency": 0.5}
    cfg["default_preset"] = "latte-tuned"
    new = tmp_path / "router_tuned.yaml"
    new.write_text(yaml.safe_dump(cfg))

    def service():  # the online service estimates (served latency less its queue part)
        rows = httpx.get(app + "/v1/strategies", headers=HEADERS, timeout=30).json()["strategies"]
        return {r["strategy"]: (r["served_latency_s"] - r["served_queue_s"], r["predicted_latency_s"]) for r in rows}

    post(app, "/v1/solve", {"question": "2 + 2"})  # moves one estimate off its seed
    learned = service()
    assert any(abs(v[0] - v[1]) > 1e-9 for v in learned.values())
    try:
        reload_router(serve_deployment["config"], new, serve_deployment["args"], serve_deployment["port"])
        deadline, after = time.time() + 60, before
        while time.time() < deadline and "latte-tuned" not in after["presets"]:
            time.sleep(1)
            after = httpx.get(app + "/healthz", timeout=30).json()
        assert "latte-tuned" in after["presets"] and after["router_config"] == str(new)
        assert after["pid"] == before["pid"], "the router replica was restarted"
        # Only presets changed: the learned estimates stay. A changed load_control restarts them.
        kept = service()
        assert all(kept[k][0] == pytest.approx(v[0]) for k, v in learned.items())
        cfg.setdefault("load_control", {})["ewma_alpha"] = 0.3
        reset = tmp_path / "router_alpha.yaml"
        reset.write_text(yaml.safe_dump(cfg))
        reload_router(serve_deployment["config"], reset, serve_deployment["args"], serve_deployment["port"])
        deadline = time.time() + 60
        while time.time() < deadline and httpx.get(app + "/healthz", timeout=30).json()["router_config"] != str(reset):
            time.sleep(1)
        assert all(v[0] == pytest.approx(v[1]) for v in service().values())
        body = post(app, "/v1/solve", {"question": "4 + 5"}).json()
        assert body["answer"] == "9"
        # A bad router config is refused before the live app is touched.
        bad = tmp_path / "bad.yaml"
        bad.write_text("artifact: x\npresets: {latte: {lambda_tokens: -1}}\n")
        with pytest.raises(Exception, match="lambda_tokens"):
            reload_router(serve_deployment["config"], bad, serve_deployment["args"], serve_deployment["port"])
    finally:
        reload_router(serve_deployment["config"], serve_deployment["router_config"], serve_deployment["args"],
                      serve_deployment["port"])
        deadline = time.time() + 60
        while time.time() < deadline:
            if "latte-tuned" not in httpx.get(app + "/healthz", timeout=30).json()["presets"]:
                break
            time.sleep(1)


def _replicas(name: str) -> int:
    """Replicas of a pool in any live state (starting counts: the decision was made)."""
    from ray import serve

    dep = serve.status().applications["latte"].deployments[name]
    return sum(n for state, n in dep.replica_states.items() if str(state).split(".")[-1] in
               ("STARTING", "RUNNING", "UPDATING", "RECOVERING"))


def _burst(app, strategy: str, seconds: float, concurrency: int = 8) -> list[int]:
    """Keep `concurrency` requests of one strategy in flight for `seconds`; PRM replica counts seen."""
    stop = time.time() + seconds
    seen = []

    def worker(k):
        codes = []
        i = 0
        while time.time() < stop:
            i += 1
            codes.append(post(app, "/v1/solve", {"question": f"{k % 9 + 1} + {i % 9 + 1} * 3 - 2 + 5 * 2",
                                                  "strategy": strategy}).status_code)
        return codes

    with cf.ThreadPoolExecutor(concurrency) as ex:
        futures = [ex.submit(worker, k) for k in range(concurrency)]
        while not all(f.done() for f in futures):
            seen.append(_replicas("PRMPool"))
            time.sleep(1)
        codes = [c for f in futures for c in f.result()]
    assert codes and all(c == 200 for c in codes), collections.Counter(codes)
    return seen


def test_beam_heavy_burst_grows_the_prm_pool_and_cheap_burst_does_not(app):
    """Autoscaling by routed demand: the router publishes expected PRM work per strategy."""
    assert _replicas("PRMPool") == 1
    cheap = _burst(app, "majority/n=1", seconds=15)
    time.sleep(4)  # longer than upscale_delay_s: a decision to grow would have been made
    assert max(cheap + [_replicas("PRMPool")]) == 1, cheap
    heavy = _burst(app, "beam_search/n=4/m=2/it=10", seconds=45)
    assert max(heavy + [_replicas("PRMPool")]) >= 2, heavy
