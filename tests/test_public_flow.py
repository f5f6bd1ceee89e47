"""The public request flow through the test client: eligibility, details and a
time, confirmation, and the manage page, asserting pages, redirects and rows."""

from __future__ import annotations

import html as html_module
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from portal.business_days import parse_holidays, reply_due_day
from portal.extensions import db
from portal.links import manage_token
from portal.models import (
    AuditEvent,
    ConsultationRequest,
    EmailVerification,
    NotEligibleCount,
    OutboxEmail,
    RequestNote,
    Setting,
    Therapist,
)
from portal.scheduling import PACIFIC, format_day, parse_slot_value
from tests.backoffice import database_snapshot
from tests.factories import future_slot, make_request, make_therapist

ELIGIBLE = {"state": "CA", "zip_code": "94110", "ca_resident": "yes", "in_california": "yes"}
FORM_TOKEN = re.compile(r'name="form_token" type="hidden" value="([^"]+)"')
SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')


def pass_eligibility(client):
    response = client.post("/consultation", data=ELIGIBLE)
    assert response.status_code == 302 and response.location == "/consultation/details"


def details_page(client, therapist="any"):
    response = client.get(f"/consultation/details?therapist={therapist}")
    assert response.status_code == 200
    return response.text


def form_data(client, therapist="any", slot_index=0, **fields) -> dict:
    """A complete, valid step-2 form as the page offers it."""
    html = details_page(client, therapist)
    slots = SLOT_VALUE.findall(html)
    data = {
        "first_name": "Casey", "last_name": "Rivera", "email": "casey@example.com",
        "phone": "(415) 555-0123", "preferred_contact": "email", "interests": ["kap", "anxiety"],
        "message": "", "therapist": therapist, "slot": slots[slot_index],
        "adult": "yes", "ok_to_text": "yes", "ok_to_voicemail": "yes", "payment": "insurance",
        "consent_privacy": "y", "ack_not_emergency": "y", "website": "",
        "form_token": FORM_TOKEN.search(html).group(1),
    }
    return {**data, **fields}


CODE = re.compile(r"\b(\d{6})\b")


def latest_code(app, email: str = "casey@example.com") -> str:
    """The code in the newest code email queued for ``email``: what the person reads."""
    with app.app_context():
        body = db.session.scalar(
            select(OutboxEmail.body_text).where(OutboxEmail.kind == "verification_code",
                                                OutboxEmail.recipient == email)
            .order_by(OutboxEmail.id.desc()).limit(1))
    assert body is not None, f"no code email for {email}"
    return CODE.search(body).group(1)


def enter_code(client, app, email: str = "casey@example.com", code: str | None = None):
    """Step 3: post the code from the email (or ``code``)."""
    return client.post("/consultation/verify",
                       data={"code": code if code is not None else latest_code(app, email)})


def book(client, app, **fields):
    """Steps 2 and 3 through the web (step 1 already passed); the confirmation redirect."""
    data = form_data(client, **fields)
    response = client.post("/consultation/details", data=data)
    assert response.status_code == 302 and response.location == "/consultation/verify"
    confirmed = enter_code(client, app, data["email"])
    assert confirmed.status_code == 302, confirmed.text
    return confirmed


def checked_therapist(html: str) -> str:
    [value] = re.findall(r'name="therapist" value="([^"]+)" checked', html)
    return value


def requests_stored(app) -> list[ConsultationRequest]:
    with app.app_context():
        rows = db.session.scalars(select(ConsultationRequest)).all()
        db.session.expunge_all()
        return rows


def outbox_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(OutboxEmail))


def outbox_kinds(app) -> list[str]:
    """The kinds of every queued email, sorted."""
    with app.app_context():
        return sorted(db.session.scalars(select(OutboxEmail.kind)))


