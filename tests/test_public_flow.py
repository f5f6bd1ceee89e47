"""The public request flow through the test client: eligibility, details and a
time, confirmation, and the manage page, asserting pages, redirects and rows."""

from __future__ import annotations

import html as html_module
import re
import time
from datetime import UTC, datetime, timedelta

import flask
import pytest
import time_machine
from sqlalchemy import func, select

from portal.booking.business_days import parse_holidays, reply_due_day
from portal.booking.intake_tables import NotEligibleCount, Setting
from portal.booking.scheduling import PACIFIC, format_day, parse_slot_value
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.links import manage_token
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest, EmailVerification, RequestNote
from portal.public import journey
from tests.backoffice import database_snapshot
from tests.factories import future_slot, make_request, make_therapist

ELIGIBLE = {"ca_resident": "yes", "zip_code": "94110", "in_california": "yes", "adult": "yes"}
FORM_TOKEN = re.compile(r'name="form_token" type="hidden" value="([^"]+)"')
SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')
# Each step's fields, its address, and where it goes when its answers are fine.
STEPS = (("/consultation/time", ("therapist", "slot", "waitlist", "csrf_token"),
          "/consultation/about"),
         ("/consultation/about", ("first_name", "last_name", "email", "email_as_typed", "phone",
                                  "meeting", "use_email", "csrf_token"), "/consultation/check"),
         ("/consultation/check", ("consent_privacy", "ack_not_emergency", "website",
                                  "form_token", "csrf_token"), "/consultation/verify"))
PREPARE_FIELDS = ("preferred_name", "preferred_contact", "ok_to_text", "ok_to_voicemail",
                  "interests", "message", "payment")


def pass_eligibility(client):
    response = client.post("/consultation", data=ELIGIBLE)
    assert response.status_code == 302 and response.location == "/consultation/time"


def details_page(client, therapist="any"):
    """The time page (step 2) for ``therapist``."""
    response = client.get(f"/consultation/time?therapist={therapist}")
    assert response.status_code == 200
    return response.text


def read_journey(client) -> dict:
    """The journey kept in the client's session cookie (encrypted there)."""
    with client.session_transaction() as session:
        return journey.decode(session.get("journey"), client.application.secret_key)


def write_journey(client, state: dict, **where) -> None:
    """Put ``state`` in the client's session as the journey (encrypted, as the app does)."""
    with client.application.test_request_context():
        journey._save(state)
        value = flask.session["journey"]
    with client.session_transaction(**where) as session:
        session["journey"] = value


def journey_token(client) -> str:
    """The journey's one-time token, as the check page carries it."""
    return read_journey(client)["token"]


def form_data(client, therapist="any", slot_index=0, **fields) -> dict:
    """Every answer of steps 2 to 4, valid, as the pages offer them."""
    html = details_page(client, therapist)
    slots = SLOT_VALUE.findall(html)
    data = {
        "first_name": "Casey", "last_name": "Rivera", "email": "casey@example.com",
        "phone": "(415) 555-0123", "meeting": "phone", "therapist": therapist,
        "slot": slots[slot_index], "consent_privacy": "y", "ack_not_emergency": "y",
        "website": "", "form_token": journey_token(client),
    }
    return {**data, **fields}


def send(client, data: dict, **request):
    """Steps 2 to 4 with the answers in ``data`` (step 1 passed already), as a person
    sends them page by page: the check page's response (a redirect to the code page
    when the request went through), or, where a step sent the visitor back (to itself
    or another step), the page that redirect shows."""
    for url, fields, onwards in STEPS:
        answers = {name: data[name] for name in fields if data.get(name) is not None}
        response = client.post(url, data=answers, **request)
        if response.status_code != 302:
            return response
        if response.location != onwards:
            return response if response.location == "/consultation/verify" \
                else client.get(response.location, **request)
    return response


