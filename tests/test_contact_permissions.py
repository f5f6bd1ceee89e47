""""Help us prepare" (after the code) and the age question (step 1) through the test
client: the name to call the client, whether we may text them or leave a voicemail,
that they are 18 or older, and how they expect to pay (the Good Faith Estimate). What
is stored, the errors, the back-office page and list, every client email and the CSV."""

from __future__ import annotations

import csv
import html as html_module
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.booking import declines, rebooking
from portal.extensions import db
from portal.messages import notifications
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.backoffice import database_snapshot, sign_in
from tests.factories import future_slot, make_request, make_therapist, make_user, soon
from tests.test_public_flow import (
    book,
    enter_code,
    form_data,
    pass_eligibility,
    prepare,
    requests_stored,
    send,
)

GFE_HEADING = "You have the right to receive a \u201cGood Faith Estimate\u201d explaining how " \
    "much your medical care will cost"
GFE_TEXT_HEADING = ('You have the right to receive a "Good Faith Estimate" explaining how much '
                    "your medical care will cost")
TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"


def stored_one(app) -> ConsultationRequest:
    [row] = requests_stored(app)
    return row


# -- "help us prepare": stored answers and errors -------------------------------------

PREPARE_QUESTIONS = ("ok_to_text", "ok_to_voicemail", "payment")


def booked_id(client, app) -> str:
    """A request booked through the web; its public id (the confirmation page's)."""
    pass_eligibility(client)
    return book(client, app).location.rpartition("/")[2]


def test_the_answers_are_stored_with_the_request(app, client, therapist_id):
    public_id = booked_id(client, app)
    response = prepare(client, public_id, preferred_name="Sam", ok_to_text="no",
                       ok_to_voicemail="no", payment="self_pay", preferred_contact="phone")
    assert response.status_code == 302
    assert response.location == f"/consultation/confirmed/{public_id}#prepare"
    row = stored_one(app)
    assert (row.preferred_name, row.ok_to_text, row.ok_to_voicemail, row.adult, row.payment,
            row.preferred_contact) == ("Sam", False, False, True, "self_pay", "phone")
    assert row.status == "new"
    # The page thanks them and no longer shows the questions (nor the answers).
    page = client.get(response.location).text
    assert "Thank you" in page and 'name="ok_to_text"' not in page and "Sam" not in page


def test_skipping_help_us_prepare_leaves_every_answer_unanswered(app, client, therapist_id):
    public_id = booked_id(client, app)
    page = client.get(f"/consultation/confirmed/{public_id}").text
    assert "Help us prepare (optional)" in page
    row = stored_one(app)
    assert (row.preferred_name, row.preferred_contact, row.ok_to_text, row.ok_to_voicemail,
            row.payment, row.interests, row.message) == (None, None, None, None, None, "", "")
    assert prepare(client, public_id).status_code == 302  # nothing at all is fine too
    row = stored_one(app)
    assert (row.ok_to_text, row.ok_to_voicemail, row.preferred_contact) == (None, None, None)


def test_a_blank_preferred_name_is_stored_as_none(app, client, therapist_id):
    public_id = booked_id(client, app)
    prepare(client, public_id, preferred_name="   ", payment="not_sure")
    row = stored_one(app)
    assert row.preferred_name is None and row.call_name == "Casey"
    assert (row.ok_to_text, row.ok_to_voicemail, row.payment) == (None, None, "not_sure")


@pytest.mark.parametrize(("question", "value"), [
    ("ok_to_text", "Y"), ("ok_to_voicemail", "1"), ("payment", "cash"),
    ("preferred_contact", "pigeon")])
def test_a_made_up_answer_is_refused(app, client, therapist_id, question, value):
    public_id = booked_id(client, app)
    response = prepare(client, public_id, **{question: value})
    assert response.location == f"/consultation/prepare/{public_id}"  # Post/Redirect/Get
    html = client.get(response.location).text
    assert f'id="{question}-error"' in html
    assert f'<a href="#{question}-0" data-field-link>' in html  # in the error summary
    radios = re.findall(rf'<input type="radio" class="choice-input" id="{question}-\d"[^>]*>',
                        html)
    assert radios and all('aria-invalid="true"' in radio for radio in radios)
    assert getattr(stored_one(app), question) is None


def test_asking_for_texts_means_saying_yes_to_texts(app, client, therapist_id):
    public_id = booked_id(client, app)
    response = prepare(client, public_id, preferred_contact="text", ok_to_text="no")
    assert "You chose text message as the way to contact you" in client.get(
        response.location).text
    assert stored_one(app).preferred_contact is None


def test_a_preferred_name_follows_the_name_rules(app, client, therapist_id):
    public_id = booked_id(client, app)
    response = prepare(client, public_id, preferred_name="Sam\r\nBcc: x@example.com")
    html = client.get(response.location).text
    assert 'id="preferred_name-error"' in html and 'aria-invalid="true"' in html
    assert 'aria-describedby="preferred_name-hint preferred_name-error"' in html
    assert stored_one(app).preferred_name is None