@pytest.fixture
def other_therapist_id(app, therapist_id):
    """A second therapist, free on Mondays 09:00-10:00 only (fewer times than the first)."""
    with app.app_context():
        other = make_therapist("Daniel Okafor", hours=[(0, "09:00", "10:00")])
        db.session.commit()
        return other.id


# -- landing and step 1 ----------------------------------------------------------

def test_landing_page_shows_therapists_reply_time_and_one_call_to_action(client, therapist_id):
    html = client.get("/").text
    assert "Maya Alvarez" in html and "LMFT, California license #118204" in html
    assert "one business day" in html
    assert html.count('href="/consultation"') == 1
    assert 'href="tel:988"' in html and 'href="sms:988"' in html


def test_details_need_eligibility_first(client):
    response = client.get("/consultation/details")
    assert response.status_code == 302 and response.location == "/consultation"


def test_unanswered_eligibility_shows_field_errors(client):
    response = client.post("/consultation", data={})
    html = response.text
    assert response.status_code == 200
    assert "<title>Error: " in html and 'role="alert"' in html
    assert "Choose the state you live in" in html
    assert "Enter your ZIP code" in html
    assert "Select yes if California is your main home" in html
    assert 'href="#ca_resident-0"' in html and 'id="ca_resident-0"' in html
    assert 'aria-describedby="zip_code-hint zip_code-error"' in html


@pytest.mark.parametrize("zip_code, message", [
    ("9411", "Enter a 5-digit ZIP code, like 94110"),
    ("94110-12345", "Enter a 5-digit ZIP code, like 94110"),
    ("97201", "97201 is an Oregon ZIP code"),
    ("00000", "We couldn&#39;t find that ZIP code"),
])
def test_a_bad_zip_says_what_to_do(client, zip_code, message):
    response = client.post("/consultation", data={**ELIGIBLE, "zip_code": zip_code})
    assert response.status_code == 200
    assert message in response.text
    assert f'value="{zip_code}"' in response.text  # what was typed stays
    # One message for the field, inline and in the summary: never two at once.
    [inline] = re.findall(r'id="zip_code-error">(.*?)</p>', response.text, re.S)
    assert inline.count(".") <= 1 and "characters" not in inline
    assert response.text.count('href="#zip_code"') == 1


@pytest.mark.parametrize(("answers", "reason", "says"), [
    ({"ca_resident": "no"}, "not-resident",
     "You told us California isn't your main home"),
    ({"in_california": "no"}, "away", "If you're traveling, you're welcome"),
    ({"state": "OR", "zip_code": "97201"}, "other-state", "You told us you live in another state"),
    ({"state": "XX", "zip_code": "", "ca_resident": "no"}, "outside-us",
     "You told us you live outside the United States"),
])
def test_not_eligible_counts_anonymously_and_stores_nothing_personal(
        app, client, answers, reason, says):
    pass_eligibility(client)
    response = client.post("/consultation", data={**ELIGIBLE, **answers})
    assert response.status_code == 302
    # The page speaks to the answer that led there; the link names no state or ZIP.
    assert response.location == f"/consultation/not-eligible?reason={reason}"
    page = client.get(response.location).text
    assert "988" in page and "1-800-662-4357" in page
    assert says in page
    if reason != "away":
        assert "travel" not in page
    with client.session_transaction() as session:
        assert "eligibility" not in session
    assert requests_stored(app) == []
    assert outbox_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.sum(NotEligibleCount.count))) == 1
    client.post("/consultation", data={**ELIGIBLE, **answers})
    with app.app_context():
        assert db.session.scalar(select(func.sum(NotEligibleCount.count))) == 2


def test_session_holds_only_step_one_answers(client):
    pass_eligibility(client)
    with client.session_transaction() as session:
        assert session["eligibility"] == ELIGIBLE


# -- step 2 ------------------------------------------------------------------------