def prepare(client, public_id: str, **answers):
    """"Help us prepare" on the confirmation page."""
    return client.post(f"/consultation/prepare/{public_id}", data=answers)


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
    """Steps 2 to 5 through the web (step 1 already passed); the confirmation redirect.
    Answers to "help us prepare" among ``fields`` are sent from the confirmation page."""
    later = {name: fields.pop(name) for name in PREPARE_FIELDS if name in fields}
    data = form_data(client, **fields)
    response = send(client, data)
    assert response.status_code == 302 and response.location == "/consultation/verify", \
        response.text
    confirmed = enter_code(client, app, data["email"])
    assert confirmed.status_code == 302, confirmed.text
    if later:
        public_id = confirmed.location.rpartition("/")[2]
        assert prepare(client, public_id, **later).status_code == 302
    return confirmed


def checked_therapist(html: str) -> str:
    [value] = re.findall(r'<option value="([^"]+)" selected>', html)
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


def test_later_steps_need_eligibility_first(client):
    for url in ("/consultation/time", "/consultation/about", "/consultation/check"):
        response = client.get(url)
        assert response.status_code == 302 and response.location == "/consultation", url


def test_the_old_details_address_leads_to_the_time(client):
    response = client.get("/consultation/details?therapist=3")
    assert response.status_code == 302
    assert response.location == "/consultation/time?therapist=3"
    assert client.get("/consultation/details").location == "/consultation/time"


def test_each_step_asks_only_its_own_questions(client, therapist_id):
    """Four for eligibility, one time, five about you, two agreements: 12 in all."""
    page = client.get("/consultation").text
    assert 'name="state"' not in page
    for name in ("ca_resident", "zip_code", "in_california", "adult"):
        assert f'name="{name}"' in page
    pass_eligibility(client)
    time_page = details_page(client)
    assert 'name="slot"' in time_page and 'name="first_name"' not in time_page
    client.post("/consultation/time", data={"therapist": "any",
                                            "slot": SLOT_VALUE.findall(time_page)[0]})
    about = client.get("/consultation/about").text
    for name in ("first_name", "last_name", "email", "phone", "meeting"):
        assert f'name="{name}"' in about
    for name in ("preferred_contact", "ok_to_text", "payment", "message", "interests"):
        assert f'name="{name}"' not in about


def test_unanswered_eligibility_shows_field_errors(client):
    response = client.post("/consultation", data={})
    assert response.status_code == 302 and response.location == "/consultation"
    html = client.get(response.location).text
    assert "<title>Error: " in html and 'role="alert"' in html
    assert "Enter your ZIP code" in html
    assert "Select yes if you live in California" in html
    assert "Select yes if you are 18 or older" in html
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
    assert response.status_code == 302 and response.location == "/consultation"
    response = client.get("/consultation")
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
    ({"ca_resident": "no", "zip_code": "97201"}, "other-state", "You told us you live in Oregon"),
    ({"ca_resident": "no", "zip_code": ""}, "not-resident",
     "You told us California isn't your main home"),
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
    assert "Change my answers" in page
    if reason == "other-state":  # only places that serve people in Oregon
        assert "CAMFT" not in page and "county mental health" not in page
    assert requests_stored(app) == []
    assert outbox_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.sum(NotEligibleCount.count))) == 1
    client.post("/consultation", data={**ELIGIBLE, **answers})
    with app.app_context():
        assert db.session.scalar(select(func.sum(NotEligibleCount.count))) == 2


def test_session_holds_only_step_one_answers(client):
    pass_eligibility(client)
    state = read_journey(client)
    assert state["answers"] == {"eligibility": ELIGIBLE} and set(state) == {"answers", "token"}
    with client.session_transaction() as session:  # signed, not encrypted: the journey is
        assert "94110" not in str(dict(session))  # encrypted in it


# -- step 2 ------------------------------------------------------------------------

