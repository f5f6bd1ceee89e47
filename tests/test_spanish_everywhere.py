"""Spanish everywhere a client reads: every public page, with its errors, and every
client email (text, HTML, subject and calendar file) in Spanish, with no English
sentence left. A text counts as English when it still holds two or more common
English words once names, the practice's name, "PT" and a few proper names are
taken out, or when it is only such words (a button, a label)."""

from __future__ import annotations

import html as html_module
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.booking import declines, rebooking
from portal.booking.waitlist import offer_token
from portal.extensions import db
from portal.links import manage_token
from portal.messages import notifications
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, WaitlistOffer, to_db
from tests.factories import future_slot, make_request, make_therapist
from tests.test_public_flow import ELIGIBLE, book, form_data, pass_eligibility, send

ENGLISH = {"the", "you", "your", "we", "our", "and", "to", "of", "is", "are", "with", "for",
           "this", "that", "please", "call", "time", "request", "consultation", "if", "or",
           "can", "it", "be", "will", "have", "in", "on", "at", "by", "not", "from",
           # words that make a label or a button on their own
           "continue", "reference", "status", "when", "how", "back", "next", "book", "show",
           "times", "choose", "name", "email", "phone", "step", "help", "cancel", "change",
           "keep", "send", "code", "yes", "problem", "home", "page", "exit",
           "loading", "emergency", "booked", "cancelled", "notice", "privacy", "therapist",
           "therapists", "free", "about", "details", "message", "optional"}
# Names that stay as they are in any language.
ALLOWED = ["Woven Together Trauma Therapy", "Maya Alvarez", "Daniel Okafor", "Priya Raman",
           "Casey", "Rivera", "Open Path Collective", "Psychology Today", "FindTreatment.gov",
           "No Surprises Act", "CAMFT", "SAMHSA", "Medi-Cal", "Wi-Fi", "Shift", "English",
           "PT", "LMFT", "LCSW", "PsyD", "www.cms.gov/nosurprises", "Consultations"]


def english_in(text: str) -> list[str]:
    """The pieces of ``text`` (a page's text nodes or an email's lines) that read as
    English."""
    found = []
    for piece in re.split(r"[\n\r]+|(?<=[.!?:])\s+", text):
        piece = re.sub(r"https?://\S+|\S+@\S+", " ", piece)
        for name in ALLOWED:
            piece = piece.replace(name, " ")
        words = re.findall(r"[A-Za-z']+", piece.lower())
        if sum(word in ENGLISH for word in words) >= 2 or (
                words and all(word in ENGLISH for word in words)):
            found.append(piece.strip())
    return found