def test_booking_a_time_holds_it_and_asks_for_the_emailed_code(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    response = client.post("/consultation/details", data=data)
    assert response.status_code == 302 and response.location == "/consultation/verify"
    [row] = requests_stored(app)
    assert row.status == "pending"
    assert len(row.public_id) >= 16
    assert row.therapist_id == therapist_id
    assert row.starts_at == parse_slot_value(data["slot"])
    assert (row.phone, row.email_normalised) == ("+14155550123", "casey@example.com")
    assert (row.first_name_normalised, row.last_name_normalised) == ("casey", "rivera")
    assert row.interests == "kap,anxiety" and row.privacy_notice_version == "2026-11"
    assert row.submission_token and row.consent_at and row.ack_not_emergency_at
    # Only the code: nothing is confirmed and no therapist hears of it yet.
    assert outbox_kinds(app) == ["verification_code"]
    stranger = app.test_client()
    pass_eligibility(stranger)
    assert data["slot"] not in details_page(stranger)  # held for this person
    page = client.get("/consultation/verify").text
    assert "Check your email" in page and "casey@example.com" in page
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page


def test_the_right_code_confirms_the_request(app, client, therapist_id):
    pass_eligibility(client)
    client.post("/consultation/details", data=form_data(client))
    response = enter_code(client, app)
    [row] = requests_stored(app)
    assert response.status_code == 302
    assert response.location == f"/consultation/confirmed/{row.public_id}"
    assert row.status == "new"
    assert sorted(outbox_kinds(app)) == ["confirmation", "therapist_notice", "verification_code"]
    page = client.get(response.location).text
    assert "Your consultation is booked" in page and "Maya Alvarez" in page
    assert "casey@example.com" not in page and "Rivera" not in page and "555" not in page
    with client.session_transaction() as session:
        assert "eligibility" not in session and "pending" not in session
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EmailVerification)) == 0


@pytest.mark.parametrize(("slot", "contact"), [(None, "email"), ("none", "text")])
def test_the_confirmation_page_and_email_say_the_same_next_step(
        app, client, therapist_id, slot, contact):
    pass_eligibility(client)
    extra = {"slot": slot} if slot else {}
    page = html_module.unescape(client.get(
        book(client, app, preferred_contact=contact, **extra).location).text)
    with app.app_context():
        body = db.session.scalar(select(OutboxEmail.body_text)
                                 .where(OutboxEmail.kind == "confirmation"))
    [next_step] = re.findall(r"What happens next: (.+)", body)
    assert next_step.startswith("We'll reply within one business day, by the end of ")
    assert next_step in page
    if slot is None:
        assert "whether you'll meet by phone or video" in next_step
    else:
        assert "we'll contact you by text message to find a time" in next_step
    # The address it went to, masked: this page opens for anyone with its link.
    assert "to <strong>c\u2022\u2022\u2022@example.com</strong>." in page
    assert "casey@" not in page


def test_a_friday_evening_request_is_promised_a_reply_by_monday(app, client, therapist_id):
    with time_machine.travel(datetime(2026, 12, 4, 19, 30, tzinfo=PACIFIC), tick=True):
        pass_eligibility(client)
        page = html_module.unescape(client.get(book(client, app).location).text)
    with app.app_context():
        body = db.session.scalar(select(OutboxEmail.body_text)
                                 .where(OutboxEmail.kind == "confirmation"))
    promise = "We'll reply within one business day, by the end of Monday, December 7,"
    assert promise in page and promise in body


@pytest.mark.clock
def test_the_promised_day_is_the_next_business_day_at_any_hour(app, client, therapist_id):
    pass_eligibility(client)
    page = html_module.unescape(client.get(book(client, app, slot="none").location).text)
    day = reply_due_day(datetime.now(UTC), parse_holidays(app.config["HOLIDAYS"]))
    assert f"within one business day, by the end of {format_day(day)}:" in page


