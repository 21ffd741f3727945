"""Overload through the real Serve app: a latency budget nothing can meet is shed with a 429,
Retry-After and OpenAI's error shape (never a 5xx), as the official client sees it."""

import concurrent.futures as cf
import time

import httpx
import pytest

from tests.support import SERVE_TOKEN as TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def app(serve_deployment):
    return serve_deployment["base"]


def test_unmeetable_budget_is_shed_with_retry_after(app):
    import openai

    client = openai.OpenAI(base_url=app + "/v1", api_key=TOKEN, max_retries=0)  # the client retries 429s
    with pytest.raises(openai.RateLimitError) as info:
        client.post("/solve", cast_to=object, body={"question": "3 + 4 * 2", "max_latency_s": 1e-4})
    err = info.value
    assert err.status_code == 429
    retry = int(err.response.headers["retry-after"])
    assert 1 <= retry <= 30
    assert err.body["type"] == "rate_limit_error" and err.body["code"] == "overloaded"
    assert "no strategy is predicted to finish within" in err.body["message"]
    # A forced strategy over the budget is shed too; a reachable budget is served.
    with pytest.raises(openai.RateLimitError):
        client.post("/solve", cast_to=object,
                    body={"question": "3 + 4", "max_latency_s": 1e-4, "strategy": "majority/n=4"})
    ok = client.post("/solve", cast_to=object, body={"question": "3 + 4", "max_latency_s": 60})
    assert ok["within_budget"] and ok["load_aware"] and ok["predicted_latency_s"] <= 60


def test_burst_of_unmeetable_and_meetable_budgets_has_no_5xx(app):
    def one(i):
        budget = 1e-4 if i % 2 else 60.0
        r = httpx.post(app + "/v1/solve", json={"question": f"{i} + 2", "max_latency_s": budget},
                       headers=HEADERS, timeout=120)
        return budget, r.status_code, r.headers.get("retry-after"), r.json()

    with cf.ThreadPoolExecutor(8) as ex:
        res = list(ex.map(one, range(16)))
    assert all(status < 500 for _, status, _, _ in res)
    for budget, status, retry, body in res:
        if budget < 1:
            assert status == 429 and retry and body["error"]["code"] == "overloaded"
        else:
            assert status == 200 and body["answer"] is not None, body


def test_a_burst_is_decided_under_the_admission_limits_budget(app):
    """Little's law through the live router: once arrivals are counted, each decision reports
    the latency budget that keeps max_in_flight unfilled, and its choice fits it unless none did."""
    def one(i):
        r = httpx.post(app + "/v1/solve", json={"question": f"{i % 9 + 1} * 3 + 4"}, headers=HEADERS, timeout=120)
        return r.status_code, r.json()

    time.sleep(2.5)  # earlier tests' arrivals leave the 2-s window
    with cf.ThreadPoolExecutor(8) as ex:
        res = list(ex.map(one, range(24)))
    assert all(status == 200 for status, _ in res), [s for s, _ in res]
    budgets = [b for _, b in res if b["admission_budget_s"] is not None]
    # 24 arrivals within the 2-s window: the rate is at most 12/s, so the budget at least 0.8 x 24 / 12 s.
    assert len(budgets) >= 16
    for b in budgets:
        assert b["admission_budget_s"] >= 0.8 * 24 / 12 - 1e-9
        # This deployment sets no SLO: the admission budget is the only preference, and the
        # guard (which needs an SLO) is off; the choice fits the budget, else none did.
        assert b["slo_guard_scale"] is None
        assert b["preference_fit"] == (b["predicted_latency_s"] <= b["admission_budget_s"] + 1e-9), b
