"""Holding times without confirming: public limits count per network (an IPv6 /64, an
IPv4 address), and unconfirmed requests may hold only a few times per network and per
therapist. The visitor over a cap is asked to choose "None of these times work" (nothing
about other people's requests, whichever cap it was); the dashboard shows the count;
and the caps hold when many post at once, through a live server on both databases."""

from __future__ import annotations

import html
import http.cookiejar
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ConsultationRequest, EmailVerification
from portal.networks import client_network, network_key
from portal.public.messages import hold_limit_message
from tests.conftest import LiveServer
from tests.factories import make_therapist
from tests.test_public_flow import (
    ELIGIBLE,
    FORM_TOKEN,
    SLOT_VALUE,
    STEPS,
    enter_code,
    form_data,
    pass_eligibility,
    send,
)

CAPS = {"UNVERIFIED_HOLDS_PER_NETWORK": 2, "UNVERIFIED_HOLDS_PER_THERAPIST": 100,
        "PROXY_FIX_X_FOR": 1}
OVER_THE_CAP = "We can't hold a time for you online right now."
# Where "Send my request" over a cap leads: back to the times, whose GET says why.
BACK_TO_THE_TIMES = "/consultation/time?from=check#times"


@pytest.fixture
def app_config(request):
    return getattr(request, "param", CAPS)


def said(response) -> str:
    return html.unescape(response.text)


def visitor(app, address: str):
    """A test client whose every request comes from ``address`` (through the proxy)."""
    client = app.test_client()
    client.environ_base["HTTP_X_FORWARDED_FOR"] = address
    return client


def held(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(ConsultationRequest.id)).where(
            ConsultationRequest.status == "pending",
            ConsultationRequest.slot_start.is_not(None)))


def ask(client, n: int, **fields):
    """The whole journey for the ``n``-th time offered: the answer to "Send my request"
    on the check page (where the request is stored and the caps are checked): a redirect
    to the code page, or, over a cap, the time page that redirect leads back to."""
    pass_eligibility(client)
    data = form_data(client, slot_index=n, email=f"person{n}@example.com", **fields)
    for url, names, onwards in STEPS:
        response = client.post(url, data={name: data[name] for name in names
                                          if data.get(name) is not None})
        assert response.status_code == 302, (url, response.text[:500])
        if url != "/consultation/check":
            assert response.location == onwards, (url, response.location)
    if response.location == "/consultation/verify":
        return response
    assert response.location == BACK_TO_THE_TIMES, response.location
    return client.get(response.location)


def shown_over_the_cap(app, response) -> bool:
    """The time page over a cap: the kind message, in the error summary at the top."""
    with app.test_request_context():
        message = hold_limit_message(app.config["PRACTICE_PHONE"])
    summary = response.text.partition('class="error-summary" role="alert"')[2]
    return response.status_code == 200 and message in html.unescape(summary)


# -- networks -----------------------------------------------------------------------

@pytest.mark.parametrize("address, network", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("", "unknown"), (None, "unknown"), ("not an address", "not an address"),
])
def test_a_visitor_counts_by_network(address, network):
    assert client_network(address) == network


def test_the_stored_network_is_a_keyed_hash_of_the_64():
    same = network_key("2001:db8:1:2::1", "k"), network_key("2001:db8:1:2:ffff::9", "k")
    assert same[0] == same[1] and len(same[0]) == 32 and "2001" not in same[0]
    assert network_key("2001:db8:1:3::1", "k") != same[0]
    assert network_key("2001:db8:1:2::1", "other secret") != same[0]
    # This machine is no network: every visitor, behind a proxy ProxyFix doesn't trust.
    assert network_key("127.0.0.1", "k") is None and network_key("::1", "k") is None
    assert network_key(None, "k") is None


@pytest.mark.parametrize("app_config", [{
    "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
    "CONSULTATION_RATE_LIMIT": "3 per minute", "PROXY_FIX_X_FOR": 1}], indirect=True)