def test_a_pending_request_has_no_confirmation_page(app, client, therapist_id):
    pass_eligibility(client)
    client.post("/consultation/details", data=form_data(client))
    [row] = requests_stored(app)
    assert client.get(f"/consultation/confirmed/{row.public_id}").status_code == 404


def test_a_second_submit_of_the_same_form_creates_nothing(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    first = client.post("/consultation/details", data=data)
    second = client.post("/consultation/details", data=data)
    assert second.status_code == 302 and second.location == first.location
    assert len(requests_stored(app)) == 1
    assert outbox_kinds(app) == ["verification_code"]


def test_no_time_stores_a_contact_me_request(app, client, therapist_id):
    pass_eligibility(client)
    response = book(client, app, slot="none")
    [row] = requests_stored(app)
    assert row.slot_start is None and row.therapist_id is None
    assert "received your request" in client.get(response.location).text


def test_therapist_filter_works_without_javascript(app, client, other_therapist_id):
    other_id = other_therapist_id
    pass_eligibility(client)
    everyone = SLOT_VALUE.findall(details_page(client, "any"))
    only_other = SLOT_VALUE.findall(details_page(client, str(other_id)))
    assert "none" in only_other and len(only_other) < len(everyone)
    html = details_page(client, str(other_id))
    assert checked_therapist(html) == str(other_id)
    assert "Daniel Okafor, LMFT, California license #" in html
    assert all(parse_slot_value(v) for v in everyone if v != "none")


def test_validation_errors_keep_what_was_typed(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, first_name="", email="not-an-email", phone="12",
                     message="x" * 2001, consent_privacy="")
    response = client.post("/consultation/details", data=data)
    html = response.text
    assert response.status_code == 200 and "<title>Error: " in html
    for message in ("Enter your first name", "Enter an email address in the correct format",
                    "Enter a US phone number", "2,000 characters or fewer",
                    "Agree to the privacy notice"):
        assert message in html
    assert 'value="not-an-email"' in html and 'value="Rivera"' in html
    assert f'value="{data["slot"]}" checked' in html
    assert 'aria-invalid="true"' in html and 'aria-describedby="email-hint email-error"' in html
    assert requests_stored(app) == []
    with client.session_transaction() as session:  # signed, not encrypted: no personal data
        assert set(session) <= {"eligibility", "csrf_token", "_flashes", "visitor", "pending"}
        assert "Rivera" not in str(dict(session))


def test_an_email_typo_is_pointed_out_before_storing(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, email="casey@gmial.com")
    html = client.post("/consultation/details", data=data).text
    assert "Did you mean casey@gmail.com?" in html
    assert "or check \u201cMy email address is right as I typed it\u201d" in html
    assert requests_stored(app) == []
    response = client.post("/consultation/details", data={**data, "email_as_typed": "y"})
    assert response.status_code == 302
    assert requests_stored(app)[0].email_normalised == "casey@gmial.com"


def test_the_typo_hint_fixes_the_address_in_one_click(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, email="casey@gmial.com", first_name="")
    html = client.post("/consultation/details", data=data).text
    assert '<button type="submit" name="use_email" value="casey@gmail.com"' in html
    # The button posts the whole form: the address is replaced, what else needs fixing
    # still shows, and nothing is stored until "Book consultation".
    response = client.post("/consultation/details", data={**data, "use_email": "casey@gmail.com"})
    html = response.text
    assert response.status_code == 200 and requests_stored(app) == []
    assert re.search(r'<input [^>]*id="email"[^>]*value="casey@gmail.com"', html)
    assert "Did you mean" not in html and 'name="use_email"' not in html
    assert "Enter your first name" in html
    response = client.post("/consultation/details", data={
        **data, "email": "casey@gmail.com", "first_name": "Casey"})
    assert response.status_code == 302
    assert requests_stored(app)[0].email_normalised == "casey@gmail.com"


def test_the_error_summary_follows_the_page_order(client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, first_name="", email="not-an-email", phone="12",
                     consent_privacy="", ack_not_emergency="")
    del data["slot"], data["preferred_contact"]
    html = client.post("/consultation/details", data=data).text
    summary = html[html.index('class="error-summary"'):]
    summary = summary[:summary.index("</div>")]
    targets = re.findall(r'<a href="#([^"]+)"', summary)
    assert targets[0] == "slot-0" and len(targets) == 7
    # Where each link lands, in the form below the summary.
    form = html[html.index("<form"):]
    positions = [form.index(f'id="{target}"') for target in targets]
    assert positions == sorted(positions)


def test_each_time_shows_its_start_and_end_with_its_day(client, therapist_id):
    pass_eligibility(client)
    html = details_page(client)
    labels = re.findall(r'<label class="choice-label" for="slot-\d+">\s*([^<]*)'
                        r'<span class="visually-hidden">([^<]*)</span>', html)
    assert labels
    for time_range, hidden in labels:
        assert re.fullmatch(r"\d{1,2}:\d\d(\u00a0[AP]M)?\u2013\d{1,2}:\d\d\u00a0[AP]M",
                            time_range), time_range
        assert re.fullmatch(r" PT, [A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}", hidden), hidden
    assert re.search(r'<span class="muted slot-count">\(\d+ times?\)</span>', html)


def test_a_non_us_phone_is_refused(client, therapist_id):
    pass_eligibility(client)
    html = client.post("/consultation/details",
                       data=form_data(client, phone="+44 20 7946 0000")).text
    assert "Enter a US phone number" in html


def test_a_time_taken_meanwhile_shows_just_taken_with_the_form_intact(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, first_name="Jordan")
    with app.app_context():
        make_request(db.session.get(Therapist, therapist_id), parse_slot_value(data["slot"]))
        db.session.commit()
    response = client.post("/consultation/details", data=data)
    assert response.status_code == 200
    assert "That time was just taken \u2014 please pick another" in response.text
    assert 'value="Jordan"' in response.text
    assert len(requests_stored(app)) == 1


def test_step_one_is_rechecked_on_submit(client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    with client.session_transaction() as session:
        session["eligibility"] = {**ELIGIBLE, "zip_code": "97201"}
    response = client.post("/consultation/details", data=data)
    assert response.status_code == 302 and response.location == "/consultation"


def test_unknown_confirmation_id_is_a_kind_404(client):
    response = client.get("/consultation/confirmed/nope")
    assert response.status_code == 404 and "This link doesn" in response.text


def test_intake_pause_replaces_the_forms(app, client):
    with app.app_context():
        db.session.add_all([Setting(key="intake_paused", value="1"),
                            Setting(key="intake_pause_message", value="Back on Monday.")])
        db.session.commit()
    assert "Back on Monday." in client.get("/").text
    assert 'href="/consultation"' not in client.get("/").text
    for url in ("/consultation", "/consultation/details"):
        page = client.get(url).text
        assert "Back on Monday." in page and "<form" not in page
    client.post("/consultation", data=ELIGIBLE)
    assert requests_stored(app) == []


# -- manage ------------------------------------------------------------------------

@pytest.fixture
def booked(app, therapist_id):
    """A booked consultation and its manage URL."""
    with app.app_context():
        consultation = make_request(db.session.get(Therapist, therapist_id), future_slot(days=3))
        db.session.commit()
        return consultation.id, f"/manage/{manage_token(consultation)}"


def test_opening_the_manage_link_changes_nothing(app, client, booked):
    request_id, url = booked
    page = client.get(url).text
    # Rescheduling is the primary action; cancelling a plain link to a page that asks.
    assert re.search(r'<a class="button" href="[^"]+/reschedule">Choose another time</a>', page)
    assert f'<a href="{url}/cancel">Cancel my consultation</a>' in page
    assert "<button" not in page.partition('id="main"')[2]
    confirm = client.get(url + "/cancel")
    assert confirm.status_code == 200
    assert "Are you sure you want to cancel your consultation?" in confirm.text
    assert "goes back to our calendar for someone else" in confirm.text
    client.get(url + "/reschedule")
    [row] = requests_stored(app)
    assert row.status == "new" and row.booking_sequence == 0
    assert outbox_count(app) == 0


def test_a_bad_manage_token_is_a_kind_404(client):
    assert client.get("/manage/forged.token").status_code == 404


def test_cancel_from_the_manage_page(app, client, booked):
    _, url = booked
    assert outbox_count(app) == 0
    response = client.post(url + "/cancel")
    assert response.status_code == 302 and response.location == url
    assert "has been cancelled" in client.get(url).text
    [row] = requests_stored(app)
    assert row.status == "cancelled" and row.booking_sequence == 1
    assert outbox_kinds(app) == ["cancelled_client", "cancelled_therapist"]
    client.post(url + "/cancel")
    assert outbox_kinds(app) == ["cancelled_client", "cancelled_therapist"]  # nobody told twice
    assert requests_stored(app)[0].booking_sequence == 1
    # Once cancelled, the "Are you sure?" page has nothing left to ask.
    assert client.get(url + "/cancel").location == url


REASON = "SENTINEL-REASON moving to Oregon\nthanks anyway"


def test_the_cancel_reason_reaches_staff_as_a_note_and_no_email(app, client, booked):
    request_id, url = booked
    response = client.post(url + "/cancel", data={"reason": f"  {REASON}  "})
    assert response.status_code == 302 and response.location == url
    with app.app_context():
        row = db.session.get(ConsultationRequest, request_id)
        assert row.status == "cancelled"
        [note] = row.notes
        assert note.author_id is None
        assert note.body == f"Reason the client gave when canceling online:\n{REASON}"
        actions = db.session.scalars(select(AuditEvent).where(
            AuditEvent.request_id == request_id).order_by(AuditEvent.id)).all()
        assert [(a.action, a.actor) for a in actions] == [
            ("booking_cancelled", "client"), ("note_added", "client")]
        assert all("SENTINEL" not in a.detail for a in actions)
        emails = db.session.scalars(select(OutboxEmail)).all()
        assert sorted(e.kind for e in emails) == ["cancelled_client", "cancelled_therapist"]
        for email in emails:
            for text in (email.subject, email.body_text, email.body_html, email.ics or ""):
                assert "SENTINEL" not in text and "Oregon" not in text, email.kind


def test_a_cancel_reason_that_cannot_be_stored_keeps_the_booking_and_the_text(
        app, client, booked):
    _, url = booked
    for reason, message in (("x" * 2001, "Your reason must be 2,000 characters or fewer"),
                            ("see\u202eyou", "Your reason contains invisible characters")):
        response = client.post(url + "/cancel", data={"reason": reason})
        assert response.status_code == 200 and message in response.text
        assert 'aria-invalid="true"' in response.text and reason[:50] in response.text
    [row] = requests_stored(app)
    assert row.status == "new" and outbox_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RequestNote)) == 0


