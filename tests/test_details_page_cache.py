"""Step 2's questions on a fresh visit are rendered once and reused
(portal.public.details_page): the reused copy must always show the free times the
database has now, in the visitor's language, and never keep what a visitor typed.
The therapists are read as plain values (availability.bookable_therapist_cards)."""

from __future__ import annotations

import re

from sqlalchemy import delete

from portal.booking.availability import bookable_therapist_cards, bookable_therapists
from portal.booking.scheduling import parse_slot_value
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.models import ConsultationRequest
from portal.public.details_page import fragment_cache
from tests.factories import make_request, make_therapist
from tests.test_public_flow import details_page, form_data, pass_eligibility, send

SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')


def kept_pages(app) -> list[str]:
    with app.test_request_context():
        return [str(html) for html in fragment_cache().values()]


def test_a_time_booked_since_the_last_visit_is_gone_from_the_next(app, client, therapist_id):
    pass_eligibility(client)
    shown = SLOT_VALUE.findall(details_page(client))
    assert SLOT_VALUE.findall(details_page(client)) == shown  # the kept copy, same times
    assert len(kept_pages(app)) == 1
    with app.app_context():
        make_request(db.session.get(Therapist, therapist_id), parse_slot_value(shown[1]))
        db.session.commit()
    assert SLOT_VALUE.findall(details_page(client)) == shown[:1] + shown[2:]
    with app.app_context():  # and a freed time comes back
        db.session.execute(delete(ConsultationRequest))
        db.session.commit()
    assert SLOT_VALUE.findall(details_page(client)) == shown


def test_the_kept_questions_follow_the_language_and_the_therapist(app, client, therapist_id):
    pass_eligibility(client)
    english = details_page(client)
    spanish = client.get("/consultation/time",
                         headers={"Accept-Language": "es-MX,es;q=0.9"}).text
    assert "Which time would suit you?" in english
    assert "Which time would suit you?" not in spanish
    assert 'lang="es"' in spanish
    assert "¿Qué hora le queda mejor?" in spanish
    chosen = re.sub(r"\s+", " ", details_page(client, therapist=str(therapist_id)))
    assert f'<option value="{therapist_id}" selected>' in chosen
    assert "Showing free times for <strong>Maya Alvarez</strong>" in chosen  # the kept part
    anyone = re.sub(r"\s+", " ", details_page(client))
    assert '<option value="any" selected>' in anyone and "Showing free times" not in anyone
    assert len(kept_pages(app)) == 3


def test_a_page_with_what_a_visitor_typed_is_never_kept(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, first_name="Zephyrine", email="not-an-email")
    page = send(client, data).text
    assert "Zephyrine" in page and "There is a problem" in page
    assert kept_pages(app) and not any("Zephyrine" in html for html in kept_pages(app))


def test_the_cards_are_the_bookable_therapists_with_their_hours(app):
    with app.app_context():
        make_therapist("Ana Ruiz", hours=[(0, "09:00", "12:00"), (2, "13:00", "17:30")])
        make_therapist("Bo Chen", hours=[])
        make_therapist("Cy Park", accepting_new=False)
        make_therapist("Di Lee", active=False)
        db.session.commit()
        cards = bookable_therapist_cards()
        orm = bookable_therapists()
        assert [(c.id, c.name, c.licence_type, c.licence_number) for c in cards] == [
            (t.id, t.name, t.licence_type, t.licence_number) for t in orm]
        assert [c.name for c in cards] == ["Ana Ruiz", "Bo Chen"]
        assert [[(h.weekday, h.start, h.end) for h in c.hours] for c in cards] == [
            [(h.weekday, h.start, h.end) for h in t.hours] for t in orm]
