"""The waitlist over HTTP: joining it at step 2, offers when a time frees up (each way a
time frees up), the offer page (opening it changes nothing; the first click books; the
second, or a visitor who was quicker, gets "just taken"), leaving it from the manage
page, and the back office's Waitlist page."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal.admin.blueprint import pacific_datetime
from portal.booking import consultations, waitlist
from portal.booking.scheduling import PACIFIC, format_slot_long, parse_slot_value, slot_value
from portal.booking.therapists import Therapist
from portal.database import begin_write
from portal.extensions import db
from portal.links import manage_token
from portal.messages import upkeep
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, WaitlistOffer
from tests.backoffice import database_snapshot, sign_in
from tests.factories import future_slot, make_request, make_therapist, make_time_off, make_user
from tests.test_public_flow import enter_code, form_data, pass_eligibility, send

OFFER_LINK = re.compile(r"https://portal\.example\.com(/waitlist/[A-Za-z0-9._-]+)")


def waiting(therapist=None, **fields) -> ConsultationRequest:
    """An open request without a time, on the waitlist (for ``therapist`` or any)."""
    return make_request(therapist, None, waitlist=True, **fields)


def offers_to(app, email: str) -> list[OutboxEmail]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxEmail).where(
            OutboxEmail.kind == "waitlist_offer", OutboxEmail.recipient == email)
            .order_by(OutboxEmail.id)).all()
        db.session.expunge_all()
        return rows


def offer_path(app, email: str) -> str:
    [row] = offers_to(app, email)
    return OFFER_LINK.search(row.body_text).group(1)


def cancel(app, request_id: int) -> None:
    """The practice cancels a booking (the domain function the back office calls)."""
    with app.app_context():
        begin_write()
        consultations.cancel_booking(db.session.get(ConsultationRequest, request_id), by="practice",
                               actor="system")
        db.session.commit()


@pytest.fixture
def freed(app):
    """A therapist, a booking of theirs three days ahead, and three waiting requests:
    one for that therapist, one for any, one for another therapist. Nothing freed yet."""
    with app.app_context():
        # Daniel works evenings only: the freed morning time is Maya's alone.
        maya = make_therapist("Maya Alvarez")
        other = make_therapist("Daniel Okafor", hours=[(d, "18:00", "20:00") for d in range(7)])
        start = future_slot(days=3)
        booked = make_request(maya, start, email="booked@example.com")
        waiting(maya, email="mine@example.com", first_name="Mina")
        waiting(None, email="any@example.com", first_name="Andy")
        waiting(other, email="other@example.com")
        make_request(maya, None, email="notwaiting@example.com")  # never asked
        waiting(maya, email="closed@example.com", status="cancelled")
        waiting(maya, email="scheduled@example.com", status="scheduled")
        db.session.commit()
        return {"therapist": maya.id, "start": start, "booking": booked.id}


# -- joining at step 2 --------------------------------------------------------------

def test_step_two_keeps_the_waitlist_tick_only_with_no_time(app, client):
    with app.app_context():
        make_therapist()
        db.session.commit()
    pass_eligibility(client)
    data = form_data(client, slot="none", waitlist="y", email="late@example.com")
    assert send(client, data).status_code == 302
    assert enter_code(client, app, "late@example.com").status_code == 302
    other = app.test_client()
    pass_eligibility(other)
    data = form_data(other, waitlist="y", email="timed@example.com")  # a time chosen
    assert send(other, data).status_code == 302
    assert enter_code(other, app, "timed@example.com").status_code == 302
    with app.app_context():
        stored = dict(db.session.execute(
            select(ConsultationRequest.email, ConsultationRequest.waitlist)).tuples().all())
    assert stored == {"late@example.com": True, "timed@example.com": False}


def test_the_details_page_offers_the_waitlist_box(app, client):
    with app.app_context():
        make_therapist()
        db.session.commit()
    pass_eligibility(client)
    page = client.get("/consultation/time").text
    assert 'name="waitlist"' in page
    assert '<label class="choice-label" for="waitlist">Email me if an earlier time opens' in page


# -- who is offered a freed time ------------------------------------------------------

@pytest.mark.clock
def test_a_cancellation_offers_the_time_to_those_waiting_for_that_therapist_or_any(
        app, freed, clock):
    cancel(app, freed["booking"])
    when = format_slot_long(freed["start"])
    for email in ("mine@example.com", "any@example.com"):
        [row] = offers_to(app, email)
        assert row.subject == "An earlier consultation time is open"
        assert when in row.body_text and when in row.body_html
        assert "988" in row.body_text and "988" in row.body_html
        day = datetime.now(UTC).astimezone(PACIFIC).date().isoformat()  # the Pacific date
        assert row.key.endswith(f":waitlist:{day}:client")
    assert "Maya Alvarez" in offers_to(app, "mine@example.com")[0].body_text
    for email in ("other@example.com", "notwaiting@example.com", "closed@example.com",
                  "scheduled@example.com"):
        assert offers_to(app, email) == []


def test_at_most_one_offer_a_day_per_client(app, freed):
    with app.app_context():
        second = make_request(db.session.get(Therapist, freed["therapist"]),
                              freed["start"] + timedelta(hours=1), email="second@example.com")
        db.session.commit()
        second_id = second.id
    cancel(app, freed["booking"])
    cancel(app, second_id)
    assert len(offers_to(app, "mine@example.com")) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WaitlistOffer)) == 2
        # The next day (Pacific), a freed time is offered again.
        third = make_request(db.session.get(Therapist, freed["therapist"]),
                             freed["start"] + timedelta(hours=2), email="third@example.com")
        db.session.commit()
        third_id = third.id
    with time_machine.travel(datetime.now(UTC) + timedelta(days=1), tick=True):
        cancel(app, third_id)
    assert len(offers_to(app, "mine@example.com")) == 2


def test_a_time_more_than_a_week_ahead_is_not_offered(app):
    with app.app_context():
        maya = make_therapist()
        later = make_request(maya, future_slot(days=9))
        waiting(maya, email="mine@example.com")
        db.session.commit()
        later_id = later.id
    cancel(app, later_id)
    assert offers_to(app, "mine@example.com") == []


def test_a_client_reschedule_offers_the_old_time(app, client, freed):
    with app.app_context():
        token = manage_token(db.session.get(ConsultationRequest, freed["booking"]))
    page = client.get(f"/manage/{token}/reschedule").text
    new = re.findall(r'name="slot" value="([^"]+)"', page)[-1]
    assert client.post(f"/manage/{token}/reschedule", data={"slot": new,
                                                            "therapist": ""}).status_code == 302
    with app.app_context():
        [offer] = db.session.scalars(select(WaitlistOffer).join(ConsultationRequest).where(
            ConsultationRequest.email == "mine@example.com")).all()
        assert offer.starts_at == freed["start"]


def test_a_client_cancel_from_the_manage_page_offers_the_time(app, client, freed):
    with app.app_context():
        token = manage_token(db.session.get(ConsultationRequest, freed["booking"]))
    assert client.post(f"/manage/{token}/cancel", data={"reason": ""}).status_code == 302
    assert len(offers_to(app, "mine@example.com")) == 1


def test_staff_cancelling_by_status_change_offers_the_time(app, client, freed):
    with app.app_context():
        make_user("admin@example.com")
        db.session.commit()
    sign_in(client, "admin@example.com")
    # "Not a fit" asks first whether to tell the client (portal/admin/declines.py).
    asked = client.post(f"/admin/requests/{freed['booking']}/status",
                        data={"status": "not_a_fit", "note": ""})
    assert asked.status_code == 200 and not offers_to(app, "mine@example.com")
    response = client.post(f"/admin/requests/{freed['booking']}/not-a-fit",
                           data={"tell_client": "no", "note": "", "action": "continue"})
    assert response.status_code == 302
    assert len(offers_to(app, "mine@example.com")) == 1


def test_removing_time_off_offers_its_first_free_time(app, client):
    with app.app_context():
        maya = make_therapist()
        start = future_slot(days=2)
        item = make_time_off(maya, start - timedelta(hours=1), start + timedelta(hours=3))
        waiting(maya, email="mine@example.com")
        make_user("admin@example.com")
        db.session.commit()
        maya_id, item_id = maya.id, item.id
    sign_in(client, "admin@example.com")
    response = client.post(f"/admin/therapists/{maya_id}/time-off/{item_id}/delete")
    assert response.status_code == 302
    with app.app_context():
        [offer] = db.session.scalars(select(WaitlistOffer)).all()
        assert offer.starts_at == start - timedelta(hours=1)


def test_an_expired_verify_hold_offers_its_time(app, client):
    with app.app_context():
        maya = make_therapist()
        waiting(maya, email="mine@example.com")
        db.session.commit()
        maya_id = maya.id
    pass_eligibility(client)
    data = form_data(client, therapist=str(maya_id), slot_index=8, email="visitor@example.com")
    assert send(client, data).status_code == 302
    assert offers_to(app, "mine@example.com") == []
    with app.app_context():
        upkeep.release_expired_holds(datetime.now(UTC) + timedelta(minutes=31))
        [offer] = db.session.scalars(select(WaitlistOffer)).all()
        assert offer.starts_at == parse_slot_value(data["slot"])


# -- the offer page ------------------------------------------------------------------

def test_opening_an_offer_changes_nothing(app, client, freed):
    cancel(app, freed["booking"])
    path = offer_path(app, "mine@example.com")
    before = database_snapshot(app)
    page = client.get(path)
    assert page.status_code == 200
    assert format_slot_long(freed["start"]) in page.text
    assert ">Book this time</button>" in page.text and 'method="post"' in page.text
    assert database_snapshot(app) == before


def test_first_click_books_second_gets_just_taken(app, freed):
    cancel(app, freed["booking"])
    mine, anyone = offer_path(app, "mine@example.com"), offer_path(app, "any@example.com")
    first = app.test_client().post(mine)
    assert first.status_code == 302 and first.location.startswith("/manage/")
    second = app.test_client().post(anyone)
    assert second.status_code == 409
    assert "That time was just taken" in second.text
    assert "still on our waitlist" in second.text
    with app.app_context():
        rows = {r.email: r for r in db.session.scalars(select(ConsultationRequest))}
        assert rows["mine@example.com"].starts_at == freed["start"]
        assert rows["mine@example.com"].therapist_id == freed["therapist"]
        assert rows["mine@example.com"].waitlist is False
        assert rows["any@example.com"].slot_start is None
        assert waitlist.is_waiting(rows["any@example.com"])
        emails = db.session.scalars(select(OutboxEmail).where(
            OutboxEmail.request_id == rows["mine@example.com"].id,
            OutboxEmail.kind.in_(("confirmation", "therapist_notice")))).all()
        kinds = sorted((e.kind, e.recipient) for e in emails)
        assert kinds == [("confirmation", "mine@example.com"),
                         ("therapist_notice", rows["mine@example.com"].therapist.email)]
        confirmation = next(e for e in emails if e.kind == "confirmation")
        assert confirmation.ics and "BEGIN:VEVENT" in confirmation.ics
        assert confirmation.subject == "Your free consultation is booked"
        outcomes = dict(db.session.execute(
            select(ConsultationRequest.email, WaitlistOffer.outcome).join(
                WaitlistOffer, WaitlistOffer.request_id == ConsultationRequest.id)).all())
        assert outcomes == {"mine@example.com": "booked", "any@example.com": "taken"}
    # The second client's link now says the same, without a button.
    again = app.test_client().get(anyone)
    assert "That time was just taken" in again.text and "Book this time" not in again.text


def test_a_double_click_books_once(app, client, freed):
    cancel(app, freed["booking"])
    path = offer_path(app, "mine@example.com")
    assert client.post(path).status_code == 302
    assert client.post(path).status_code == 302  # back to the manage page, nothing more
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail).where(
            OutboxEmail.kind == "confirmation")) == 1


def test_a_new_visitor_who_takes_the_time_first_wins(app, freed):
    cancel(app, freed["booking"])
    path = offer_path(app, "mine@example.com")
    visitor = app.test_client()
    pass_eligibility(visitor)
    data = form_data(visitor, therapist=str(freed["therapist"]), email="new@example.com",
                     slot=slot_value(freed["start"]))
    assert f'value="{data["slot"]}"' in visitor.get(
        f"/consultation/time?therapist={freed['therapist']}").text  # offered to all
    assert send(visitor, data).status_code == 302
    page = app.test_client().get(path)
    assert "That time was just taken" in page.text
    response = app.test_client().post(path)
    assert response.status_code == 409 and "still on our waitlist" in response.text


def test_a_bad_or_forged_link_is_not_found(app, client, freed):
    cancel(app, freed["booking"])
    path = offer_path(app, "mine@example.com")
    assert client.get(path[:-3]).status_code == 404
    assert client.get("/waitlist/not-a-token").status_code == 404
    assert client.post("/waitlist/not-a-token").status_code == 404


@pytest.mark.slow
@pytest.mark.postgres
def test_many_waiting_clients_click_at_once_one_gets_the_time(app):
    people = 8
    with app.app_context():
        maya = make_therapist()
        start = future_slot(days=2)
        booked = make_request(maya, start)
        for n in range(people):
            waiting(None, email=f"w{n}@example.com")
        db.session.commit()
        booked_id = booked.id
    cancel(app, booked_id)
    paths = [offer_path(app, f"w{n}@example.com") for n in range(people)]
    go = threading.Barrier(people)

    def click(path):
        go.wait()
        return app.test_client().post(path)

    with ThreadPoolExecutor(people) as pool:
        responses = list(pool.map(click, paths))
    assert sorted(r.status_code for r in responses) == [302] + [409] * (people - 1)
    with app.app_context():
        holders = db.session.scalar(select(func.count()).select_from(ConsultationRequest).where(
            ConsultationRequest.slot_start == start.replace(tzinfo=None),
            ConsultationRequest.status.in_(("new", "contacted", "scheduled"))))
        assert holders == 1


# -- leaving, and the back office ------------------------------------------------------

def test_the_client_leaves_the_waitlist_from_the_manage_page(app, client, freed):
    with app.app_context():
        mine = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.email == "mine@example.com"))
        token = manage_token(mine)
    page = client.get(f"/manage/{token}").text
    assert "You're on the waitlist" in page
    assert client.post(f"/manage/{token}/waitlist/leave").status_code == 302
    assert "You're on the waitlist" not in client.get(f"/manage/{token}").text
    cancel(app, freed["booking"])
    assert offers_to(app, "mine@example.com") == []
    assert len(offers_to(app, "any@example.com")) == 1


def test_the_back_office_lists_the_waitlist(app, client, freed):
    with app.app_context():
        make_user("admin@example.com")
        make_user("maya@example.com", role="therapist",
                  therapist=db.session.get(Therapist, freed["therapist"]))
        mine = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.email == "mine@example.com"))
        db.session.commit()
        mine_id = mine.id
    cancel(app, freed["booking"])
    sign_in(client, "admin@example.com")
    page = client.get("/admin/waitlist").text
    assert "Mina" in page and "Andy" in page
    assert "closed@example.com" not in page and page.count("/admin/requests/") == 3
    with app.app_context():
        assert f"Offered {pacific_datetime(freed['start'])}" in page
    detail = client.get(f"/admin/requests/{mine_id}").text
    assert "On the waitlist" in detail and "Waitlist: freed time offered" in detail
    therapist = app.test_client()
    sign_in(therapist, "maya@example.com")
    theirs = therapist.get("/admin/waitlist").text
    assert "Mina" in theirs and "Andy" not in theirs