def page_text(html: str) -> str:
    """What a person reads on a page: text nodes and the labels of things."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    labels = re.findall(r'(?:aria-label|title|alt|placeholder)="([^"]*)"', html)
    text = re.sub(r"<[^>]+>", "\n", html)
    return html_module.unescape("\n".join([text, *labels]))


def spanish(client, url: str, **kwargs):
    response = client.get(url, headers={"Accept-Language": "es"}, **kwargs)
    assert response.status_code in (200, 404, 409), (url, response.status_code)
    return response


def assert_spanish(html: str, where: str) -> None:
    assert 'lang="es"' in html, where
    assert english_in(page_text(html)) == [], where


@pytest.fixture
def app_config():
    return {"CLIENT_LANGUAGES": ["en", "es"]}


def test_the_check_finds_english():
    assert english_in("Check your email and enter the code.") != []
    assert english_in("Revise su correo y escriba el código. Woven Together Trauma Therapy") == []


def test_every_public_page_speaks_spanish(app, client, therapist_id):
    client.get("/?lang=es")
    for url in ("/", "/consultation", "/privacy", "/good-faith-estimate",
                "/consultation/young-people", "/no-such-page", "/manage/not-a-token",
                "/consultation/not-eligible"):
        assert_spanish(spanish(client, url).text, url)
    # Errors on step 1, then each reason someone can't book.
    client.post("/consultation", data={})
    assert_spanish(spanish(client, "/consultation").text, "step 1 errors")
    client.post("/consultation", data={**ELIGIBLE, "zip_code": "97201"})
    assert_spanish(spanish(client, "/consultation").text, "a ZIP in Oregon")
    for answers in ({"ca_resident": "no", "zip_code": "97201"}, {"ca_resident": "no"},
                    {"in_california": "no"}):
        client.post("/consultation", data={**ELIGIBLE, **answers})
        assert_spanish(spanish(client, "/consultation/not-eligible").text, str(answers))
    pass_eligibility(client)
    assert_spanish(spanish(client, "/consultation/time").text, "the time")
    assert_spanish(send(client, {}).text, "the time's errors")
    data = form_data(client, email="casey@gmial.com", phone="12")
    assert_spanish(send(client, data).text, "about you: a typo")
    assert_spanish(send(client, {**form_data(client), "consent_privacy": ""}).text,
                   "check your answers, with an error")
    send(client, {**form_data(client), "meeting": ""})
    assert_spanish(spanish(client, "/consultation/about").text, "about you")
    response = send(client, form_data(client))
    assert response.status_code == 302
    assert_spanish(spanish(client, "/consultation/verify").text, "step 3")
    assert_spanish(client.post("/consultation/verify", data={"code": "000000"}).text,
                   "a wrong code")


def test_the_pages_after_booking_speak_spanish(app, client, therapist_id):
    client.get("/?lang=es")
    pass_eligibility(client)
    confirmed = book(client, app)
    assert_spanish(spanish(client, confirmed.location).text, "confirmation")
    with app.app_context():
        row = db.session.scalars(select(ConsultationRequest)).one()
        manage = f"/manage/{manage_token(row)}"
    for url in (manage, f"{manage}/cancel", f"{manage}/reschedule"):
        assert_spanish(spanish(client, url).text, url)


def test_the_waitlist_and_book_again_pages_speak_spanish(app, client):
    with app.app_context():
        maya = make_therapist()
        waiting = make_request(maya, None, waitlist=True, language="es")
        offer = WaitlistOffer(request_id=waiting.id, therapist_id=maya.id,
                              slot_start=to_db(future_slot(days=2)),
                              offered_on=datetime.now(UTC).date())
        db.session.add(offer)
        missed = make_request(maya, future_slot(days=-2), status="no_show", language="es")
        db.session.commit()
        offer_url = f"/waitlist/{offer_token(offer)}"
        rebook_url = rebooking.rebook_url(missed).rpartition("/")[2]
    client.get("/?lang=es")
    assert_spanish(spanish(client, offer_url).text, "waitlist offer")
    assert_spanish(spanish(client, f"/rebook/{rebook_url}").text, "book again")


CLIENT_KINDS = {"verification_code", "already_booked", "confirmation", "reminder",
                "rescheduled_client", "cancelled_client", "reopened_client", "waitlist_offer",
                "missed_note", "declined"}


def every_client_email(app) -> list[OutboxEmail]:
    """Each kind of client email, for a request made in Spanish."""
    with app.app_context(), app.test_request_context(headers={"Accept-Language": "es"}):
        therapist = make_therapist()
        row = make_request(therapist, datetime.now(UTC) + timedelta(hours=20),
                           first_name="Casey", preferred_name=None, language="es",
                           preferred_contact="phone")
        unbooked = make_request(therapist, None, first_name="Casey", language="es",
                                email="other@example.com")
        notifications.queue_verification_code(row, "123456", key="code:1",
                                               expires_at=datetime.now(UTC))
        notifications.queue_already_booked(row, key="already:1")
        notifications.queue_request_received(row)
        notifications.queue_request_received(unbooked)
        notifications.queue_due_reminders(datetime.now(UTC))
        previous = row.starts_at
        row.booking_sequence += 1
        row.slot_start = to_db(previous + timedelta(hours=1))
        notifications.queue_rescheduled(row, previous_start=previous)
        row.booking_sequence += 1
        notifications.queue_cancelled(row, by="client")
        notifications.queue_cancelled(unbooked, by="practice")
        row.booking_sequence += 1
        notifications.queue_reopened(row)
        notifications.queue_reopened(unbooked)
        notifications.queue_waitlist_offer(
            unbooked, key="waitlist:1", offered_when="jueves, 3 de diciembre de 2026, "
            "10:00\u201310:30\u202fa.m. PT", offered_therapist=therapist,
            offer_url="https://portal.example.com/waitlist/x")
        rebooking.queue_missed_note(row, actor="test")
        notifications.queue_client_email(row, "declined:1", declines.KIND,
                                         **declines.email_context("Le deseamos lo mejor."))
        db.session.commit()
        return [email for email in db.session.scalars(select(OutboxEmail))
                if email.kind in CLIENT_KINDS]


def test_every_client_email_speaks_spanish(app):
    emails = every_client_email(app)
    assert {email.kind for email in emails} == CLIENT_KINDS
    for email in emails:
        assert english_in(email.subject) == [], email.kind
        assert english_in(email.body_text) == [], (email.kind, email.body_text)
        assert english_in(page_text(email.body_html)) == [], email.kind
        assert 'lang="es"' in email.body_html, email.kind
        if email.ics:
            calendar = email.ics.replace("\r\n ", "")
            summary = re.search(r"SUMMARY:([^\r\n]*)", calendar).group(1)
            description = re.search(r"DESCRIPTION:([^\r\n]*)", calendar).group(1)
            assert summary == "Consulta gratuita", email.kind
            assert english_in(description.replace("\\,", ",")) == [], email.kind