def test_the_manage_page_shows_and_changes_the_answers(app, client, therapist_id):
    from portal.links import manage_token, public_id_from_manage_token

    public_id = booked_id(client, app)
    prepare(client, public_id, preferred_name="Sam", ok_to_text="no", ok_to_voicemail="no",
            payment="self_pay")
    with app.app_context():
        url = f"/manage/{manage_token(db.session.get(ConsultationRequest, stored_one(app).id))}"
    html = client.get(url).text
    assert re.search(r'<input [^>]*id="preferred_name"[^>]*value="Sam"', html)
    for question, value in (("ok_to_text", "no"), ("ok_to_voicemail", "no"),
                            ("payment", "self_pay")):
        assert f'name="{question}" value="{value}" checked>' in html, question
    response = prepare(client, public_id, back="manage", ok_to_text="yes", ok_to_voicemail="no")
    # Back to the manage page of this request (its link is signed afresh: the second
    # may differ from the one above).
    path, _, anchor = response.location.partition("#")
    assert path.startswith("/manage/") and anchor == "prepare"
    with app.app_context():
        assert public_id_from_manage_token(path.removeprefix("/manage/")) == public_id
    row = stored_one(app)
    assert (row.ok_to_text, row.ok_to_voicemail, row.preferred_name) == (True, False, None)


def test_answers_that_need_fixing_are_post_redirect_get(app, client, therapist_id):
    """An error is a redirect to a page that shows it with everything typed, a long
    message included: refresh and Back are GETs, and the cookie stays small."""
    public_id = booked_id(client, app)
    message = "Evenings are best for me, and I'd like to talk about work. " * 40  # 2,400
    response = prepare(client, public_id, preferred_name="Sam\nBcc: x", message=message,
                       interests=["kap", "trauma"], payment="self_pay")
    assert response.status_code == 302
    assert response.location == f"/consultation/prepare/{public_id}"
    first = client.get(response.location).text
    assert first == client.get(response.location).text  # a refresh: the same page
    assert 'id="preferred_name-error"' in first and 'id="message-error"' in first
    assert message.strip() in html_module.unescape(first)
    assert 'name="payment" value="self_pay" checked' in first
    assert 'value="kap" checked' in first and 'value="trauma" checked' in first
    cookie = client.get_cookie("session")
    assert len(cookie.value) < 3500, len(cookie.value)
    assert stored_one(app).message == ""  # nothing stored until the answers are valid
    # Fixed and sent again: stored, and the kept answers are gone.
    assert prepare(client, public_id, message="Evenings").location.endswith("#prepare")
    assert 'id="message-error"' not in client.get(f"/consultation/prepare/{public_id}").text


def test_a_message_too_big_to_keep_is_asked_for_again(app, client, therapist_id):
    import secrets

    public_id = booked_id(client, app)
    noise = secrets.token_urlsafe(4500)[:5000]  # does not compress
    response = prepare(client, public_id, message=noise, payment="insurance")
    page = client.get(response.location).text
    assert "Your message was too long for us to keep" in page
    assert 'name="payment" value="insurance" checked' in page
    assert len(client.get_cookie("session").value) < 3500


def test_answers_that_need_fixing_on_the_manage_page_come_back_to_it(app, client,
                                                                    therapist_id):
    from portal.links import public_id_from_manage_token

    public_id = booked_id(client, app)
    response = prepare(client, public_id, back="manage", preferred_contact="text",
                       ok_to_text="no")
    url, _, anchor = response.location.partition("#")
    with app.app_context():  # the request's own manage page (its token is timed)
        consultation = db.session.get(ConsultationRequest, stored_one(app).id)
        assert public_id_from_manage_token(url.removeprefix("/manage/")) \
            == consultation.public_id == public_id
    assert anchor == "prepare"
    page = client.get(url).text
    assert "You chose text message as the way to contact you" in page
    assert 'name="preferred_contact" value="text" checked' in page
    assert stored_one(app).preferred_contact is None


def test_a_pending_or_unknown_request_takes_no_answers(app, client, therapist_id):
    pass_eligibility(client)
    send(client, form_data(client))
    row = stored_one(app)
    assert prepare(client, row.public_id, preferred_name="Sam").status_code == 404
    assert prepare(client, "nope", preferred_name="Sam").status_code == 404
    assert stored_one(app).preferred_name is None


# -- under 18 -----------------------------------------------------------------------

ELIGIBLE_ADULT = {"ca_resident": "yes", "zip_code": "94110", "in_california": "yes"}


