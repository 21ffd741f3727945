"""The Serve application with the real tiny models, over HTTP (native and OpenAI)."""

import concurrent.futures as cf
import json
import socket
import time

import httpx
import pytest
import yaml

from ttc.arithmetic import generate_problems
from ttc.grading import answers_match

TOKEN = "test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(ray_session, small_artifact, tmp_path_factory):
    from ray import serve

    from serve_app.deploy import deploy

    d = tmp_path_factory.mktemp("serve")
    router_cfg = d / "router.yaml"
    router_cfg.write_text(yaml.safe_dump({
        "artifact": str(small_artifact["path"]), "recipe": "cluster/recipes/cpu_world.yaml",
        "api_token": TOKEN, "max_question_chars": 500,
        "presets": {"latte": {"lambda_tokens": 1e-4}, "latte-fast": {"lambda_tokens": 5e-3},
                    "latte-accurate": {}}}))
    port = _free_port()
    deploy("cluster/serve/cpu_world.yaml", {"router_config": str(router_cfg)}, http_port=port)
    base = f"http://127.0.0.1:{port}"
    yield base
    serve.delete("latte")


def post(base, path, body, headers=HEADERS, timeout=120):
    return httpx.post(base + path, json=body, headers=headers, timeout=timeout)


def test_health_models_strategies(app):
    assert httpx.get(app + "/healthz", timeout=30).json()["status"] == "ok"
    models = httpx.get(app + "/v1/models", headers=HEADERS, timeout=30).json()
    assert {m["id"] for m in models["data"]} == {"latte", "latte-fast", "latte-accurate"}
    table = httpx.get(app + "/v1/strategies", headers=HEADERS, timeout=30).json()
    assert len(table["strategies"]) == 5 and all(s["predicted_tokens"] > 0 for s in table["strategies"])


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
    table = httpx.get(app + "/v1/strategies", headers=HEADERS, timeout=30).json()["strategies"]
    lat = {s["strategy"]: s["predicted_latency_s"] for s in table}
    budget = sorted(lat.values())[1] * 1.01  # at least two strategies fit
    for p in generate_problems(2, seed=5, levels=[3, 7]):
        body = post(app, "/v1/solve", {"question": p.question, "max_latency_s": budget}).json()
        assert lat[body["strategy"]] <= budget and body["within_budget"]


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
    assert r.json()["detail"]


def test_malformed_json_nan_and_auth(app):
    r = httpx.post(app + "/v1/solve", content=b"{not json", headers={**HEADERS, "content-type": "application/json"},
                   timeout=30)
    assert r.status_code == 422, r.text
    r = httpx.post(app + "/v1/solve", content=b'{"question": "1 + 1", "lambda_tokens": NaN}',
                   headers={**HEADERS, "content-type": "application/json"}, timeout=30)
    assert r.status_code == 422
    assert post(app, "/v1/solve", {"question": "1 + 1"}, headers={}).status_code == 401
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
            assert "retry" in r.json()["detail"]
    # The pool recovers: Serve replaces the replica and requests succeed again.
    deadline = time.time() + 180
    while time.time() < deadline:
        r = post(app, "/v1/solve", {"question": "2 + 2", "strategy": "majority/n=1"})
        if r.status_code == 200:
            break
        time.sleep(3)
    assert r.status_code == 200 and json.loads(r.text)["answer"] == "4"
