"""Schemathesis against the app's own OpenAPI schema: >= 1,000 cases, no server error."""

import collections
import concurrent.futures as cf

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from tests.support import SERVE_TOKEN

HEADERS = {"Authorization": f"Bearer {SERVE_TOKEN}"}
TOTAL_CASES = 1200


def _cases(op, mode, n):
    """Draw n cases from schemathesis' strategy (generation only; calls happen in parallel)."""
    out = []

    @settings(max_examples=n, deadline=None, phases=[Phase.generate], database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def draw(case):
        out.append(case)

    try:
        draw()
    except Unsatisfiable:  # e.g. negative cases of an operation that takes no input
        pass
    return out


def test_schemathesis_cases_get_no_server_error(serve_deployment):
    import schemathesis
    from schemathesis import GenerationMode

    base = serve_deployment["base"]
    schema = schemathesis.openapi.from_url(base + "/openapi.json", timeout=30)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in ops} >= {"/v1/solve", "/v1/chat/completions", "/v1/completions", "/v1/models"}
    # Operations with a body carry the budget; the GET ones have a handful of distinct inputs.
    with_body = [op for op in ops if op.method.upper() == "POST"]
    per = -(-TOTAL_CASES // (2 * len(with_body)))
    cases = [(op, c) for op in ops for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
             for c in _cases(op, mode, per if op in with_body else 20)]
    session = requests.Session()

    def call(item):
        k, (op, case) = item
        # Every 10th case goes without the token: auth must answer 401, not fail.
        headers = {} if k % 10 == 0 else HEADERS
        try:
            r = case.call(base_url=base, session=session, headers=headers, timeout=180)
            return op.path, r.status_code, r.text[:300], case.body if hasattr(case, "body") else None
        except requests.RequestException as exc:
            return op.path, -1, repr(exc), None

    with cf.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(call, enumerate(cases)))
    tally = collections.Counter((path, status // 100 if status > 0 else status) for path, status, _, _ in results)
    errors = [r for r in results if r[1] >= 500 or r[1] < 0]
    assert len(results) >= 1000, tally
    assert not errors, f"{len(errors)} server errors / failed calls, e.g. {errors[:3]}; tally {dict(tally)}"
    # The fuzzing reached the handlers: some cases were served, many were refused as 4xx.
    assert sum(v for (p, c), v in tally.items() if c == 2) >= 50, tally
    assert sum(v for (p, c), v in tally.items() if c == 4) >= 300, tally


# --- the OpenAI parameters and extra_body knobs, with plausible values (accepted and refused) ---
def _openai_bodies(n: int, seed: int = 0) -> list[tuple[str, dict]]:
    import random

    from hypothesis import strategies as st

    opt = lambda s: st.one_of(st.none(), s)  # noqa: E731
    num = st.floats(allow_nan=False, allow_infinity=False, min_value=-5, max_value=5)
    common = {
        "max_tokens": opt(st.integers(-2, 64)), "n": opt(st.integers(0, 3)), "temperature": opt(num),
        "top_p": opt(num), "seed": opt(st.integers(-10, 2**31)), "stream": opt(st.booleans()),
        "stop": opt(st.one_of(st.text(max_size=3), st.lists(st.sampled_from(["\n\n", "=", "", "x"]), max_size=5))),
        "stream_options": opt(st.fixed_dictionaries({"include_usage": st.booleans()})),
        "user": opt(st.text(max_size=8)), "presence_penalty": opt(num), "frequency_penalty": opt(num),
        "logit_bias": opt(st.dictionaries(st.sampled_from(["1", "2"]), num, max_size=1)),
        # extra_body knobs
        "lambda_tokens": opt(st.one_of(num, st.just("fast"))), "lambda_latency": opt(num),
        "max_latency_s": opt(num), "preset": opt(st.sampled_from(["latte", "latte-fast", "nope"])),
        "strategy": opt(st.sampled_from(["majority/n=1", "majority/n=4", "best_of_n/n=4",
                                         "beam_search/n=4/m=2/it=10", "bogus"])),
    }
    chat_only = {
        "max_completion_tokens": opt(st.integers(0, 64)), "logprobs": opt(st.booleans()),
        "top_logprobs": opt(st.integers(0, 3)), "tools": opt(st.lists(st.just({"type": "function"}), max_size=1)),
        "tool_choice": opt(st.sampled_from(["none", "auto"])), "store": opt(st.booleans()),
        "response_format": opt(st.sampled_from([{"type": "text"}, {"type": "json_object"}])),
        "service_tier": opt(st.sampled_from(["auto", "flex"])),
    }
    comp_only = {"best_of": opt(st.integers(0, 3)), "echo": opt(st.booleans()), "suffix": opt(st.text(max_size=2)),
                 "logprobs": opt(st.integers(0, 2))}
    rng = random.Random(seed)
    out = []
    for k in range(n):
        route = "/v1/chat/completions" if k % 2 == 0 else "/v1/completions"
        fields = {**common, **(chat_only if route.endswith("chat/completions") else comp_only)}
        # A few fields per case, so refusals do not hide every other rule.
        chosen = rng.sample(sorted(fields), rng.randint(0, 4))
        body = {name: fields[name].example() for name in chosen}
        body = {key: v for key, v in body.items() if v is not None}
        if "stream" not in body and rng.random() < 0.4:
            body["stream"] = True
        question = rng.choices(["2 + 3", "7 * 8 - 9 + 6", "", "1 + " * 200], weights=[4, 4, 1, 1])[0]
        body["model"] = rng.choice(["latte", "latte-fast", "gpt-4o"])
        if route.endswith("chat/completions"):
            body["messages"] = [{"role": "user", "content": question}]
        else:
            body["prompt"] = question
        out.append((route, body))
    return out


def test_openai_parameters_and_knobs_get_no_server_error(serve_deployment):
    import json
    import warnings

    import httpx
    from hypothesis.errors import NonInteractiveExampleWarning

    base = serve_deployment["base"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        cases = _openai_bodies(240)
    names = {key for _, body in cases for key in body}
    assert names >= {"max_tokens", "max_completion_tokens", "n", "temperature", "top_p", "seed", "stop", "stream",
                     "stream_options", "tools", "logprobs", "response_format", "best_of", "echo", "suffix",
                     "lambda_tokens", "lambda_latency", "max_latency_s", "preset", "strategy"}, names

    def call(case):
        path, body = case
        try:
            r = httpx.post(base + path, json=body, headers=HEADERS, timeout=180)
            return path, body, r.status_code, r.headers.get("content-type", ""), r.text
        except httpx.HTTPError as exc:
            return path, body, -1, "", repr(exc)

    with cf.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(call, cases))
    bad = []
    for path, body, status, ctype, text in results:
        if status < 0 or status >= 500:
            bad.append((status, body, text[:200]))
        elif status == 200 and body.get("stream"):
            events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
            if not ctype.startswith("text/event-stream") or events[-1:] != ["[DONE]"] or "server_error" in text:
                bad.append((status, body, text[-200:]))
        elif status != 200:
            err = json.loads(text)["error"]
            # A 400 names the parameter it refuses (or the question it cannot use).
            if not err["message"] or (status == 400 and err["param"] not in set(body) | {"question", "messages",
                                                                                       "prompt"}):
                bad.append((status, body, text[:200]))
    tally = collections.Counter(status for _, _, status, _, _ in results)
    streams = sum(1 for _, body, status, _, _ in results if status == 200 and body.get("stream"))
    assert not bad, f"{len(bad)} bad answers, e.g. {bad[:3]}; tally {dict(tally)}"
    # Rules, service and streams were all exercised.
    assert tally[200] >= 35 and tally[400] >= 30 and streams >= 12, (tally, streams)
