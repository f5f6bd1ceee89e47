"""What people type, through the details page: names of any script are stored
composed (NFC); line breaks, tabs, invisible and bidi characters, digits and
symbols are refused with a message beside the field; only the page's own tick
is consent. Rows are counted in consultation_request whatever their status."""

from __future__ import annotations

import html
import itertools
import re
import unicodedata

import pytest
from sqlalchemy import func, select

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.models import ConsultationRequest
from portal.public.forms import NO_SLOT
from tests.test_public_flow import form_data, pass_eligibility, send
from tests.test_text_rules import GOOD_NAMES

_people = itertools.count(1)


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ConsultationRequest))


def fresh_form(client, **fields) -> dict:
    """A valid form of a new person (own email and phone), asking for no time."""
    n = next(_people)
    pass_eligibility(client)
    person = {"email": f"person{n}@example.com", "phone": f"(415) 555-{n:04d}", "slot": NO_SLOT}
    return form_data(client, **{**person, **fields})


def field_error(page: str, field: str) -> str | None:
    """The message shown beside ``field``, or None."""
    found = re.search(rf'<p class="field-error" id="{field}-error">'
                      r'<span class="visually-hidden">Error:</span> ([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else None


def test_names_of_any_script_are_stored_as_typed_and_composed(app, client):
    typed = [*GOOD_NAMES, "Zoe\u0308", "Nguye\u0302\u0303n", "e\u0301" * 80]
    for name in typed:
        visitor = app.test_client()  # a browser's next request replaces its pending one
        response = send(visitor, fresh_form(visitor, first_name=name, last_name=name))
        assert response.status_code == 302, (name, field_error(response.text, "first_name"))
    with app.app_context():
        rows = db.session.scalars(select(ConsultationRequest).order_by(ConsultationRequest.id))
        names = [(row.first_name, row.last_name) for row in rows]
    composed = [unicodedata.normalize("NFC", name) for name in typed]
    assert names == [(name, name) for name in composed]
    assert composed[-3:] == ["Zo\u00eb", "Nguy\u1ec5n", "\u00e9" * 80]  # 160 typed, 80 kept


ONE_LINE = "Enter {} on one line, without line breaks or tabs"
INVISIBLE = "{} contains invisible characters, which can come from copying and pasting. " \
            "Type it in again"
LETTERS = "{} can only use letters, spaces, hyphens (-), apostrophes (') and periods (.)"
REFUSED = [
    ("first_name", "Ana\r\nBcc: someone@example.com", ONE_LINE.format("your first name")),
    ("last_name", "Rivera\tLee", ONE_LINE.format("your last name")),
    ("last_name", "Rivera\u2028Lee", ONE_LINE.format("your last name")),
    ("first_name", "Ana\u200bLee", INVISIBLE.format("Your first name")),
    ("last_name", "\u202enagiR", INVISIBLE.format("Your last name")),
    ("first_name", "Ana\u2066Lee\u2069", INVISIBLE.format("Your first name")),
    ("first_name", "Casey2", "Your first name can only use letters, not numbers"),
    ("first_name", "<script>alert(1)</script>", LETTERS.format("Your first name")),
    ("last_name", "Rivera \U0001F600", LETTERS.format("Your last name")),
    ("last_name", "--", "Enter your last name using letters"),
    ("first_name", "e\u0301" * 81, "Your first name must be 80 characters or fewer"),
    ("email", "casey@example.com\r\nBcc: x@example.com", ONE_LINE.format("your email address")),
    ("email", "casey\u200d@example.com", INVISIBLE.format("Your email address")),
    ("phone", "(415) 555\u200b-0100", INVISIBLE.format("Your phone number")),
    ("phone", "415\n5550100", ONE_LINE.format("your phone number")),
]
# "Help us prepare" (after the code) asks for the message.
REFUSED_LATER = [
    ("message", "Evenings are best\u202e", INVISIBLE.format("Your message")),
    ("message", "Hi\u0007", INVISIBLE.format("Your message")),
]


def booked(client, app) -> str:
    """A confirmed request of a new person; its public id."""
    response = send(client, fresh_form(client))
    assert response.location == "/consultation/verify"
    from tests.test_public_flow import enter_code

    confirmed = enter_code(client, app, f"person{next(_people) - 1}@example.com")
    return confirmed.location.rpartition("/")[2]


def test_names_and_one_line_answers_that_cannot_be_stored_are_refused_beside_the_field(
        app, client):
    for field, value, message in REFUSED:
        response = send(client, fresh_form(client, **{field: value}))
        assert response.status_code == 200, (field, value)
        assert field_error(response.text, field) == message, (field, value)
    assert stored(app) == 0
    public_id = booked(client, app)
    for field, value, message in REFUSED_LATER:
        response = client.post(f"/consultation/prepare/{public_id}", data={field: value})
        assert response.status_code == 302, (field, value)
        assert field_error(client.get(response.location).text, field) == message, (field, value)
    with app.app_context():
        assert db.session.scalar(select(ConsultationRequest.message)) == ""


@pytest.mark.parametrize("field", ["first_name", "email", "phone", "message"])
def test_a_nul_byte_is_refused_before_the_form(app, client, field):
    """No keyboard types NUL, and PostgreSQL cannot store it: the request is refused
    at the edge (portal/web/edge.py) with the 400 page, before any field is judged."""
    response = client.post("/consultation/details", data=fresh_form(client, **{field: "Hi\x00"}))
    assert response.status_code == 400
    assert "Something went wrong with that request" in response.text
    assert stored(app) == 0


def test_a_message_keeps_its_line_breaks_counted_once(app, client):
    start = "Hello,\r\n\r\nEvenings\tare best." + "\r\n" * 200
    message = start + "x" * (2000 - len(start.replace("\r\n", "\n")))  # 2,202 as sent
    public_id = booked(client, app)
    response = client.post(f"/consultation/prepare/{public_id}", data={"message": message})
    assert response.status_code == 302
    with app.app_context():
        kept = db.session.scalar(select(ConsultationRequest.message))
    assert kept == message.replace("\r\n", "\n") and len(kept) == 2000


NOT_A_TICK = ["0", "no", "off", "false", "False", "", "n", "N", "yes", "on", "1", "true", "Y",
              "y ", " y", "y\r\n", "\u0443"]


@pytest.mark.parametrize("box", ["consent_privacy", "ack_not_emergency"])
def test_only_the_pages_own_tick_is_agreement(app, client, box):
    send(client, fresh_form(client, **{box: ""}))
    # What a checked box sends:
    assert re.search(rf'name="{box}" value="y"', client.get("/consultation/check").text)
    for value in [*NOT_A_TICK, ["y", "n"], ["n", "y"], None]:
        data = fresh_form(client)
        if value is None:
            del data[box]
        else:
            data[box] = value
        response = send(client, data)
        assert response.status_code == 200, value
        assert field_error(response.text, box), value
    assert stored(app) == 0
    assert send(client, fresh_form(client)).status_code == 302
    assert stored(app) == 1


@pytest.mark.parametrize("value", ["no", "0", "off", "false"])
def test_a_suggested_email_is_kept_only_with_the_pages_tick(app, client, value):
    data = fresh_form(client, email="casey@gmial.com")
    response = send(client, {**data, "email_as_typed": value})
    assert field_error(response.text, "email").startswith("Did you mean casey@gmail.com?")
    assert stored(app) == 0
    response = send(client, {**data, "email_as_typed": "y"})
    assert response.status_code == 302 and stored(app) == 1


def test_zip_code_on_one_line(app, client):
    response = client.post("/consultation", data={"zip_code": "941\n10", "adult": "yes",
                                                  "ca_resident": "yes", "in_california": "yes"})
    assert response.status_code == 302
    page = client.get(response.location).text
    assert field_error(page, "zip_code") == ONE_LINE.format("your ZIP code")


# -- the back office ------------------------------------------------------------------

def test_staff_one_line_fields_refuse_line_breaks_and_notes_keep_them(app, admin, cast):
    url = f"/admin/therapists/{cast.therapist_id}"
    with app.app_context():
        before = db.session.get(Therapist, cast.therapist_id).name
    good = {"email": "maya@example.com", "licence_type": "LMFT", "licence_number": "123456",
            "accepting_new": "y"}
    for name in ("Maya\r\nBcc: x@example.com", "Maya \u202eLMFT", "Maya\tAlvarez"):
        response = admin.post(url, data={**good, "name": name})
        assert response.status_code == 400 and field_error(response.text, "name"), name
    response = admin.post(url, data={**good, "name": "Maya", "licence_number": "12\n34"})
    assert field_error(response.text, "licence_number") == ONE_LINE.format("the license number")
    response = admin.post("/admin/users/new", data={
        "email": "new\r\n@example.com", "password": "a long enough password", "role": "admin",
        "therapist_id": 0, "active": "y"})
    assert response.status_code == 200 and field_error(response.text, "email")
    with app.app_context():
        assert db.session.get(Therapist, cast.therapist_id).name == before
    assert admin.post(url, data={**good, "name": "Maya Alvarez-Ruiz, PhD"}).status_code == 302

    notes = f"/admin/requests/{cast.mine}/notes"
    response = admin.post(notes, data={"body": "Called.\r\nNo answer.\u202e"})
    assert response.status_code == 400 and field_error(response.text, "body")
    assert admin.post(notes, data={"body": "Called.\r\nNo answer."}).status_code == 302
