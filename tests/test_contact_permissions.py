"""Step 2's version-2 questions through the test client: the name to call the
client, whether we may text them or leave a voicemail, that they are 18 or older,
and how they expect to pay (the Good Faith Estimate). What is stored, the errors,
the back-office page and list, every client email and the CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import declines, notifications, rebooking
from portal.extensions import db
from portal.models import ConsultationRequest, OutboxEmail
from tests.backoffice import database_snapshot, sign_in
from tests.factories import future_slot, make_request, make_therapist, make_user, soon
from tests.test_public_flow import book, enter_code, form_data, pass_eligibility, requests_stored

QUESTIONS = ("adult", "ok_to_text", "ok_to_voicemail", "payment")
GFE_HEADING = "You have the right to receive a \u201cGood Faith Estimate\u201d explaining how " \
    "much your medical care will cost"
GFE_TEXT_HEADING = ('You have the right to receive a "Good Faith Estimate" explaining how much '
                    "your medical care will cost")
TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"


def stored_one(app) -> ConsultationRequest:
    [row] = requests_stored(app)
    return row


# -- step 2: stored answers and errors --------------------------------------------

def test_the_answers_are_stored_with_the_request(app, client, therapist_id):
    pass_eligibility(client)
    book(client, app, preferred_name="Sam", ok_to_text="no", ok_to_voicemail="no",
         payment="self_pay")
    row = stored_one(app)
    assert (row.preferred_name, row.ok_to_text, row.ok_to_voicemail, row.adult, row.payment) \
        == ("Sam", False, False, True, "self_pay")
    assert row.status == "new"


def test_a_blank_preferred_name_is_stored_as_none(app, client, therapist_id):
    pass_eligibility(client)
    book(client, app, preferred_name="   ", payment="not_sure")
    row = stored_one(app)
    assert row.preferred_name is None and row.call_name == "Casey"
    assert (row.ok_to_text, row.ok_to_voicemail, row.payment) == (True, True, "not_sure")


@pytest.mark.parametrize("question", QUESTIONS)
def test_each_question_must_be_answered(app, client, therapist_id, question):
    pass_eligibility(client)
    data = form_data(client)
    del data[question]
    response = client.post("/consultation/details", data=data)
    html = response.text
    assert response.status_code == 200 and "<title>Error: " in html
    assert f'<a href="#{question}-0" data-field-link>' in html  # in the error summary
    # Every radio of the question points at its error.
    radios = re.findall(rf'<input type="radio" class="choice-input" id="{question}-\d"[^>]*>', html)
    assert radios and all('aria-invalid="true"' in radio and
                          f'aria-describedby="{question}-error"' in radio for radio in radios)
    assert f'id="{question}-error"' in html
    assert requests_stored(app) == []


@pytest.mark.parametrize(("question", "value"), [
    ("adult", "maybe"), ("ok_to_text", "Y"), ("ok_to_voicemail", "1"), ("payment", "cash")])
def test_a_made_up_answer_is_refused_like_a_missing_one(app, client, therapist_id, question,
                                                        value):
    pass_eligibility(client)
    response = client.post("/consultation/details", data=form_data(client, **{question: value}))
    assert response.status_code == 200 and f'id="{question}-error"' in response.text
    assert requests_stored(app) == []


def test_asking_for_texts_means_saying_yes_to_texts(app, client, therapist_id):
    pass_eligibility(client)
    response = client.post("/consultation/details", data=form_data(
        client, preferred_contact="text", ok_to_text="no"))
    assert "You chose text message as the way to contact you" in response.text
    assert requests_stored(app) == []


def test_a_preferred_name_follows_the_name_rules(app, client, therapist_id):
    pass_eligibility(client)
    response = client.post("/consultation/details",
                           data=form_data(client, preferred_name="Sam\r\nBcc: x@example.com"))
    html = response.text
    assert 'id="preferred_name-error"' in html and 'aria-invalid="true"' in html
    assert 'aria-describedby="preferred_name-hint preferred_name-error"' in html
    assert requests_stored(app) == []


def test_the_age_question_comes_first_on_the_page(client, therapist_id):
    pass_eligibility(client)
    html = client.get("/consultation/details").text
    form = html[html.index("<form"):]
    assert form.index('name="adult"') < form.index('name="therapist"') < form.index(
        'name="first_name"')


def test_change_my_email_keeps_the_new_answers(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, preferred_name="Sam", ok_to_text="no", ok_to_voicemail="no",
                     payment="self_pay")
    assert client.post("/consultation/details", data=data).status_code == 302
    html = client.get("/consultation/details").text
    assert re.search(r'<input [^>]*id="preferred_name"[^>]*value="Sam"', html)
    for question, value in (("adult", "yes"), ("ok_to_text", "no"),
                            ("ok_to_voicemail", "no"), ("payment", "self_pay")):
        assert f'name="{question}" value="{value}" checked>' in html, question


# -- under 18 -----------------------------------------------------------------------

def test_under_18_leads_to_the_young_peoples_page_and_stores_nothing(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, adult="no", preferred_name="Sam")
    before = database_snapshot(app)
    response = client.post("/consultation/details", data=data)
    assert response.status_code == 302 and response.location == "/consultation/young-people"
    assert database_snapshot(app) == before  # every table, every row: nothing stored or queued
    page = client.get(response.location)
    html = page.text
    assert page.status_code == 200
    assert "parent or guardian" in html and 'href="tel:(555) 010-0199"' in html
    assert 'href="tel:988"' in html and "We haven't kept any of your answers" in html
    assert "Sam" not in html and "casey@example.com" not in html


def test_under_18_needs_nothing_else_filled_in(app, client, therapist_id):
    pass_eligibility(client)
    html = client.get("/consultation/details").text
    token = re.search(r'name="form_token" type="hidden" value="([^"]+)"', html).group(1)
    before = database_snapshot(app)
    response = client.post("/consultation/details", data={"adult": "no", "form_token": token})
    assert response.location == "/consultation/young-people"
    assert database_snapshot(app) == before


def test_the_age_question_does_not_judge_show_times(app, client, therapist_id):
    pass_eligibility(client)
    response = client.post("/consultation/details",
                           data=form_data(client, adult="no", show_times="1"))
    assert response.status_code == 200 and 'role="alert"' not in response.text


@pytest.mark.parametrize("app_config", [{
    "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
    "CONSULTATION_RATE_LIMIT": "1 per hour", "CONSULTATION_ATTEMPT_LIMIT": "100 per hour"}])
def test_under_18_answers_do_not_use_up_the_booking_limit(app, client, therapist_id):
    person = {"REMOTE_ADDR": "2001:db8::18"}
    pass_eligibility(client)  # from another address: its own count
    for _ in range(3):
        response = client.post("/consultation/details", data=form_data(client, adult="no"),
                               environ_base=person)
        assert response.location == "/consultation/young-people"
    response = client.post("/consultation/details", data=form_data(client), environ_base=person)
    assert response.location == "/consultation/verify"


# -- emails -------------------------------------------------------------------------

def client_emails(consultation_id: int) -> dict[str, OutboxEmail]:
    rows = db.session.scalars(select(OutboxEmail).where(
        OutboxEmail.request_id == consultation_id,
        OutboxEmail.recipient.like("client%"))).all()
    return {row.kind: row for row in rows}


def queue_every_client_email(consultation: ConsultationRequest) -> dict[str, OutboxEmail]:
    """Every client email that names the client: a confirmation, a reminder, a new time, a
    cancellation, a reopening, a waitlist offer, a missed-consultation note, a decline."""
    notifications.queue_request_received(consultation)
    notifications.queue_due_reminders(datetime.now(UTC))
    previous = consultation.starts_at
    consultation.booking_sequence += 1
    notifications.queue_rescheduled(consultation, previous_start=previous)
    consultation.booking_sequence += 1
    notifications.queue_cancelled(consultation, by="practice")
    consultation.booking_sequence += 1
    notifications.queue_reopened(consultation)
    # The practice's own notes: a freed time offered, a missed consultation, a decline.
    notifications.queue_waitlist_offer(
        consultation, key=f"request:{consultation.id}:waitlist:test:client",
        offered_when="Thursday, December 3, 2026, 10:00\u201310:30 AM PT",
        offered_therapist=None, offer_url="https://portal.example.com/waitlist/x")
    rebooking.queue_missed_note(consultation, actor="test")
    notifications.queue_client_email(consultation, "declined:1", declines.KIND,
                                     declines.TEMPLATE, declines.SUBJECT,
                                     **declines.email_context(""))
    db.session.flush()
    return client_emails(consultation.id)


# The client emails that greet the client by name, by the template each renders.
GREETING_KINDS = {"client_confirmation": "confirmation", "client_reminder": "reminder",
                  "client_rescheduled": "rescheduled_client",
                  "client_cancelled": "cancelled_client", "client_reopened": "reopened_client",
                  "client_waitlist_offer": "waitlist_offer", "client_missed": "missed_note",
                  "client_declined": "declined"}
# Sent to an address nobody has verified: no name at all.
ANONYMOUS_TEMPLATES = {"client_verification_code", "client_already_booked"}


def test_every_client_email_kind_is_covered_here():
    templates = {path.stem for path in TEMPLATES.glob("client_*.txt")}
    assert templates == set(GREETING_KINDS) | ANONYMOUS_TEMPLATES


@pytest.mark.parametrize(("preferred", "greeted"), [("Sam", "Sam"), (None, "Alexandra")])
def test_every_client_email_greets_the_name_they_asked_for(app, preferred, greeted):
    with app.app_context():
        therapist = make_therapist()
        consultation = make_request(therapist, soon(), first_name="Alexandra",
                                    preferred_name=preferred, email="client-sam@example.com")
        emails = queue_every_client_email(consultation)
        assert set(emails) == set(GREETING_KINDS.values())
        for kind, row in emails.items():
            assert row.body_text.startswith(f"Hello {greeted},"), kind
            assert f"<p>Hello {greeted},</p>" in row.body_html, kind
            if preferred:
                assert "Alexandra" not in row.body_text + row.body_html, kind


def test_the_code_email_names_nobody(app, client, therapist_id):
    pass_eligibility(client)
    client.post("/consultation/details", data=form_data(client, preferred_name="Sam"))
    with app.app_context():
        [code] = db.session.scalars(select(OutboxEmail)).all()
    assert code.kind == "verification_code"
    assert "Sam" not in code.body_text + code.body_html
    assert "Casey" not in code.body_text + code.body_html


def test_the_confirmation_email_carries_the_good_faith_estimate_notice(app, client, therapist_id):
    pass_eligibility(client)
    book(client, app, payment="insurance")
    with app.app_context():
        row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "confirmation"))
    assert GFE_TEXT_HEADING in row.body_text
    assert "- If you receive a bill that is at least $400 more than your Good Faith Estimate, " \
        "you can dispute the bill." in row.body_text
    assert "www.cms.gov/nosurprises or call 1-800-985-3059" in row.body_text
    assert "https://portal.example.com/good-faith-estimate" in row.body_text
    html = row.body_html.replace("&ldquo;", "\u201c").replace("&rdquo;", "\u201d")
    assert GFE_HEADING in html
    assert 'href="https://portal.example.com/good-faith-estimate"' in html
    assert 'href="tel:+18009853059"' in html


# -- the public notice --------------------------------------------------------------

def test_the_good_faith_estimate_page_shows_the_full_notice(client):
    response = client.get("/good-faith-estimate")
    html = response.text.replace("&ldquo;", "\u201c").replace("&rdquo;", "\u201d") \
        .replace("&rsquo;", "\u2019")
    assert response.status_code == 200
    assert GFE_HEADING in html
    for sentence in (
            "Under the law, health care providers need to give patients who don\u2019t have "
            "insurance or who are not using insurance an estimate of the bill for medical items "
            "and services.",
            "You have the right to receive a Good Faith Estimate for the total expected cost of "
            "any non-emergency items or services.",
            "at least 1 business day before your medical service or item",
            "If you receive a bill that is at least $400 more than your Good Faith Estimate, you "
            "can dispute the bill.",
            "Make sure to save a copy or picture of your Good Faith Estimate."):
        assert sentence in html
    assert 'href="https://www.cms.gov/nosurprises"' in html
    assert 'href="tel:988"' in html


def test_step_two_shows_the_notice_beside_the_payment_question(client, therapist_id):
    pass_eligibility(client)
    html = client.get("/consultation/details").text.replace("&ldquo;", "\u201c") \
        .replace("&rdquo;", "\u201d")
    question = html.index('name="payment"')
    notice = html.index(GFE_HEADING)
    assert 0 < notice - question < 3000  # right after the question, before consent
    assert notice < html.index('name="consent_privacy"')
    assert 'href="/good-faith-estimate"' in html


# -- the back office ----------------------------------------------------------------

@pytest.fixture
def staff(app, client):
    with app.app_context():
        therapist = make_therapist("Maya Alvarez")
        make_user("admin@example.com")
        quiet = make_request(therapist, future_slot(days=3), first_name="Samantha",
                             last_name="Quiet", preferred_name="Sam", ok_to_text=False,
                             ok_to_voicemail=False, adult=True, payment="self_pay",
                             preferred_contact="phone")
        open_ = make_request(therapist, future_slot(days=4), first_name="Olive",
                             last_name="Open", ok_to_text=True, ok_to_voicemail=True, adult=True,
                             payment="insurance")
        older = make_request(therapist, future_slot(days=5), first_name="Otto",
                             last_name="Older")
        db.session.commit()
        ids = {"quiet": quiet.id, "open": open_.id, "older": older.id}
    sign_in(client, "admin@example.com")
    return ids


def test_the_request_page_starts_with_how_to_contact_them(client, staff):
    html = client.get(f"/admin/requests/{staff['quiet']}").text
    main = html[html.index('<main'):]
    warning = ("Do not leave a voicemail</strong> &ndash; someone else may hear it. "
               "Call only when you can speak to Sam directly.")
    assert warning in main and "Do not text." in main
    assert "Call them <strong>Sam</strong>" in main
    # First: before the booking, the client card and everything else on the page.
    permissions = main.index('id="contact-permissions"')
    assert permissions < main.index('id="booking-title"') < main.index('id="client-title"')
    assert permissions < main.index("Do not leave a voicemail") < main.index('id="booking-title"')
    assert "GFE due before the first paid session" in main


def test_the_request_page_says_when_texts_and_voicemail_are_fine(client, staff):
    html = client.get(f"/admin/requests/{staff['open']}").text
    assert "A voicemail that names the practice is OK." in html and "Texts are OK." in html
    assert "Do not leave a voicemail" not in html and "Do not text" not in html
    assert "GFE due" not in html


def test_an_older_request_is_treated_as_no_voicemail_until_asked(client, staff):
    html = client.get(f"/admin/requests/{staff['older']}").text
    assert "Voicemail: not asked" in html and "Texts: not asked" in html
    assert "GFE due" not in html


def test_the_list_flags_self_pay_requests(client, staff):
    html = client.get("/admin/requests").text
    rows = {name: row for row in html.split("<tr>")
            for name in ("Quiet", "Open", "Older") if name in row}
    assert "GFE due" in rows["Quiet"]
    assert "GFE due" not in rows["Open"] and "GFE due" not in rows["Older"]


def test_the_csv_exports_the_new_answers(app, client, staff):
    body = client.get("/admin/requests/export.csv").get_data(as_text=True).lstrip("\ufeff")
    rows = {row["last_name"]: row for row in csv.DictReader(io.StringIO(body))}
    assert {key: rows["Quiet"][key] for key in (
        "preferred_name", "ok_to_text", "ok_to_voicemail", "adult", "payment",
        "good_faith_estimate_due")} == {
        "preferred_name": "Sam", "ok_to_text": "no", "ok_to_voicemail": "no", "adult": "yes",
        "payment": "Self-pay", "good_faith_estimate_due": "yes"}
    assert (rows["Open"]["ok_to_voicemail"], rows["Open"]["payment"],
            rows["Open"]["good_faith_estimate_due"]) == ("yes", "Insurance", "no")
    assert (rows["Older"]["preferred_name"], rows["Older"]["ok_to_text"],
            rows["Older"]["payment"]) == ("", "", "")


def test_a_formula_in_the_preferred_name_is_neutralised_in_the_csv(app, client, staff):
    with app.app_context():
        db.session.get(ConsultationRequest, staff["open"]).preferred_name = "=HYPERLINK(1)"
        db.session.commit()
    body = client.get("/admin/requests/export.csv").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in body


def test_demo_requests_fill_the_new_answers(app, runner):
    result = runner.invoke(args=["seed-demo", "--requests", "300"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        rows = db.session.scalars(select(ConsultationRequest)).all()
        assert len(rows) == 300
        assert all(row.adult is True and row.payment in ("self_pay", "insurance", "not_sure")
                   and row.ok_to_text is not None and row.ok_to_voicemail is not None
                   for row in rows)
        assert all(row.ok_to_text for row in rows if row.preferred_contact == "text")
        assert {row.ok_to_voicemail for row in rows} == {True, False}
        assert any(row.preferred_name for row in rows)
        assert db.session.scalar(select(func.count()).where(
            ConsultationRequest.payment == "self_pay")) > 0


def test_the_code_step_still_leads_to_a_new_request(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, preferred_name="Sam", ok_to_voicemail="no")
    assert client.post("/consultation/details", data=data).location == "/consultation/verify"
    assert stored_one(app).status == "pending"
    assert enter_code(client, app).status_code == 302
    assert stored_one(app).status == "new" and stored_one(app).ok_to_voicemail is False