def test_public_limits_count_an_ipv6_64_as_one_visitor_and_ipv4_by_address(app):
    def post(address):
        return visitor(app, address).post("/consultation", data=ELIGIBLE).status_code

    # A fresh address in the same /64 for every request is still the same visitor.
    assert [post(f"2001:db8:5:6::{n}") for n in range(1, 5)] == [302, 302, 302, 429]
    assert post("2001:db8:5:7::1") == 302  # the next /64 is someone else
    assert [post("198.51.100.1") for _ in range(3)] == [302, 302, 302]
    assert post("198.51.100.1") == 429
    assert post("198.51.100.2") == 302  # IPv4 stays per address


# -- the caps ----------------------------------------------------------------------

def test_one_network_holds_two_times_at_most(app, therapist_id):
    ours = [visitor(app, f"2001:db8:9:9::{n}") for n in range(1, 4)]
    assert ask(ours[0], 0).status_code == 302
    assert ask(ours[1], 1).status_code == 302
    refused = ask(ours[2], 2, first_name="Sentinel")
    assert shown_over_the_cap(app, refused)
    assert "call us at" in said(refused) and "988" in said(refused)
    # Everything typed is kept: the time chosen, and the answers of the later steps.
    assert f'value="{SLOT_VALUE.findall(refused.text)[2]}" checked' in refused.text
    assert 'value="Sentinel"' in ours[2].get("/consultation/about").text
    assert "Sentinel" in ours[2].get("/consultation/check").text
    assert held(app) == 2
    # Asking to be contacted holds nothing, so it is never capped.
    assert send(ours[2], form_data(ours[2], slot="none", email="person2@example.com")
                ).location == "/consultation/verify"
    # Loopback (a proxy on this machine that isn't trusted) is not one network.
    assert [ask(visitor(app, "127.0.0.1"), n).status_code for n in (5, 6, 7)] == [302] * 3
    # Another network is not affected.
    assert ask(visitor(app, "2001:db8:9:a::1"), 3).status_code == 302
    # A confirmed request holds its time for good and no longer counts.
    assert enter_code(ours[0], app, email="person0@example.com").status_code == 302
    assert ask(visitor(app, "2001:db8:9:9::5"), 4).status_code == 302


@pytest.mark.parametrize("app_config", [
    {**CAPS, "UNVERIFIED_HOLDS_PER_NETWORK": 100, "UNVERIFIED_HOLDS_PER_THERAPIST": 1}],
    indirect=True)
def test_a_therapist_holds_one_at_most_and_any_therapist_tries_the_next(app):
    with app.app_context():
        make_therapist("Maya Alvarez")
        make_therapist("Jordan Lee")
        db.session.commit()
    assert ask(visitor(app, "192.0.2.1"), 0).status_code == 302
    assert ask(visitor(app, "192.0.2.2"), 0).status_code == 302  # the other therapist
    refused = ask(visitor(app, "192.0.2.3"), 0)
    # Word for word what a network over its cap reads: nothing says which cap it was.
    assert shown_over_the_cap(app, refused)
    assert held(app) == 2
    with app.app_context():
        therapists = db.session.scalars(select(ConsultationRequest.therapist_id)).all()
    assert len(set(therapists)) == 2


@pytest.mark.clock
def test_holds_run_out_with_their_requests(app, therapist_id):
    for n in range(2):
        assert ask(visitor(app, f"192.0.2.{n}"), n).status_code == 302
    assert ask(visitor(app, "192.0.2.0"), 2).status_code == 302  # .0 and .1 differ
    assert shown_over_the_cap(app, ask(visitor(app, "192.0.2.0"), 3))
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=31), tick=False):
        assert ask(visitor(app, "192.0.2.0"), 3).status_code == 302


def test_the_dashboard_shows_the_times_held_now(app, admin, therapist_id):
    for n in range(2):
        assert ask(visitor(app, f"192.0.2.{n}"), n).status_code == 302
    page = admin.get("/admin/").text
    assert "Times they hold now: 2" in page
    with app.app_context():  # counts only: no network, name or address on the page
        keys = db.session.scalars(select(EmailVerification.network_key)).all()
    assert all(key and key not in page for key in keys)
    assert "192.0.2" not in page and "person0" not in page