def test_booking_a_time_holds_it_and_asks_for_the_emailed_code(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    response = send(client, data)
    assert response.status_code == 302 and response.location == "/consultation/verify"
    [row] = requests_stored(app)
    assert row.status == "pending"
    assert len(row.public_id) >= 16
    assert row.therapist_id == therapist_id
    assert row.starts_at == parse_slot_value(data["slot"])
    assert (row.phone, row.email_normalised) == ("+14155550123", "casey@example.com")
    assert (row.first_name_normalised, row.last_name_normalised) == ("casey", "rivera")
    assert row.interests == "" and row.privacy_notice_version == "2026-11"
    assert row.meeting == "phone" and row.adult is True and row.state == "CA"
    # "Help us prepare" comes after the code: unanswered until then.
    assert (row.preferred_contact, row.ok_to_text, row.ok_to_voicemail, row.payment) == (
        None, None, None, None)
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
    send(client, form_data(client))
    response = enter_code(client, app)
    [row] = requests_stored(app)
    assert response.status_code == 302
    assert response.location == f"/consultation/confirmed/{row.public_id}"
    assert row.status == "new"
    assert sorted(outbox_kinds(app)) == ["confirmation", "therapist_notice", "verification_code"]
    page = client.get(response.location).text
    assert "Your consultation is booked" in page and "Maya Alvarez" in page
    assert "casey@example.com" not in page and "Rivera" not in page
    # The number appears once: in "Maya Alvarez will call you at (415) 555-0123 on …".
    assert page.count("555-0123") == 1 and "will call you at (415) 555-0123 on " in page
    with client.session_transaction() as session:
        assert "journey" not in session and "pending" not in session
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EmailVerification)) == 0


def confirmation_email(app) -> str:
    with app.app_context():
        return db.session.scalar(select(OutboxEmail.body_text)
                                 .where(OutboxEmail.kind == "confirmation"))


