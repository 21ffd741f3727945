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