# -- at once, through a live server ------------------------------------------------------

class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """One person's browser: its own cookies, its own address behind the proxy."""

    def __init__(self, base: str, address: str):
        self.base = base
        self.address = address
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirects())

    def open(self, path: str, data: dict | None = None) -> tuple[int, str, str | None]:
        """The status, the page, and where a redirect leads (None for no redirect)."""
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body,
                                         headers={"X-Forwarded-For": self.address})
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode(), None
        except urllib.error.HTTPError as error:
            location = error.headers.get("Location")
            if location is not None:  # the path, as the test client's locations are
                location = location.removeprefix(self.base)
            return error.code, error.read().decode(), location


def walk_to_check(browser: Browser, n: int) -> dict:
    """Steps 1 to 3 answered (eligibility, the ``n``-th time offered, about you): what
    "Send my request" on the check page then posts."""
    assert browser.open("/consultation", ELIGIBLE)[::2] == (302, "/consultation/time")
    status, page, _ = browser.open("/consultation/time?therapist=any")
    assert status == 200
    answers = (("/consultation/time", {"therapist": "any",
                                       "slot": SLOT_VALUE.findall(page)[n]}),
               ("/consultation/about", {
                   "first_name": "Casey", "last_name": "Rivera",
                   "email": f"person{n}@example.com", "phone": "(415) 555-0123",
                   "meeting": "phone"}))
    for (url, fields), (_, _, onwards) in zip(answers, STEPS, strict=False):
        assert browser.open(url, fields)[::2] == (302, onwards), url
    status, page, _ = browser.open("/consultation/check")
    assert status == 200
    return {"consent_privacy": "y", "ack_not_emergency": "y", "website": "",
            "form_token": FORM_TOKEN.search(page).group(1)}


PEOPLE = 10


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("app_config, same_network, cap", [
    ({**CAPS, "UNVERIFIED_HOLDS_PER_NETWORK": 2}, True, 2),
    ({**CAPS, "UNVERIFIED_HOLDS_PER_NETWORK": 100, "UNVERIFIED_HOLDS_PER_THERAPIST": 3},
     False, 3),
], ids=["per-network", "per-therapist"], indirect=["app_config"])
def test_the_caps_hold_when_many_post_at_once(app, therapist_id, same_network, cap):
    """Ten people send their request at the same moment, each for a time of their own:
    as many as the cap hold a time, the others are sent back to the times to read the
    kind message; no 5xx."""
    server = LiveServer(app)
    server.start()
    try:
        browsers = [Browser(server.url, f"2001:db8:7:7::{n + 1}" if same_network
                            else f"2001:db8:{n + 1}::1") for n in range(PEOPLE)]
        forms = [walk_to_check(browser, n) for n, browser in enumerate(browsers)]
        start = threading.Barrier(PEOPLE)

        def submit(n: int) -> tuple[int, str, str | None]:
            start.wait()
            return browsers[n].open("/consultation/check", forms[n])

        with ThreadPoolExecutor(PEOPLE) as pool:
            answers = list(pool.map(submit, range(PEOPLE)))
        # What each was shown next: the code page, or the times with the message.
        shown = [browser.open(location)[1] if location == BACK_TO_THE_TIMES else None
                 for browser, (_, _, location) in zip(browsers, answers, strict=True)]
    finally:
        server.stop()
    where = sorted((status, location) for status, _, location in answers)
    assert where == [(302, BACK_TO_THE_TIMES)] * (PEOPLE - cap) \
        + [(302, "/consultation/verify")] * cap, where
    assert all(OVER_THE_CAP in html.unescape(page) for page in shown if page is not None)
    assert held(app) == cap


def test_the_message_over_the_cap_speaks_spanish_too(app, therapist_id):
    ours = [visitor(app, "198.51.100.9") for _ in range(3)]
    for client in ours:
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es"
    answers = [ask(client, n) for n, client in enumerate(ours)]
    assert [answer.status_code for answer in answers] == [302, 302, 200]
    assert "Ahora mismo no podemos reservarle una hora por internet" in said(answers[2])
    assert "988" in said(answers[2])