def test_reschedule_from_the_manage_page(app, client, booked):
    _, url = booked
    html = client.get(url + "/reschedule").text
    new_value = SLOT_VALUE.findall(html)[0]
    response = client.post(url + "/reschedule", data={"slot": new_value})
    assert response.status_code == 302 and response.location == url
    [row] = requests_stored(app)
    assert row.starts_at == parse_slot_value(new_value) and row.booking_sequence == 1
    assert outbox_kinds(app) == ["rescheduled_client", "rescheduled_therapist"]
    assert "has been moved" in client.get(url).text


@pytest.mark.clock
def test_the_picker_and_the_reschedule_page_offer_nothing_on_a_holiday(app, client, booked):
    closed = future_slot(days=4).astimezone(PACIFIC).date()
    app.config["HOLIDAYS"] = [closed.isoformat()]
    _, url = booked
    pass_eligibility(client)
    for html in (details_page(client), client.get(url + "/reschedule").text):
        days = {parse_slot_value(v).astimezone(PACIFIC).date()
                for v in SLOT_VALUE.findall(html) if v != "none"}
        assert days and closed not in days
        assert closed + timedelta(days=1) in days  # the day after is open


def test_reschedule_to_a_taken_time_says_just_taken(app, client, booked):
    request_id, url = booked
    before = requests_stored(app)[0]
    new_value = SLOT_VALUE.findall(client.get(url + "/reschedule").text)[0]
    with app.app_context():
        make_request(db.session.scalars(select(Therapist)).first(), parse_slot_value(new_value))
        db.session.commit()
    response = client.post(url + "/reschedule", data={"slot": new_value})
    assert response.status_code == 200
    assert "That time was just taken" in response.text
    with app.app_context():
        row = db.session.get(ConsultationRequest, request_id)
        assert (row.starts_at, row.booking_sequence) == (before.starts_at, 0)
    assert outbox_count(app) == 0


