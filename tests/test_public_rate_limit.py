"""The rate limit on the public POSTs, counted in Redis (shared by every worker)
and keyed on the address ProxyFix trusts, so a forged X-Forwarded-For hop
cannot reset it. Skips when Redis is unreachable, unless TEST_REDIS_URL is set.
Only progress counts against the tight limit (an eligible answer, a stored request, a
cancellation or a new time): fixing errors, or a not-eligible answer, never hits it.
A limited form comes back with its answers, the wait in words and the phone number."""

from __future__ import annotations

import html
import os
import re
import secrets

import pytest
import redis
from sqlalchemy import select

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.links import manage_token
from portal.models import ConsultationRequest
from portal.networks import client_network
from portal.public.rate_limits import wait_in_words
from tests.factories import future_slot, make_request
from tests.test_public_flow import (
    ELIGIBLE,
    form_data,
    pass_eligibility,
    requests_stored,
    send,
)

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
    # Limits count per /64: each address gets a /64 of its own.
    return f"2001:db8:{secrets.token_hex(2)}:{secrets.token_hex(2)}::1"


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
    assert list(store.scan_iter(match=f"*{client_network(person)}*"))
    assert post(other) == 302  # another person is not affected
    page = client.post("/consultation", headers={"X-Forwarded-For": person})
    assert page.status_code == 429 and "we've paused it for about" in html.unescape(page.text)
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

    # A person fixing mistakes, round trip after round trip, never meets a 429 (each
    # answer with errors redirects back to the page, which shows them) ...
    assert [post({}) for _ in range(6)] == [302] * 6
    # ... while POSTs that do something count against the tight limit,
    assert [post(ELIGIBLE) for _ in range(4)] == [302, 302, 302, 429]
    # and a flood of anything meets the generous attempt limit.
    flood = [post({}) for _ in range(5)]
    assert 429 in flood


MEMORY = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
          "CONSULTATION_RATE_LIMIT": "10 per hour", "CONSULTATION_ATTEMPT_LIMIT": "100 per hour"}
NOT_ELIGIBLE = [{**ELIGIBLE, "ca_resident": "no"}, {**ELIGIBLE, "in_california": "no"},
                {**ELIGIBLE, "ca_resident": "no", "zip_code": "97201"}]


def said_wait(page: str) -> str:
    return re.search(r"paused it for (about \d+ \w+)", html.unescape(page)).group(1)


def assert_wait_matches_retry_after(response):
    """The words say the header's wait, in minutes rounded up (the header is read a
    moment after the words were written, so it may be a second shorter)."""
    retry_after = int(response.headers["Retry-After"])
    assert retry_after > 60
    assert said_wait(response.text) in {wait_in_words(retry_after),
                                        wait_in_words(retry_after + 1)}


@pytest.mark.parametrize("app_config", [MEMORY])
def test_only_eligible_answers_count_and_the_eleventh_keeps_its_answers(client):
    person = {"REMOTE_ADDR": address()}

    def post(data):
        return client.post("/consultation", data=data, environ_base=person)

    # Not-eligible answers and answers with errors never use up the booking limit ...
    for data in NOT_ELIGIBLE * 4:
        assert post(data).location.startswith("/consultation/not-eligible")
    for data in ({}, {**ELIGIBLE, "zip_code": "9411"}, {**ELIGIBLE, "adult": ""}) * 4:
        assert post(data).location == "/consultation"
    # ... ten eligible answers in an hour do, and the eleventh is paused, not lost.
    assert [post(ELIGIBLE).status_code for _ in range(10)] == [302] * 10
    typed = {**ELIGIBLE, "zip_code": "94117"}
    response = post(typed)
    assert response.status_code == 429
    page = response.text
    assert_wait_matches_retry_after(response)
    assert said_wait(page).endswith("minutes") and "a few minutes" not in page
    assert "call us at (555) 010-0199" in page and 'href="tel:988"' in page
    assert 'role="alert"' in page and page.count("paused it for") == 1
    assert '<title>Error: ' in page
    # What was typed is still on the form, ready to send again.
    assert 'name="zip_code" type="text" value="94117"' in page or 'value="94117"' in page
    assert re.search(r'name="ca_resident"[^>]*value="yes" checked|value="yes" checked', page)


@pytest.mark.parametrize("app_config", [{**MEMORY, "CONSULTATION_RATE_LIMIT": "1 per hour"}])
def test_a_limited_details_post_comes_back_with_everything_typed(app, client, therapist_id):
    person = {"REMOTE_ADDR": address()}
    pass_eligibility(client)
    first = send(client, form_data(client), environ_base=person)
    assert first.status_code == 302 and first.location == "/consultation/verify"
    data = form_data(client, first_name="Jordana", email="jordana@example.com")
    response = send(client, data, environ_base=person)
    assert response.status_code == 429
    assert_wait_matches_retry_after(response)
    page = response.text
    # The check page again, every answer on it and ready to send once the wait is over.
    assert "<h1>Check your answers</h1>" in page and "Send my request" in page
    assert "Jordana Rivera" in page and "jordana@example.com" in page
    assert 'name="consent_privacy" value="y" checked' in page
    assert "call us at (555) 010-0199" in page
    assert len(requests_stored(app)) == 1  # the limited one stored nothing


@pytest.mark.parametrize("app_config", [{**MEMORY, "CONSULTATION_RATE_LIMIT": "1 per hour"}])
def test_a_limited_cancel_keeps_the_booking_and_the_reason(app, client, therapist_id):
    with app.app_context():
        therapist = db.session.get(Therapist, therapist_id)
        first, second = (make_request(therapist, future_slot(days=days)) for days in (3, 4))
        db.session.commit()
        (first_id, first_url), (second_id, second_url) = (
            (row.id, f"/manage/{manage_token(row)}") for row in (first, second))
    person = {"REMOTE_ADDR": address()}
    assert client.post(first_url + "/cancel", data={"reason": "x" * 2001},
                       environ_base=person).status_code == 200  # an error: not counted
    assert client.post(first_url + "/cancel", environ_base=person).status_code == 302
    response = client.post(second_url + "/cancel", data={"reason": "Moving away soon"},
                           environ_base=person)
    assert response.status_code == 429
    assert_wait_matches_retry_after(response)
    assert "Moving away soon</textarea>" in response.text
    assert "Are you sure you want to cancel" in response.text
    with app.app_context():
        statuses = {row.id: row.status for row in db.session.scalars(
            select(ConsultationRequest))}
    assert statuses == {first_id: "cancelled", second_id: "new"}


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "about 1 minute"), (1, "about 1 minute"), (60, "about 1 minute"),
    (61, "about 2 minutes"), (3120, "about 52 minutes"), (3599, "about 60 minutes"),
    (5340, "about 89 minutes"), (7200, "about 2 hours"), (86400, "about 24 hours"),
])
def test_the_wait_in_words(seconds, words):
    assert wait_in_words(seconds) == words
