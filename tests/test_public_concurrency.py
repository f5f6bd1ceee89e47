"""Twenty people press "Book consultation" for the same therapist and time at the
same moment: one booking, nineteen "just taken" pages, no errors. Runs on SQLite
(a file database, BEGIN IMMEDIATE) and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ConsultationRequest
from tests.factories import make_therapist
from tests.test_public_flow import form_data, pass_eligibility, send

PEOPLE = 20


@pytest.mark.slow
@pytest.mark.postgres
def test_twenty_people_one_slot(app):
    with app.app_context():
        therapist = make_therapist()
        db.session.commit()
        therapist_id = str(therapist.id)
    clients, forms = [], []
    for n in range(PEOPLE):
        client = app.test_client()
        pass_eligibility(client)
        forms.append(form_data(client, therapist_id, email=f"person{n}@example.com",
                               phone=f"(415) 555-01{n:02d}", first_name=f"Person {chr(65 + n)}"))
        # Time and "about you" first: the check page's "Send my request" is the race.
        checked = send(client, {**forms[-1], "consent_privacy": ""})
        assert "<title>Error: Check your answers" in checked.text
        clients.append(client)
    assert len({form["slot"] for form in forms}) == 1
    start = threading.Barrier(PEOPLE)
    agreements = ("consent_privacy", "ack_not_emergency", "form_token")

    def submit(n):
        start.wait()
        return clients[n].post("/consultation/check",
                               data={name: forms[n][name] for name in agreements})

    with ThreadPoolExecutor(PEOPLE) as pool:
        responses = list(pool.map(submit, range(PEOPLE)))

    assert sorted(r.location for r in responses) == (
        ["/consultation/check"] * (PEOPLE - 1) + ["/consultation/verify"])
    losers = [clients[n] for n, r in enumerate(responses) if r.location == "/consultation/check"]
    assert all("That time was just taken" in c.get("/consultation/check").text for c in losers)
    with app.app_context():
        holders = db.session.scalar(select(func.count()).select_from(ConsultationRequest).where(
            ConsultationRequest.therapist_id == int(therapist_id),
            ConsultationRequest.status != "cancelled"))
        assert holders == 1


@pytest.mark.slow
@pytest.mark.postgres
def test_wrong_codes_sent_at_once_count_five_tries_at_most(app):
    """Ten wrong codes for one pending request at the same moment (one browser, many
    tabs): five are counted, the fifth drops the request, and nothing answers 5xx."""
    with app.app_context():
        make_therapist()
        db.session.commit()
    first = app.test_client()
    pass_eligibility(first)
    assert send(first, form_data(first)).status_code == 302
    cookie = first.get_cookie("session").value
    tabs = []
    for _ in range(10):
        tab = app.test_client()
        tab.set_cookie("session", cookie)
        tabs.append(tab)
    start = threading.Barrier(len(tabs))

    def guess(tab):
        start.wait()
        return tab.post("/consultation/verify", data={"code": "000000"})

    with ThreadPoolExecutor(len(tabs)) as pool:
        responses = list(pool.map(guess, tabs))
    assert all(r.status_code == 200 for r in responses)
    texts = [r.text for r in responses]
    # Four "doesn't match" pages with 4..1 tries left, one that drops the request; the
    # rest find it gone. (Each try is counted once: no two pages show the same count.)
    counted = [t for t in texts if "more tr" in t]
    assert len(counted) == len(set(counted)) <= 4
    assert sum("couldn" in t and "confirm your email" in t for t in texts) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ConsultationRequest)) == 0