def test_a_therapist_who_stopped_taking_requests_is_not_swapped_silently(app, client,
                                                                         therapist_id):
    pass_eligibility(client)
    data = form_data(client, str(therapist_id))
    with app.app_context():
        db.session.get(Therapist, therapist_id).accepting_new = False
        db.session.commit()
    html = client.post("/consultation/details", data=data).text
    assert "isn&#39;t taking new consultations" in html
    assert checked_therapist(html) == "any"
    assert requests_stored(app) == []


@pytest.mark.clock
def test_not_eligible_changes_only_the_anonymous_count(app, client, therapist_id):
    before = database_snapshot(app)
    pass_eligibility(client)
    client.post("/consultation", data={**ELIGIBLE, "ca_resident": "no"})
    after = database_snapshot(app)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"not_eligible_count"}
    [(_, count)] = after["not_eligible_count"]
    assert count == 1


def test_any_therapist_shows_each_time_once(app, client):
    with app.app_context():
        make_therapist("Maya Alvarez")
        make_therapist("Daniel Okafor")  # the same weekly hours: every time is free twice
        db.session.commit()
    pass_eligibility(client)
    values = SLOT_VALUE.findall(details_page(client, "any"))
    assert len(values) > 10 and len(values) == len(set(values))


def test_show_times_switches_therapist_and_keeps_what_was_typed(app, client, other_therapist_id):
    other_id = other_therapist_id
    pass_eligibility(client)
    data = form_data(client, first_name="Jordan", email="", therapist=str(other_id),
                     show_times="1", message="Evenings are best")
    response = client.post("/consultation/details", data=data)
    html = response.text
    assert response.status_code == 200 and 'role="alert"' not in html  # nothing judged yet
    assert checked_therapist(html) == str(other_id)
    assert "Showing free times for <strong>Daniel Okafor" in html
    assert 'value="Jordan"' in html and "Evenings are best" in html
    assert requests_stored(app) == []
    assert SLOT_VALUE.findall(html) == SLOT_VALUE.findall(details_page(client, str(other_id)))


