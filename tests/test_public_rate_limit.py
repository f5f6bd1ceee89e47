"""The rate limit on the public POSTs, counted in Redis (shared by every worker)
and keyed on the address ProxyFix trusts, so a forged X-Forwarded-For hop
cannot reset it. Skips when Redis is unreachable, unless TEST_REDIS_URL is set.
Only POSTs that did something (redirected) count: fixing errors never hits it."""

from __future__ import annotations

import os
import secrets

import pytest
import redis

from tests.test_public_flow import ELIGIBLE

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("TEST_REDIS_URL"):
            raise
        pytest.skip("Redis is not reachable")
    return REDIS_URL


@pytest.fixture
def app_config():
    return {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": redis_or_skip(),
            "CONSULTATION_RATE_LIMIT": "3 per minute", "PROXY_FIX_X_FOR": 1}


def address() -> str:
    # Fresh documentation-range addresses each run: counters left in Redis by an
    # earlier run (or the other database's run) never meet this one. (Flask-Limiter
    # keeps the first RATELIMIT_KEY_PREFIX it sees, so a prefix can't do this.)
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


def test_rate_limit_counts_in_redis_and_a_forged_hop_does_not_reset_it(client):
    person, other, forged = address(), address(), address()

    def post(forwarded_for):
        return client.post("/consultation", data=ELIGIBLE,
                           headers={"X-Forwarded-For": forwarded_for}).status_code

    assert [post(person) for _ in range(3)] == [302, 302, 302]
    # The proxy appends the real address; a client-supplied hop in front changes nothing.
    assert post(f"{forged}, {person}") == 429
    assert post(person) == 429
    # Counted in Redis, where every worker and host sees the same number.
    store = redis.Redis.from_url(REDIS_URL)
    assert list(store.scan_iter(match=f"*{person}*"))
    assert post(other) == 302  # another person is not affected
    page = client.post("/consultation", headers={"X-Forwarded-For": person})
    assert page.status_code == 429 and "Too many attempts" in page.text
    assert client.get("/consultation", headers={"X-Forwarded-For": person}).status_code \
        == 200  # GETs are not limited


@pytest.mark.parametrize("app_config", [{
    "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
    "CONSULTATION_RATE_LIMIT": "3 per minute", "CONSULTATION_ATTEMPT_LIMIT": "12 per minute",
}])
def test_error_round_trips_do_not_use_up_the_limit_but_a_flood_still_stops(client):
    person = {"REMOTE_ADDR": address()}

    def post(data):
        return client.post("/consultation", data=data, environ_base=person).status_code

    # A person fixing mistakes, round trip after round trip, never meets a 429 ...
    assert [post({}) for _ in range(6)] == [200] * 6
    # ... while POSTs that do something count against the tight limit,
    assert [post(ELIGIBLE) for _ in range(4)] == [302, 302, 302, 429]
    # and a flood of anything meets the generous attempt limit.
    flood = [post({}) for _ in range(5)]
    assert 429 in flood
