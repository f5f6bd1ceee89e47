"""Redis, the rate limits' storage, going away never turns a booking into a 500: each
process counts in its own memory until Redis answers again (logged once, not on every
request), and the operators' /healthz detail says Redis is unreachable. Against a
port where nothing listens, and a real Redis behind a loopback relay we stop and
start."""

from __future__ import annotations

import logging
import secrets
import time

import pytest
import redis

from portal.networks import client_network
from tests.conftest import free_port
from tests.test_database_outage import TcpRelay
from tests.test_public_flow import ELIGIBLE
from tests.test_public_rate_limit import redis_or_skip

TOKEN = secrets.token_urlsafe(32)
LIMITS = {"RATELIMIT_ENABLED": True, "CONSULTATION_RATE_LIMIT": "3 per minute",
          "PROXY_FIX_X_FOR": 1, "HEALTHZ_TOKEN": TOKEN,
          # A real server's error handlers, not the test client's re-raised exception.
          "PROPAGATE_EXCEPTIONS": False}


@pytest.fixture
def app_config(request):
    return getattr(request, "param", {})


def address() -> str:
    return f"2001:db8:{secrets.token_hex(2)}::1"


def post(client, person: str) -> int:
    return client.post("/consultation", data=ELIGIBLE,
                       headers={"X-Forwarded-For": person}).status_code


def redis_detail(client) -> str:
    response = client.get("/healthz?detail=1", headers={"Authorization": f"Bearer {TOKEN}"})
    return response.get_json()["redis"]


def counted_in_redis(store: redis.Redis, person: str) -> bool:
    # The key names the network as the limiter writes it (2001:db8:5b9::/64 for
    # 2001:db8:05b9::1), so the pattern comes from the same function.
    return bool(list(store.scan_iter(match=f"*{client_network(person)}*")))


def fallback_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "falling back to in-memory" in r.getMessage()]


@pytest.mark.parametrize("app_config", [
    {**LIMITS, "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0"}], indirect=True)
def test_a_redis_that_is_not_there_still_books_and_still_limits(client, caplog):
    caplog.set_level(logging.INFO)
    person, other = address(), address()
    assert [post(client, person) for _ in range(3)] == [302, 302, 302]
    limited = client.post("/consultation", data=ELIGIBLE, headers={"X-Forwarded-For": person})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "call or text 988" in limited.text
    assert post(client, other) == 302
    # The back office's sign-in is limited the same way: a refusal, never a 500.
    signed = client.post("/admin/login", data={"email": "a@example.com", "password": "x" * 12})
    assert signed.status_code == 200 and "Traceback" not in signed.text
    assert len(fallback_lines(caplog)) == 1  # once, not on every request
    assert "Traceback" not in caplog.text
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    assert redis_detail(client) == "unreachable"


@pytest.fixture
def relay():
    port = int(redis_or_skip().rsplit(":", 1)[1].split("/")[0])
    relay = TcpRelay(port)
    relay.start()
    yield relay
    relay.stop()


def test_redis_going_away_and_coming_back(database_url, relay, caplog):
    from tests.conftest import clear_database, make_app

    app = make_app(database_url, **LIMITS,
                   RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{relay.port}/15")
    store = redis.Redis.from_url(redis_or_skip())
    client = app.test_client()
    caplog.set_level(logging.INFO)
    try:
        person = address()
        assert [post(client, person) for _ in range(2)] == [302, 302]
        assert counted_in_redis(store, person)
        relay.stop()  # a restart, as the app sees it: the connection is cut
        assert [post(client, address()) for _ in range(3)] == [302, 302, 302]
        assert redis_detail(client) == "unreachable"
        assert len(fallback_lines(caplog)) == 1
        relay.start()
        assert redis_detail(client) == "ok"
        # Flask-Limiter looks again after a growing pause; counts go back to Redis.
        deadline = time.monotonic() + 20
        while True:
            again = address()
            assert post(client, again) == 302
            if counted_in_redis(store, again):
                break
            assert time.monotonic() < deadline, "counting never went back to Redis"
            time.sleep(0.2)
    finally:
        clear_database(app)