def test_names_of_only_spaces_are_refused(app, client, therapist_id):
    pass_eligibility(client)
    html = client.post("/consultation/details",
                       data=form_data(client, first_name="   ", last_name="\u00a0 ")).text
    assert "Enter your first name" in html and "Enter your last name" in html
    assert requests_stored(app) == []


def test_long_names_that_casefold_longer_are_stored(app, client, therapist_id):
    pass_eligibility(client)
    response = client.post("/consultation/details",
                           data=form_data(client, first_name="\u0130" * 80,
                                          last_name="Stra\u00dfe" * 13))
    assert response.status_code == 302
    [row] = requests_stored(app)
    assert row.first_name == "\u0130" * 80
    assert len(row.first_name_normalised) <= 80 and len(row.last_name_normalised) <= 80
    assert row.last_name_normalised.startswith("strasse")


def test_repeated_interests_are_stored_once(app, client, therapist_id):
    pass_eligibility(client)
    response = client.post("/consultation/details",
                           data=form_data(client, interests=["depression"] * 60 + ["kap"]))
    assert response.status_code == 302
    assert requests_stored(app)[0].interests == "depression,kap"


def test_an_expired_manage_link_is_the_link_invalid_page(app, client, booked):
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from portal.links import MANAGE_SALT

    max_age = app.config["MANAGE_TOKEN_MAX_AGE_DAYS"] * 86400

    class SignedTooLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - max_age - 60

    request_id, _ = booked
    with app.app_context():
        public_id = db.session.get(ConsultationRequest, request_id).public_id
    token = URLSafeTimedSerializer(app.secret_key, salt=MANAGE_SALT,
                                   signer=SignedTooLongAgo).dumps(public_id)
    for response in (client.get(f"/manage/{token}"),
                     client.get(f"/manage/{token}/reschedule"),
                     client.post(f"/manage/{token}/cancel")):
        assert response.status_code == 404 and "This link doesn" in response.text
    assert requests_stored(app)[0].status == "new"