def test_under_18_leads_to_the_young_peoples_page_and_stores_nothing(app, client, therapist_id):
    before = database_snapshot(app)
    response = client.post("/consultation", data={**ELIGIBLE_ADULT, "adult": "no"})
    assert response.status_code == 302 and response.location == "/consultation/young-people"
    assert database_snapshot(app) == before  # every table, every row: nothing stored or queued
    page = client.get(response.location)
    html = page.text
    assert page.status_code == 200
    assert "parent or guardian" in html and 'href="tel:(555) 010-0199"' in html
    assert 'href="tel:988"' in html and "We haven't kept any of your answers" in html
    assert client.get("/consultation/time").location == "/consultation"


def test_under_18_needs_nothing_else_filled_in(app, client, therapist_id):
    before = database_snapshot(app)
    response = client.post("/consultation", data={"adult": "no"})
    assert response.location == "/consultation/young-people"
    assert database_snapshot(app) == before


def test_the_age_question_is_asked_at_the_first_step(client):
    html = client.get("/consultation").text
    form = html[html.index("<form"):]
    assert form.index('name="ca_resident"') < form.index('name="adult"')


@pytest.mark.parametrize("app_config", [{
    "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://",
    "CONSULTATION_RATE_LIMIT": "1 per hour", "CONSULTATION_ATTEMPT_LIMIT": "100 per hour"}])
def test_under_18_answers_do_not_use_up_the_booking_limit(app, client, therapist_id):
    person = {"REMOTE_ADDR": "2001:db8::18"}
    for _ in range(3):
        response = client.post("/consultation", data={**ELIGIBLE_ADULT, "adult": "no"},
                               environ_base=person)
        assert response.location == "/consultation/young-people"
    response = client.post("/consultation", data={**ELIGIBLE_ADULT, "adult": "yes"},
                           environ_base=person)
    assert response.location == "/consultation/time"


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
                                     **declines.email_context(""))
    # A text that could not be delivered, sent by email instead (portal.texts.delivery).
    notifications.queue_client_email(consultation, "text-fallback:1", "text_fallback",
                                     text="Texts on.", last_digits="0123")
    db.session.flush()
    return client_emails(consultation.id)


# The client emails that greet the client by name (each kind's template is its name).
GREETING_KINDS = {"confirmation", "reminder", "rescheduled_client", "cancelled_client",
                  "reopened_client", "waitlist_offer", "missed_note", "declined",
                  "text_fallback"}
# Sent to an address nobody has verified: no name at all.
ANONYMOUS_KINDS = {"verification_code", "already_booked"}


def test_every_client_email_kind_is_covered_here():
    templates = {path.stem for path in (TEMPLATES / "client").glob("*.txt")}
    assert templates == GREETING_KINDS | ANONYMOUS_KINDS


@pytest.mark.parametrize(("preferred", "greeted"), [("Sam", "Sam"), (None, "Alexandra")])
def test_every_client_email_greets_the_name_they_asked_for(app, preferred, greeted):
    with app.app_context():
        therapist = make_therapist()
        consultation = make_request(therapist, soon(), first_name="Alexandra",
                                    preferred_name=preferred, email="client-sam@example.com")
        emails = queue_every_client_email(consultation)
        assert set(emails) == GREETING_KINDS
        for kind, row in emails.items():
            assert row.body_text.startswith(f"Hello {greeted},"), kind
            assert f"<p>Hello {greeted},</p>" in row.body_html, kind
            if preferred:
                assert "Alexandra" not in row.body_text + row.body_html, kind


def test_the_code_email_names_nobody(app, client, therapist_id):
    pass_eligibility(client)
    send(client, form_data(client, first_name="Sam"))
    with app.app_context():
        [code] = db.session.scalars(select(OutboxEmail)).all()
    assert code.kind == "verification_code"
    assert "Sam" not in code.body_text + code.body_html
    assert "Rivera" not in code.body_text + code.body_html


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


def test_help_us_prepare_shows_the_notice_beside_the_payment_question(app, client,
                                                                     therapist_id):
    public_id = booked_id(client, app)
    confirmation = client.get(f"/consultation/confirmed/{public_id}").text
    assert f'href="/consultation/prepare/{public_id}">Answer a few questions' in confirmation
    html = client.get(f"/consultation/prepare/{public_id}").text.replace(
        "&ldquo;", "\u201c").replace("&rdquo;", "\u201d")
    question = html.index('name="payment"')
    notice = html.index(GFE_HEADING)
    assert 0 < notice - question < 3000  # right after the question, before the button
    assert notice < html.index("Save my answers")
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


def test_an_unanswered_request_is_treated_as_no_voicemail_and_no_texts(client, staff):
    html = client.get(f"/admin/requests/{staff['older']}").text
    assert "Voicemail: not answered" in html and "Texts: not answered" in html
    assert "Leave no voicemail that names the practice" in html and "Don't text" in html
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
    data = form_data(client)
    assert send(client, data).location == "/consultation/verify"
    assert stored_one(app).status == "pending"
    assert enter_code(client, app).status_code == 302
    assert stored_one(app).status == "new" and stored_one(app).ok_to_voicemail is None
