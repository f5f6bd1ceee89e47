"""A reschedule keeps the client's therapist unless the client chooses another, also
when that therapist has stopped taking new clients (they keep their existing ones)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.booking.scheduling import parse_slot_value
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.links import manage_token
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.backoffice import sign_in
from tests.factories import future_slot, make_request, make_therapist, make_user

SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')


@pytest.fixture
def booked_with_a_full_therapist(app):
    """Maya no longer takes new clients but keeps this client; Daniel takes anyone."""
    with app.app_context():
        maya = make_therapist("Maya Alvarez", accepting_new=False)
        make_therapist("Daniel Okafor")
        row = make_request(maya, future_slot(days=3))
        db.session.commit()
        return row.id, maya.id, f"/manage/{manage_token(row)}"


def after_move(app, request_id: int) -> tuple[int, int, list[str]]:
    with app.app_context():
        row = db.session.get(ConsultationRequest, request_id)
        kinds = sorted(db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == request_id)))
        return row.therapist_id, row.booking_sequence, kinds


@pytest.mark.parametrize("choice", ["own", "any"])
def test_the_clients_reschedule_stays_with_their_therapist(
        app, client, booked_with_a_full_therapist, choice):
    request_id, maya_id, url = booked_with_a_full_therapist
    query = "?therapist=any" if choice == "any" else ""
    page = client.get(f"{url}/reschedule{query}").text
    if choice == "own":
        assert "Showing free times for Maya Alvarez." in page
        assert f'name="therapist" type="hidden" value="{maya_id}"' in page
    slot = SLOT_VALUE.findall(page)[0]
    response = client.post(f"{url}/reschedule{query}", data={
        "slot": slot, "therapist": "any" if choice == "any" else str(maya_id)})
    assert response.status_code == 302 and response.location == url
    therapist_id, sequence, kinds = after_move(app, request_id)
    # Maya is free then, so she keeps her client, with "any therapist" too; nobody
    # else is told about a consultation that was never theirs.
    assert (therapist_id, sequence) == (maya_id, 1)
    assert kinds == ["rescheduled_client", "rescheduled_therapist"]
    with app.app_context():
        row = db.session.get(ConsultationRequest, request_id)
        assert row.starts_at == parse_slot_value(slot)


def test_the_back_office_reschedule_stays_with_the_therapist(
        app, client, booked_with_a_full_therapist):
    request_id, maya_id, _ = booked_with_a_full_therapist
    with app.app_context():
        make_user("admin@example.com")
        db.session.commit()
    sign_in(client, "admin@example.com")
    page = client.get(f"/admin/requests/{request_id}/reschedule").get_data(as_text=True)
    slots = re.findall(r'<option value="([^"]+)"', page)
    assert slots, "no times offered for the request's own therapist"
    response = client.post(f"/admin/requests/{request_id}/reschedule", data={"slot": slots[0]})
    assert response.status_code == 302
    therapist_id, sequence, kinds = after_move(app, request_id)
    assert (therapist_id, sequence) == (maya_id, 1)
    assert kinds == ["rescheduled_client", "rescheduled_therapist"]


def test_an_inactive_therapists_client_is_offered_everyone_else(
        app, client, booked_with_a_full_therapist):
    request_id, maya_id, url = booked_with_a_full_therapist
    with app.app_context():
        db.session.get(Therapist, maya_id).active = False
        db.session.commit()
    page = client.get(f"{url}/reschedule").text
    assert "Showing free times for all our therapists." in page