def test_rescheduling_with_no_free_times_has_no_form_and_no_dead_links(app, client):
    with app.app_context():
        therapist = make_therapist(hours=[(0, "09:00", "09:30")])
        consultation = make_request(therapist)  # nothing booked yet
        db.session.commit()
        url = f"/manage/{manage_token(consultation)}"
        db.session.delete(therapist.hours[0])
        db.session.commit()
    html = client.get(url + "/reschedule").text
    assert "<title>Choose a time" in html and "<h1>Choose a time</h1>" in html
    assert "Keep the current time" not in html and "no free times" in html
    html = client.post(url + "/reschedule", data={"slot": "2026-12-01T18:00:00+00:00"}).text
    for anchor in re.findall(r'<a href="#([^"]+)"', html):
        assert f'id="{anchor}"' in html


def test_the_confirmation_of_a_cancelled_request_says_cancelled(app, client, booked):
    request_id, url = booked
    client.post(url + "/cancel")
    with app.app_context():
        public_id = db.session.get(ConsultationRequest, request_id).public_id
    html = client.get(f"/consultation/confirmed/{public_id}").text
    assert "<title>This consultation was cancelled" in html and "booked" not in html


def test_the_privacy_notice_is_linked_from_the_consent_and_every_footer(client, therapist_id):
    page = client.get("/privacy")
    assert page.status_code == 200 and "Version 2026-11" in page.text
    for heading in ("What we collect", "Who sees it", "How long we keep it", "deleting"):
        assert heading in page.text
    pass_eligibility(client)
    html = details_page(client)
    consent = html[html.index('id="consent_privacy-hint"'):]
    assert 'href="/privacy"' in consent[:400]
    assert 'href="/privacy"' in client.get("/").text


def test_the_crisis_banner_speaks_to_the_page_and_says_988_once(client, booked):
    _, manage_url = booked
    pages_with_a_form = ["/consultation", f"{manage_url}/cancel", f"{manage_url}/reschedule"]
    pages_without = ["/", "/privacy", "/consultation/not-eligible", manage_url]
    pass_eligibility(client)
    pages_with_a_form.append("/consultation/details")
    for url in pages_with_a_form + pages_without:
        page = client.get(url).text
        banner = page.partition('aria-label="Crisis support"')[2].partition("</aside>")[0]
        assert "In crisis or thinking about suicide?" in banner, url
        assert ("This form is not for emergencies." in banner) == (url in pages_with_a_form), url
        assert 'href="tel:988"' in banner and 'href="sms:988"' in banner
        assert banner.count("988</a>") + banner.count(" 988,") == 1, url
        assert "(text 988)" not in page and "text 988</a>" not in page