def test_a_booked_phone_call_says_who_calls_whom_at_which_number_and_when(
        app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    start = parse_slot_value(data["slot"]).astimezone(PACIFIC)
    page = html_module.unescape(client.get(book(client, app).location).text)
    body = confirmation_email(app)
    [next_step] = re.findall(r"What happens next: (.+)", body)
    hour = start.strftime("%I:%M %p").lstrip("0")
    assert next_step == (f"Maya Alvarez will call you at (415) 555-0123 on "
                         f"{format_day(start.date())}, {hour} PT.")
    assert next_step in page
    # A time is booked: no reply promise, which could fall after it.
    assert "We'll reply" not in page and "We'll reply" not in body
    # The address it went to, masked: this page opens for anyone with its link.
    assert "to <strong>c\u2022\u2022\u2022@example.com</strong>." in page
    assert "casey@" not in page


def test_without_a_time_the_page_and_email_promise_a_reply(app, client, therapist_id):
    pass_eligibility(client)
    page = html_module.unescape(client.get(book(client, app, slot="none").location).text)
    [next_step] = re.findall(r"What happens next: (.+)", confirmation_email(app))
    assert next_step.startswith("We'll reply within one business day, by the end of ")
    assert next_step.endswith(", to find a time that works for you.")
    assert next_step in page


def test_a_friday_evening_request_is_promised_a_reply_by_monday(app, client, therapist_id):
    with time_machine.travel(datetime(2026, 12, 4, 19, 30, tzinfo=PACIFIC), tick=True):
        pass_eligibility(client)
        page = html_module.unescape(client.get(book(client, app, slot="none").location).text)
    body = confirmation_email(app)
    promise = "We'll reply within one business day, by the end of Monday, December 7,"
    assert promise in page and promise in body


@pytest.mark.clock
def test_the_promised_day_is_the_next_business_day_at_any_hour(app, client, therapist_id):
    pass_eligibility(client)
    page = html_module.unescape(client.get(book(client, app, slot="none").location).text)
    day = reply_due_day(datetime.now(UTC), parse_holidays(app.config["HOLIDAYS"]))
    assert f"within one business day, by the end of {format_day(day)}, to find" in page


def test_a_pending_request_has_no_confirmation_page(app, client, therapist_id):
    pass_eligibility(client)
    send(client, form_data(client))
    [row] = requests_stored(app)
    assert client.get(f"/consultation/confirmed/{row.public_id}").status_code == 404


def test_a_second_submit_of_the_same_form_creates_nothing(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    first = send(client, data)
    second = send(client, data)
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
    data = form_data(client, first_name="", email="not-an-email", phone="12")
    response = send(client, data)
    html = response.text
    assert response.status_code == 200 and "<title>Error: About you" in html
    for message in ("Enter your first name", "Enter an email address in the correct format",
                    "Enter a US phone number"):
        assert message in html
    assert 'value="not-an-email"' in html and 'value="Rivera"' in html
    assert 'aria-invalid="true"' in html and 'aria-describedby="email-hint email-error"' in html
    # Refreshed, the page still shows them (the answers travel in the session).
    assert client.get("/consultation/about").text == html
    # The time chosen at the step before is kept too.
    assert f'value="{data["slot"]}" checked' in details_page(client)
    response = send(client, {**form_data(client), "consent_privacy": ""})
    html = response.text
    assert "<title>Error: Check your answers" in html and "Agree to the privacy notice" in html
    assert requests_stored(app) == []
    with client.session_transaction() as session:  # signed, not encrypted: no personal data
        assert set(session) <= {"journey", "csrf_token", "_flashes", "visitor", "pending"}
        assert "Rivera" not in str(dict(session)) and "not-an-email" not in str(dict(session))


def test_an_email_typo_is_pointed_out_before_storing(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, email="casey@gmial.com")
    html = send(client, data).text
    assert "Did you mean casey@gmail.com?" in html
    assert "or check \u201cMy email address is right as I typed it\u201d" in html
    assert requests_stored(app) == []
    response = send(client, {**data, "email_as_typed": "y"})
    assert response.status_code == 302
    assert requests_stored(app)[0].email_normalised == "casey@gmial.com"


def test_the_typo_hint_fixes_the_address_in_one_click(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, email="casey@gmial.com", first_name="")
    html = send(client, data).text
    assert '<button type="submit" name="use_email" value="casey@gmail.com"' in html
    # The button posts the whole form: the address is replaced, what else needs fixing
    # still shows, and nothing is stored until "Book consultation".
    response = send(client, {**data, "use_email": "casey@gmail.com"})
    html = response.text
    assert response.status_code == 200 and requests_stored(app) == []
    assert re.search(r'<input [^>]*id="email"[^>]*value="casey@gmail.com"', html)
    assert "Did you mean" not in html and 'name="use_email"' not in html
    assert "Enter your first name" in html
    response = send(client, {
        **data, "email": "casey@gmail.com", "first_name": "Casey"})
    assert response.status_code == 302
    assert requests_stored(app)[0].email_normalised == "casey@gmail.com"


def test_the_error_summary_follows_the_page_order(client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, first_name="", email="not-an-email", phone="12")
    del data["meeting"]
    html = send(client, data).text
    summary = html[html.index('class="error-summary"'):]
    summary = summary[:summary.index("</div>")]
    targets = re.findall(r'<a href="#([^"]+)"', summary)
    assert targets == ["first_name", "email", "phone", "meeting-0"]
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
    html = send(client, form_data(client, phone="+44 20 7946 0000")).text
    assert "Enter a US phone number" in html


def test_a_time_taken_meanwhile_shows_just_taken_with_the_form_intact(app, client, therapist_id):
    pass_eligibility(client)
    data = form_data(client, first_name="Jordan")
    with app.app_context():
        make_request(db.session.get(Therapist, therapist_id), parse_slot_value(data["slot"]))
        db.session.commit()
    response = send(client, data)
    assert response.status_code == 200 and "<title>Error: Check your answers" in response.text
    assert ("That time was just taken. Choose another time: everything else you told us is "
            "kept." in html_module.unescape(response.text))
    assert re.search(r'<a href="/consultation/time\?therapist=any&amp;from=check#times">That',
                     response.text)
    assert "Jordan" in response.text  # every other answer kept
    assert len(requests_stored(app)) == 1
    # Another time, and straight back to the check page with everything else kept.
    other = SLOT_VALUE.findall(details_page(client))[1]
    moved = client.post("/consultation/time", data={"therapist": "any", "slot": other,
                                                    "from": "check"})
    assert moved.location == "/consultation/check"
    assert send(client, {**data, "slot": other}).location == "/consultation/verify"


def test_step_one_is_rechecked_on_submit(client, therapist_id):
    pass_eligibility(client)
    data = form_data(client)
    send(client, {**data, "consent_privacy": ""})  # every step answered but the last
    state = read_journey(client)
    state["answers"]["eligibility"] = {**ELIGIBLE, "zip_code": "97201"}
    write_journey(client, state)
    response = client.post("/consultation/check", data={
        name: data[name] for name in ("consent_privacy", "ack_not_emergency", "form_token")})
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
    for url in ("/consultation", "/consultation/time", "/consultation/about",
                "/consultation/check"):
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
    # The one button saves "help us prepare" answers; nothing about the booking.
    assert re.findall(r"<button[^>]*>([^<]*)<", page.partition('id="main"')[2]) == [
        "Save my answers"]
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
    assert "has been canceled" in client.get(url).text
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
    html = send(client, data).text
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


def test_show_times_switches_therapist_and_keeps_the_visitors_place(app, client,
                                                                   other_therapist_id):
    other_id = other_therapist_id
    pass_eligibility(client)
    html = details_page(client)
    # A GET form that lands back at the times, not at the top of the page.
    assert '<form method="get" action="/consultation/time#times"' in html
    assert 'id="times"' in html
    html = details_page(client, str(other_id))
    assert 'role="alert"' not in html  # nothing judged
    assert checked_therapist(html) == str(other_id)
    assert "Showing free times for <strong>Daniel Okafor" in html
    assert requests_stored(app) == []


def test_the_waitlist_question_sits_under_none_of_these_times(client, therapist_id):
    pass_eligibility(client)
    html = details_page(client)
    none = html.index('value="none"')
    waitlist = html.index('name="waitlist"')
    assert none < waitlist
    assert 'class="waitlist-choice conditional"' in html[none:waitlist]


def test_names_of_only_spaces_are_refused(app, client, therapist_id):
    pass_eligibility(client)
    html = send(client, form_data(client, first_name="   ", last_name="\u00a0 ")).text
    assert "Enter your first name" in html and "Enter your last name" in html
    assert requests_stored(app) == []


def test_long_names_that_casefold_longer_are_stored(app, client, therapist_id):
    pass_eligibility(client)
    response = send(client, form_data(client, first_name="\u0130" * 80,
                                          last_name="Stra\u00dfe" * 13))
    assert response.status_code == 302
    [row] = requests_stored(app)
    assert row.first_name == "\u0130" * 80
    assert len(row.first_name_normalised) <= 80 and len(row.last_name_normalised) <= 80
    assert row.last_name_normalised.startswith("strasse")


def test_repeated_interests_are_stored_once(app, client, therapist_id):
    pass_eligibility(client)
    book(client, app, interests=["depression"] * 60 + ["kap"])
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
    assert "<title>This consultation was canceled" in html and "booked" not in html


def test_the_privacy_notice_is_linked_from_the_consent_and_every_footer(client, therapist_id):
    page = client.get("/privacy")
    assert page.status_code == 200 and "Version 2026-11" in page.text
    for heading in ("What we collect", "Who sees it", "How long we keep it", "deleting"):
        assert heading in page.text
    pass_eligibility(client)
    send(client, {**form_data(client), "consent_privacy": ""})
    html = client.get("/consultation/check").text
    consent = html[html.index('id="consent_privacy-hint"'):]
    assert 'href="/privacy"' in consent[:400]
    assert 'href="/privacy"' in client.get("/").text


def test_the_crisis_banner_speaks_to_the_page_and_says_988_once(client, booked):
    _, manage_url = booked
    pages_with_a_form = ["/consultation", f"{manage_url}/cancel", f"{manage_url}/reschedule"]
    pages_without = ["/", "/privacy", "/consultation/not-eligible", manage_url]
    pass_eligibility(client)
    send(client, {**form_data(client), "consent_privacy": ""})
    pages_with_a_form += ["/consultation/time", "/consultation/about", "/consultation/check"]
    for url in pages_with_a_form + pages_without:
        page = client.get(url).text
        banner = page.partition('aria-label="Crisis support"')[2].partition("</aside>")[0]
        assert "In crisis or thinking about suicide?" in banner, url
        assert ("This form is not for emergencies." in banner) == (url in pages_with_a_form), url
        assert 'href="tel:988"' in banner and 'href="sms:988"' in banner
        assert banner.count("988</a>") + banner.count(" 988,") == 1, url
        assert "(text 988)" not in page and "text 988</a>" not in page
