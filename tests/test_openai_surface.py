"""The OpenAI surface through the official `openai` client and raw SSE (httpx), on the real tiny models.

Shares the session's Serve app (conftest `serve_deployment`).
"""

import json
import time

import httpx
import pytest

from tests.support import SERVE_TOKEN as TOKEN
from ttc.paths import CPU_RECIPE

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
Q = "4 + 5"
HARD = "7 * 8 - 9 + 6 * 3 - 4 * 2 + 5"
MULTI = "majority/n=4"
BEAM = "beam_search/n=4/m=2/it=10"


@pytest.fixture(scope="module")
def base(serve_deployment):
    return serve_deployment["base"]


@pytest.fixture(scope="module")
def client(base):
    from openai import OpenAI

    return OpenAI(base_url=base + "/v1", api_key=TOKEN, max_retries=0, timeout=180)


def chat(client, content=Q, **kw):
    return client.chat.completions.create(model="latte", messages=[{"role": "user", "content": content}], **kw)


def sse_events(base, path, body, headers=HEADERS):
    """Raw SSE with httpx: (seconds since the request, parsed data) per event, and the response."""
    events = []
    t0 = time.perf_counter()
    with httpx.stream("POST", base + path, json=body, headers=headers, timeout=180) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[len("data: "):]
                events.append((time.perf_counter() - t0, data if data == "[DONE]" else json.loads(data)))
    return r, events


def _prompt_tokens(question: str) -> int:
    from transformers import AutoTokenizer

    from ttc.recipe import load_recipe

    recipe = load_recipe(CPU_RECIPE)
    tok = AutoTokenizer.from_pretrained(recipe.policy.resolved_model())
    return len(tok.encode(recipe.format().policy_prompt(question), add_special_tokens=False))


# --- non-streaming -----------------------------------------------------------------------
def test_chat_usage_latte_block_and_decision_headers(client):
    raw = client.chat.completions.with_raw_response.create(
        model="latte", messages=[{"role": "user", "content": Q}])
    c = raw.parse()
    latte = c.model_extra["latte"]
    assert "\\boxed{9}" in c.choices[0].message.content and latte["answer"] == "9"
    assert c.usage.prompt_tokens == _prompt_tokens(Q) > 0
    assert c.usage.completion_tokens == latte["tokens"] > 0
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens
    assert raw.headers["x-latte-strategy"] == latte["strategy"]
    assert float(raw.headers["x-latte-predicted-tokens"]) == pytest.approx(latte["predicted_tokens"], abs=0.1)
    assert float(raw.headers["x-latte-predicted-latency-s"]) >= 0
    assert latte["latency_s"] > 0 and latte["decision_s"] > 0 and c.choices[0].finish_reason == "stop"


def test_completion_tokens_count_every_sample(client):
    one = chat(client, HARD, extra_body={"strategy": "majority/n=1"})
    four = chat(client, HARD, extra_body={"strategy": MULTI})
    beam = chat(client, HARD, extra_body={"strategy": BEAM})
    # Four hidden samples cost more than the one shown; beam search counts pruned beams too.
    assert four.usage.completion_tokens > len(four.choices[0].message.content) / 20
    assert four.usage.completion_tokens > 2 * one.usage.completion_tokens
    assert beam.model_extra["latte"]["prm_steps"] > 0
    assert beam.usage.completion_tokens > one.usage.completion_tokens


def test_completions_route(client):
    raw = client.completions.with_raw_response.create(model="latte-fast", prompt="4 * 2")
    c = raw.parse()
    assert "\\boxed{8}" in c.choices[0].text and c.object == "text_completion"
    assert c.usage.prompt_tokens == _prompt_tokens("4 * 2")
    assert raw.headers["x-latte-strategy"] == c.model_extra["latte"]["strategy"]
    assert client.completions.create(model="latte", prompt=["4 * 2"]).choices[0].text


# --- streaming ---------------------------------------------------------------------------
def test_single_sample_streams_tokens_as_generated(client):
    kw = dict(extra_body={"strategy": "majority/n=1"}, seed=7)
    full = chat(client, HARD, **kw)
    chunks = list(chat(client, HARD, stream=True, stream_options={"include_usage": True}, **kw))
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert len(texts) >= 5, texts  # token by token, not one block
    assert "".join(texts) == full.choices[0].message.content
    finals = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].model_extra["latte"]["strategy"] == "majority/n=1"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == full.usage.prompt_tokens > 0


def test_multi_sample_stream_sends_role_first_then_the_chosen_answer(base):
    r, events = sse_events(base, "/v1/chat/completions", {
        "model": "latte", "messages": [{"role": "user", "content": HARD}], "stream": True, "strategy": BEAM})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-latte-strategy"] == BEAM
    assert events[-1][1] == "[DONE]"
    chunks = [e for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for _, c in chunks)
    assert chunks[0][1]["choices"][0]["delta"]["role"] == "assistant"
    contents = [(t, c) for t, c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(contents) == 1  # the chosen answer, once chosen
    # The role chunk is on the wire while the beam search is still running.
    assert chunks[0][0] < contents[0][0] - 0.05, (chunks[0][0], contents[0][0])
    final = chunks[-1][1]
    assert final["choices"][0]["finish_reason"] in ("stop", "length")
    assert final["latte"]["answer"] and final["latte"]["answer"] in contents[0][1]["choices"][0]["delta"]["content"]
    assert "usage" not in final or final["usage"] is None  # include_usage not asked


def test_completions_stream_with_usage(client):
    chunks = list(client.completions.create(model="latte", prompt="2 + 3", stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert "\\boxed{5}" in text
    assert chunks[-1].usage.prompt_tokens == _prompt_tokens("2 + 3") and chunks[-1].usage.completion_tokens > 0


def test_stream_errors_before_the_decision_keep_their_status(client, base):
    from openai import NotFoundError

    with pytest.raises(NotFoundError) as e:
        list(client.chat.completions.create(model="nope", messages=[{"role": "user", "content": Q}], stream=True))
    assert e.value.code == "model_not_found"
    r = httpx.post(base + "/v1/completions", json={"model": "latte", "prompt": "1 + " * 200, "stream": True},
                   headers=HEADERS, timeout=60)
    assert r.status_code == 413 and r.json()["error"]["code"] == "question_too_long"


# --- parameter rules ---------------------------------------------------------------------
@pytest.mark.parametrize("strategy", [None, "majority/n=1", MULTI, BEAM])
def test_max_tokens_caps_every_token_of_the_request(client, strategy):
    extra = {"strategy": strategy} if strategy else {}
    c = chat(client, HARD, max_tokens=6, extra_body=extra)
    assert 0 < c.usage.completion_tokens <= 6 and c.choices[0].finish_reason == "length"
    c = client.completions.create(model="latte", prompt=HARD, max_tokens=6, extra_body=extra)
    assert c.usage.completion_tokens <= 6


def test_max_completion_tokens_is_a_budget_for_the_router(client, base):
    table = httpx.get(base + "/v1/strategies", headers=HEADERS, timeout=30).json()["strategies"]
    tok = {s["strategy"]: s["served_tokens"] for s in table}  # the router's online token estimates
    budget = int(sorted(tok.values())[1]) + 1  # at least two strategies fit
    c = chat(client, HARD, max_completion_tokens=budget)
    latte = c.model_extra["latte"]
    assert tok[latte["strategy"]] <= budget and latte["within_budget"]
    assert c.usage.completion_tokens <= budget
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as e:
        chat(client, max_tokens=10, max_completion_tokens=20)
    assert e.value.param == "max_completion_tokens"


def test_n_above_one_is_refused_and_one_is_fine(client):
    from openai import BadRequestError

    assert len(chat(client, n=1).choices) == 1
    with pytest.raises(BadRequestError) as e:
        chat(client, n=2)
    assert e.value.param == "n" and e.value.type == "invalid_request_error"
    assert e.value.body["code"] == "unsupported_parameter" and "n > 1" in e.value.body["message"]


def test_own_sampling_runs_one_sample_and_is_refused_on_a_multi_sample_strategy(client):
    from openai import BadRequestError

    a = chat(client, HARD, temperature=0)
    b = chat(client, HARD, temperature=0)
    assert a.model_extra["latte"]["strategy"] == "majority/n=1"
    assert a.choices[0].message.content == b.choices[0].message.content  # greedy
    stopped = chat(client, HARD, stop=["\n\n"], temperature=0)
    assert "\n\n" not in stopped.choices[0].message.content
    assert stopped.choices[0].message.content == a.choices[0].message.content.split("\n\n")[0]
    assert chat(client, top_p=0.5).model_extra["latte"]["strategy"] == "majority/n=1"
    for kw in ({"temperature": 0}, {"top_p": 0.5}, {"stop": "\n\n"}):
        with pytest.raises(BadRequestError) as e:
            chat(client, extra_body={"strategy": MULTI}, **kw)
        assert e.value.param == next(iter(kw)) and e.value.code == "fixed_by_strategy"
    # The recipe's own temperature is no override: any strategy may run with it.
    assert chat(client, temperature=0.7, extra_body={"strategy": MULTI}).model_extra["latte"]["strategy"] == MULTI


def test_seed_is_honoured(client):
    kw = dict(extra_body={"strategy": "majority/n=1"})
    runs = {s: chat(client, HARD, seed=s, **kw).choices[0].message.content for s in (1, 2, 3, 4)}
    assert chat(client, HARD, seed=3, **kw).choices[0].message.content == runs[3]
    assert len(set(runs.values())) > 1, runs


@pytest.mark.parametrize("kw, param", [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": 1.0}, "frequency_penalty"),
    ({"logit_bias": {"12": 5}}, "logit_bias"),
    ({"store": True}, "store"),
    ({"metadata": {"a": "b"}}, "metadata"),
    ({"reasoning_effort": "low"}, "reasoning_effort"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
])
def test_unsupported_chat_parameters_are_refused_by_name(client, kw, param):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as e:
        chat(client, **kw)
    assert e.value.param == param and param in e.value.message


@pytest.mark.parametrize("kw, param", [
    ({"best_of": 2}, "best_of"), ({"echo": True}, "echo"), ({"logprobs": 1}, "logprobs"),
    ({"suffix": "x"}, "suffix"), ({"n": 3}, "n"),
])
def test_unsupported_completion_parameters_are_refused_by_name(client, kw, param):
    from openai import BadRequestError

    with pytest.raises(BadRequestError) as e:
        client.completions.create(model="latte", prompt=Q, **kw)
    assert e.value.param == param


def test_harmless_fields_in_their_off_state_are_accepted(client):
    c = chat(client, user="user-42", store=False, service_tier="auto", response_format={"type": "text"},
             tool_choice="none", presence_penalty=0, logprobs=False)
    assert "\\boxed{9}" in c.choices[0].message.content


def test_messages_must_be_one_user_question(client):
    from openai import BadRequestError

    for messages in ([{"role": "system", "content": "be brief"}, {"role": "user", "content": Q}],
                     [{"role": "user", "content": Q}, {"role": "assistant", "content": "11"},
                      {"role": "user", "content": "and 2 + 2?"}]):
        with pytest.raises(BadRequestError) as e:
            client.chat.completions.create(model="latte", messages=messages)
        assert e.value.param == "messages"
    parts = client.chat.completions.create(model="latte", messages=[
        {"role": "user", "content": [{"type": "text", "text": Q}]}])
    assert "\\boxed{9}" in parts.choices[0].message.content


# --- extra_body knobs, errors as the client raises them ----------------------------------
def test_extra_body_knobs(client, base):
    from openai import NotFoundError, UnprocessableEntityError

    table = httpx.get(base + "/v1/strategies", headers=HEADERS, timeout=30).json()["strategies"]
    cheapest_tok = min(table, key=lambda s: s["predicted_tokens"])["strategy"]
    c = chat(client, HARD, extra_body={"lambda_tokens": 1.0})
    assert c.model_extra["latte"]["strategy"] == cheapest_tok
    accurate = chat(client, HARD, extra_body={"lambda_tokens": 0.0, "lambda_latency": 0.0})
    assert accurate.model_extra["latte"]["predicted_accuracy"] >= c.model_extra["latte"]["predicted_accuracy"]
    # The budget is on served latency, which the strategy table reports beside the artifact's
    # (read after the requests above, which moved the online estimates).
    table = httpx.get(base + "/v1/strategies", headers=HEADERS, timeout=30).json()["strategies"]
    served = {s["strategy"]: s["served_latency_s"] for s in table}
    # Half-way between the fastest and the accurate choice, so the budget binds. (Not "the second
    # fastest": the session's earlier traffic may leave a congestion price that moved the
    # accurate choice down the table.)
    fastest, chosen = min(served.values()), served[accurate.model_extra["latte"]["strategy"]]
    assert chosen > fastest * 1.02, (chosen, fastest)
    budget = (fastest + chosen) / 2
    c = chat(client, HARD, extra_body={"max_latency_s": budget})
    info = c.model_extra["latte"]
    assert served[info["strategy"]] <= budget and info["predicted_latency_s"] <= budget and info["within_budget"]
    # extra_body `preset` picks the preset whatever `model` says (clients with a fixed model name).
    fast = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": Q}],
                                          extra_body={"preset": "latte-fast"})
    assert fast.model == "gpt-4o" and "\\boxed{9}" in fast.choices[0].message.content
    forced = chat(client, extra_body={"strategy": BEAM})
    assert forced.model_extra["latte"]["strategy"] == BEAM and forced.model_extra["latte"]["forced"]
    for extra, param in (({"lambda_tokens": -1}, "lambda_tokens"), ({"lambda_latency": "fast"}, "lambda_latency"),
                         ({"max_latency_s": 0}, "max_latency_s"), ({"unknown_knob": 1}, "unknown_knob")):
        with pytest.raises(UnprocessableEntityError) as e:
            chat(client, extra_body=extra)
        assert e.value.param == param and e.value.type == "invalid_request_error"
    with pytest.raises(NotFoundError) as e:
        chat(client, extra_body={"strategy": "majority/n=999"})
    assert e.value.code == "strategy_not_found" and e.value.param == "strategy"
    with pytest.raises(NotFoundError) as e:
        chat(client, extra_body={"preset": "nope"})
    assert e.value.code == "model_not_found"


def test_auth_and_not_found_errors_in_openai_shape(base):
    from openai import AuthenticationError, NotFoundError, OpenAI

    bad = OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(AuthenticationError) as e:
        bad.models.list()
    assert e.value.type == "authentication_error" and e.value.code == "invalid_api_key"
    with pytest.raises(AuthenticationError):
        list(bad.chat.completions.create(model="latte", messages=[{"role": "user", "content": Q}], stream=True))
    ok = OpenAI(base_url=base + "/v1", api_key=TOKEN, max_retries=0)
    with pytest.raises(NotFoundError) as e:
        ok.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": Q}])
    assert e.value.param == "model" and "latte-fast" in e.value.message
    r = httpx.get(base + "/v1/no-such-route", headers=HEADERS, timeout=30)
    assert r.status_code == 404 and r.json()["error"]["code"] == "route_not_found"


def test_request_id_is_kept_and_logged(base, serve_deployment):
    import glob
    import os

    import ray

    rid = f"test-rid-{time.time_ns()}"
    r = httpx.post(base + "/v1/chat/completions", json={"model": "latte", "messages": [
        {"role": "user", "content": Q}]}, headers={**HEADERS, "x-request-id": rid}, timeout=120)
    assert r.status_code == 200 and r.headers["x-request-id"] == rid
    logs = os.path.join(ray._private.worker._global_node.get_session_dir_path(), "logs", "serve")
    deadline = time.time() + 30
    while time.time() < deadline:
        text = "".join(open(p, errors="replace").read() for p in glob.glob(os.path.join(logs, "*Router*.log")))
        if f"latte request_id={rid}" in text:
            break
        time.sleep(1)
    assert f"latte request_id={rid}" in text


# --- metrics -----------------------------------------------------------------------------
def test_metrics_are_exported_on_rays_metrics_port(client, base):
    import ray
    from openai import BadRequestError

    chat(client, extra_body={"strategy": BEAM})
    with pytest.raises(BadRequestError):
        chat(client, n=3)
    node = ray.nodes()[0]
    url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    want = [f'ray_latte_requests_total{{', f'strategy="{BEAM}"', "ray_latte_decision_seconds_bucket",
            'ray_latte_request_tokens_bucket', 'kind="observed"', 'kind="predicted"',
            "ray_latte_request_latency_seconds_bucket", 'ray_latte_errors_total{', 'status="400"',
            "ray_latte_queue_scale", "ray_latte_queue_relative_spread"]  # the load-aware router's
    deadline, text = time.time() + 90, ""
    while time.time() < deadline:
        text = httpx.get(url, timeout=30).text
        if all(w in text for w in want):
            break
        time.sleep(3)
    missing = [w for w in want if w not in text]
    assert not missing, missing
    beam_count = [line for line in text.splitlines()
                  if line.startswith("ray_latte_requests_total{") and f'strategy="{BEAM}"' in line]
    assert beam_count and float(beam_count[0].rsplit(" ", 1)[1]) >= 1
