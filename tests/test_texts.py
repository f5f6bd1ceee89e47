"""Text messages (DESIGN, "Text messages"): consent, texts through the outbox to the real
``twilio`` client and a local fake of its Messaging API (tests/twilio_fake.py), STOP,
START and HELP, delivery reports, quiet hours, reminders, what texts say, and what
staff see."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.booking import consultations
from portal.extensions import db
from portal.messages import outbox
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, to_db
from portal.texts import backends, compose, consent, delivery, outgoing
from portal.texts.models import TextConsent, TextConsentEvent, TextMessage, TextOptOut
from tests.backoffice import sign_in
from tests.factories import make_request, make_therapist, make_user
from tests.twilio_fake import FROM, PUBLIC, TWILIO_CONFIG, FakeTwilio, post_signed

# Tuesday, December 8, 2026, 10:00 AM in California: no quiet hours.
DAY = datetime(2026, 12, 8, 18, 0, tzinfo=UTC)
PHONE = "+14155550123"


@pytest.fixture
def app_config():
    return dict(TWILIO_CONFIG)


@pytest.fixture
def twilio():
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def texting(app, twilio):
    app.extensions["sms_http_client"] = twilio.http_client()
    return app


@pytest.fixture
def daytime():
    with time_machine.travel(DAY, tick=True) as traveller:
        yield traveller


def new_request(app, *, hours_ahead: float = 48, language: str = "en", **fields) -> int:
    with app.app_context():
        therapist = make_therapist("Maya Alvarez")
        start = (datetime.now(UTC) + timedelta(hours=hours_ahead)).replace(
            minute=0, second=0, microsecond=0) if hours_ahead else None
        consultation = make_request(therapist, start, first_name="Rosa", last_name="Delgado",
                                    phone=PHONE, language=language, **fields)
        db.session.commit()
        return consultation.id


def public_id(app, request_id: int) -> str:
    with app.app_context():
        return db.session.get(ConsultationRequest, request_id).public_id


def answer_texts(client, app, request_id: int, *, ok: str = "yes", ticked: bool = True,
                 back: str | None = None):
    data = {"ok_to_text": ok}
    if ticked:
        data["sms_consent"] = "y"
    if back:
        data["back"] = back
    return client.post(f"/consultation/prepare/{public_id(app, request_id)}", data=data)


def consenting(app, client, **fields) -> int:
    request_id = new_request(app, **fields)
    assert answer_texts(client, app, request_id).status_code == 302
    return request_id


def deliver(app, now: datetime | None = None) -> outbox.DeliveryReport:
    with app.app_context():
        return delivery.deliver_due(now)


def text_rows(app, request_id: int) -> list[tuple[str, str, str]]:
    """(kind, outbox status, text state) of each text about the request, in order."""
    with app.app_context():
        return [(row.kind, row.status, text.state) for row, text in db.session.execute(
            select(OutboxEmail, TextMessage).join(TextMessage,
                                                  TextMessage.outbox_id == OutboxEmail.id)
            .where(OutboxEmail.request_id == request_id).order_by(OutboxEmail.id)).all()]


# -- consent ---------------------------------------------------------------------

def test_the_consent_box_is_never_ticked_for_the_client(texting, client, daytime):
    request_id = new_request(texting)
    page = client.get(f"/consultation/prepare/{public_id(texting, request_id)}")
    html = page.get_data(as_text=True)
    box = re.search(r'<input type="checkbox"[^>]*name="sms_consent"[^>]*>', html).group(0)
    assert 'value="y"' in box and "checked" not in box
    assert consent.WORDING in html.replace("\n", " ")


def test_consent_is_kept_as_an_event_and_texts_a_confirmation(texting, client, twilio,
                                                             daytime):
    request_id = consenting(texting, client)
    with texting.app_context():
        given = db.session.scalar(select(TextConsent))
        event = db.session.scalar(select(TextConsentEvent))
        assert given.request_id == request_id and given.phone == PHONE and given.active
        assert (event.action, event.source, event.wording_version, event.phone) == (
            "given", "prepare form", consent.WORDING_VERSION, PHONE)
    report = deliver(texting)
    assert report.sent == 1
    [sent] = twilio.messages
    assert sent.to == PHONE and sent.values["From"] == FROM
    assert sent.values["StatusCallback"] == f"{PUBLIC}/sms/status"
    assert sent.body.startswith("Woven Together: Texts on for your consultation,")
    assert "PT" in sent.body and f"{PUBLIC}/t/" in sent.body
    assert text_rows(texting, request_id) == [("text_confirmation", "sent", "sent")]
    # Saving the same answers again texts nothing more.
    answer_texts(client, texting, request_id)
    deliver(texting)
    assert len(twilio.messages) == 1


@pytest.mark.parametrize(("ok", "ticked"), [("yes", False), ("no", True), ("", True)])
def test_no_consent_without_both_the_yes_and_the_ticked_box(texting, client, twilio, daytime,
                                                            ok, ticked):
    request_id = new_request(texting)
    answer_texts(client, texting, request_id, ok=ok, ticked=ticked)
    deliver(texting)
    assert twilio.messages == []
    with texting.app_context():
        assert db.session.scalar(select(TextConsent)) is None


def test_unticking_on_the_manage_page_withdraws_consent(texting, client, twilio, daytime):
    request_id = consenting(texting, client)
    answer_texts(client, texting, request_id, ticked=False, back="manage")
    deliver(texting)
    assert twilio.messages == []  # the queued confirmation never went
    with texting.app_context():
        actions = [e.action for e in db.session.scalars(
            select(TextConsentEvent).order_by(TextConsentEvent.id))]
        assert actions == ["given", "withdrawn"]
    assert text_rows(texting, request_id) == [("text_confirmation", "superseded", "dropped")]


# -- STOP, START, HELP and other texts --------------------------------------------

@pytest.mark.parametrize("word", ["STOP", "stopall", " Unsubscribe ", "CANCEL", "end", "Quit"])
def test_stop_ends_every_text_at_once_even_those_already_queued(texting, client, twilio,
                                                                daytime, word):
    request_id = consenting(texting, client)
    answer = twilio.text_in(client, PHONE, word)
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    assert "START" in answer.get_data(as_text=True)
    with texting.app_context():  # and a reminder queued after it is refused too
        assert outgoing.queue(db.session.get(ConsultationRequest, request_id),
                              "text_reminder_24h", "later") is None
    deliver(texting)
    assert twilio.messages == []
    assert text_rows(texting, request_id) == [("text_confirmation", "superseded", "dropped")]
    with texting.app_context():
        assert db.session.scalar(select(TextOptOut)) is not None
        assert db.session.scalar(select(TextConsentEvent.action).order_by(
            TextConsentEvent.id.desc()).limit(1)) == "stop"


def test_a_text_already_claimed_is_not_sent_after_stop(texting, client, twilio, daytime):
    request_id = consenting(texting, client)
    with texting.app_context():
        batch = outbox.claim_batch(datetime.now(UTC), "run-1", 10, channel="sms")
    twilio.text_in(client, PHONE, "STOP")
    with texting.app_context():
        report = outbox.DeliveryReport()
        delivery.send_one(backends.backend(), batch[0], datetime.now(UTC), "run-1", report)
    assert twilio.messages == []
    assert text_rows(texting, request_id) == [("text_confirmation", "superseded", "dropped")]


def test_start_brings_texts_back(texting, client, twilio, daytime):
    request_id = consenting(texting, client)
    twilio.text_in(client, PHONE, "STOP")
    answer = twilio.text_in(client, PHONE, "START")
    assert "STOP" in answer.get_data(as_text=True)
    with texting.app_context():
        consultation = db.session.get(ConsultationRequest, request_id)
        assert consent.has_consent(consultation)
        assert db.session.scalar(select(TextOptOut)) is None
        outgoing.queue(consultation, "text_reminder_24h", "after-start")
        db.session.commit()
    deliver(texting)
    assert [m.body for m in twilio.messages][0].startswith("Woven Together: Reminder")


def test_after_stop_the_manage_page_says_only_start_brings_texts_back(texting, client,
                                                                     twilio, daytime):
    """Ticking the box again on the web can't undo a STOP (the carrier refuses the texts
    too): the manage page and the saved answers say what will, and START clears it."""
    from portal.links import manage_token

    request_id = consenting(texting, client)
    with texting.app_context():
        manage = f"/manage/{manage_token(db.session.get(ConsultationRequest, request_id))}"
    assert 'id="texts-stopped"' not in client.get(manage).get_data(as_text=True)
    twilio.text_in(client, PHONE, "STOP")
    html = client.get(manage).get_data(as_text=True)
    assert 'id="texts-stopped"' in html and "reply START" in html
    saved = answer_texts(client, texting, request_id, back="manage")
    html = client.get(saved.location).get_data(as_text=True)
    assert html.count("reply START to that text") == 2  # the notice, and the saved answers'
    deliver(texting)
    assert twilio.messages == []
    twilio.text_in(client, PHONE, "START")
    assert 'id="texts-stopped"' not in client.get(manage).get_data(as_text=True)


def test_help_answers_with_the_practices_phone(texting, client, twilio, daytime):
    consenting(texting, client)
    answer = twilio.text_in(client, PHONE, "help")
    said = answer.get_data(as_text=True)
    assert texting.config["PRACTICE_PHONE"] in said and "988" in said


def test_another_text_gets_no_answer_and_shows_to_staff(texting, client, twilio, daytime):
    request_id = consenting(texting, client)
    answer = twilio.text_in(client, PHONE, "Can we move it to Friday?")
    assert "<Message>" not in answer.get_data(as_text=True)
    with texting.app_context():
        make_user("boss@example.com")
        db.session.commit()
    sign_in(client, "boss@example.com")
    page = client.get(f"/admin/requests/{request_id}").get_data(as_text=True)
    assert "Can we move it to Friday?" in page
    assert "Not answered automatically" in page
    assert "Texts on" in page and "ending in 0123" in page


def test_an_unknown_number_is_answered_with_nothing_personal(texting, client, twilio):
    answer = twilio.text_in(client, "+14155550999", "HELP")
    said = answer.get_data(as_text=True)
    assert "Delgado" not in said and "Rosa" not in said


# -- signatures ---------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/sms/inbound", "/sms/status"])
def test_only_requests_signed_by_twilio_are_accepted(texting, client, twilio, path, caplog):
    values = {"From": PHONE, "Body": "STOP SENTINEL-BODY", "MessageSid": "SMx",
              "MessageStatus": "delivered"}
    assert post_signed(client, path, values).status_code in (200, 204)
    changed = client.post(path, data={**values, "Body": "START"}, headers={
        "X-Twilio-Signature": __import__("tests.twilio_fake", fromlist=["x"]).signature(
            PUBLIC + path, values)})
    assert changed.status_code == 403
    other_url = post_signed(client, path, values, url="https://elsewhere.example.com" + path)
    assert other_url.status_code == 403
    other_token = post_signed(client, path, values, token="0" * 32)
    assert other_token.status_code == 403
    with caplog.at_level(logging.INFO):
        missing = client.post(path, data=values)
    assert missing.status_code == 403
    assert "refused" in caplog.text and "SENTINEL" not in caplog.text and PHONE not in caplog.text


# -- delivery reports and failures ----------------------------------------------------

def test_delivery_reports_update_each_text(texting, client, twilio, daytime):
    request_id = consenting(texting, client)
    deliver(texting)
    sid = twilio.messages[0].sid
    assert twilio.report(client, sid, "sent").status_code == 204
    assert twilio.report(client, sid, "delivered").status_code == 204
    assert twilio.report(client, sid, "sent").status_code == 204  # late and out of order
    assert text_rows(texting, request_id) == [("text_confirmation", "sent", "delivered")]


def test_an_undelivered_text_shows_why_and_goes_by_email(texting, client, twilio, daytime):
    request_id = consenting(texting, client)
    deliver(texting)
    twilio.report(client, twilio.messages[0].sid, "undelivered", error_code=30034)
    assert text_rows(texting, request_id) == [("text_confirmation", "failed", "undelivered")]
    with texting.app_context():
        row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "text_fallback"))
        assert row.channel == "email" and row.recipient.endswith("@example.com")
        assert "ending in 0123" in row.body_text and "Texts on" in row.body_text
        assert "988" in row.body_text
        failed = db.session.scalar(select(OutboxEmail).where(OutboxEmail.channel == "sms"))
        assert "30034" in failed.last_error and "A2P 10DLC" in failed.last_error
        make_user("boss@example.com")
        db.session.commit()
    sign_in(client, "boss@example.com")
    page = client.get(f"/admin/requests/{request_id}").get_data(as_text=True)
    assert "Not delivered" in page and "sent by email instead" in page
    # A second report of the same failure queues no second email.
    twilio.report(client, twilio.messages[0].sid, "failed", error_code=30034)
    with texting.app_context():
        assert db.session.scalar(select(db.func.count(OutboxEmail.id)).where(
            OutboxEmail.kind == "text_fallback")) == 1


def test_an_unsubscribed_number_fails_for_good_and_stops_texts(texting, client, twilio,
                                                              daytime):
    request_id = consenting(texting, client)
    twilio.plan = [21610]
    report = deliver(texting)
    assert report.failed == 1 and len(twilio.messages) == 1
    assert text_rows(texting, request_id) == [("text_confirmation", "failed", "failed")]
    with texting.app_context():
        assert db.session.scalar(select(TextOptOut)) is not None
        assert db.session.scalar(select(OutboxEmail.kind).where(
            OutboxEmail.kind == "text_fallback")) == "text_fallback"


@pytest.mark.parametrize("trouble", [20429, "timeout"])
def test_a_busy_or_silent_api_is_retried_later(texting, client, twilio, daytime, trouble):
    request_id = consenting(texting, client)
    twilio.plan = [trouble]
    report = deliver(texting)
    assert report.retrying == 1
    assert text_rows(texting, request_id) == [("text_confirmation", "queued", "queued")]
    with texting.app_context():
        row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.channel == "sms"))
        assert row.attempts == 1 and "Twilio" in row.last_error
    daytime.shift(timedelta(minutes=5))
    assert deliver(texting).sent == 1


class Killed(BaseException):
    """The sender dies (kill -9) right after the provider took a text."""


def test_a_killed_sender_resends_at_most_one_text(texting, client, twilio, daytime,
                                                  monkeypatch):
    ids = [consenting(texting, client) for _ in range(3)]
    original = outbox.mark_sent
    calls = []

    def dies_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Killed
        return original(*args, **kwargs)

    monkeypatch.setattr(outbox, "mark_sent", dies_once)
    with pytest.raises(Killed):
        deliver(texting)
    with texting.app_context():
        db.session.rollback()
    assert len(twilio.messages) == 1
    daytime.shift(timedelta(seconds=texting.config["OUTBOX_LEASE_SECONDS"] + 5))
    deliver(texting)
    bodies = [m.body for m in twilio.messages]
    assert len(bodies) == 4 and len(set(bodies)) == 3  # the one in flight went twice
    for request_id in ids:
        assert text_rows(texting, request_id) == [("text_confirmation", "sent", "sent")]


def test_a_text_whose_sender_keeps_dying_fails_for_good_and_goes_by_email(
        texting, client, twilio, daytime, monkeypatch):
    request_id = consenting(texting, client)

    def dies(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(outbox, "mark_sent", dies)  # every attempt dies after the send
    for _ in range(texting.config["OUTBOX_MAX_ATTEMPTS"]):
        with pytest.raises(Killed):
            deliver(texting)
        with texting.app_context():
            db.session.rollback()
        daytime.shift(timedelta(seconds=texting.config["OUTBOX_LEASE_SECONDS"] + 5))
    deliver(texting)  # the next round gives up on it
    assert text_rows(texting, request_id) == [("text_confirmation", "failed", "failed")]
    with texting.app_context():
        fallback = db.session.scalar(select(OutboxEmail).where(
            OutboxEmail.kind == "text_fallback"))
        assert fallback is not None and "Texts on" in fallback.body_text


# -- quiet hours -------------------------------------------------------------------------

# At each instant (all at night in California), the next 8 AM Pacific, in UTC.
NEXT_EIGHT = {
    "2026-12-03T07:30:00+00:00": "2026-12-03T16:00:00+00:00",
    "2027-01-03T23:59:00-08:00": "2027-01-04T16:00:00+00:00",
    "2027-07-05T00:01:00-07:00": "2027-07-05T15:00:00+00:00",
    "2027-03-14T01:59:00-08:00": "2027-03-14T15:00:00+00:00",
    "2027-03-14T03:01:00-07:00": "2027-03-14T15:00:00+00:00",
    "2027-11-07T01:59:00-07:00": "2027-11-07T16:00:00+00:00",
    "2027-11-07T01:01:00-08:00": "2027-11-07T16:00:00+00:00",
}


@pytest.mark.clock
def test_no_text_at_night_it_waits_for_eight_or_is_dropped(texting, client, twilio, clock):
    eight = datetime.fromisoformat(NEXT_EIGHT[clock.isoformat()])
    waits = consenting(texting, client, hours_ahead=30)
    # A consultation starting before 8 AM: its text would come too late.
    with texting.app_context():
        therapist = make_therapist()
        early = make_request(therapist, eight - timedelta(minutes=30), phone="+14155550124")
        early.ok_to_text = True
        db.session.commit()
        early_id = early.id
    answer_texts(client, texting, early_id)
    with texting.app_context():
        assert len(db.session.scalars(select(TextMessage)).all()) == 2
        # Whatever the row says, the sender judges the clock too.
        db.session.execute(db.update(OutboxEmail).values(next_attempt_at=to_db(clock)))
        db.session.commit()
    deliver(texting)
    assert twilio.messages == []
    assert text_rows(texting, early_id) == [("text_confirmation", "superseded", "dropped")]
    assert text_rows(texting, waits) == [("text_confirmation", "queued", "queued")]
    with texting.app_context():
        row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.request_id == waits))
        assert row.next_attempt_at == to_db(eight) and row.attempts == 0
    deliver(texting, eight - timedelta(minutes=1))
    assert twilio.messages == []
    deliver(texting, eight)
    assert len(twilio.messages) == 1


@pytest.mark.parametrize(("local", "quiet"), [
    ("2026-12-08T07:59:00-08:00", True), ("2026-12-08T08:00:00-08:00", False),
    ("2026-12-08T20:59:00-08:00", False), ("2026-12-08T21:00:00-08:00", True),
    ("2027-07-05T20:59:00-07:00", False), ("2027-07-05T21:00:00-07:00", True)])
def test_quiet_hours_are_nine_pm_to_eight_am_pacific(local, quiet):
    assert compose.is_quiet(datetime.fromisoformat(local)) is quiet


# -- reminders, changes and cancellations ------------------------------------------------

def test_reminders_24_hours_and_2_hours_before(texting, client, twilio, daytime):
    request_id = consenting(texting, client, hours_ahead=30)
    deliver(texting)  # the confirmation
    start = DAY.replace(minute=0) + timedelta(hours=30)
    with texting.app_context():
        assert outgoing.queue_due_reminders(start - timedelta(hours=25)) == 0
        assert outgoing.queue_due_reminders(start - timedelta(hours=23)) == 1
        assert outgoing.queue_due_reminders(start - timedelta(hours=23)) == 0
        assert outgoing.queue_due_reminders(start - timedelta(hours=1, minutes=59)) == 1
        db.session.commit()
    kinds = [kind for kind, _, _ in text_rows(texting, request_id)]
    assert kinds == ["text_confirmation", "text_reminder_24h", "text_reminder_2h"]


def test_a_cancellation_drops_queued_texts_and_says_so(texting, client, twilio, daytime):
    request_id = consenting(texting, client, hours_ahead=30)
    deliver(texting)
    with texting.app_context():
        daytime.shift(timedelta(hours=7))
        assert outgoing.queue_due_reminders() == 1
        consultation = db.session.get(ConsultationRequest, request_id)
        consultations.cancel_booking(consultation, by="client", actor="client")
        db.session.commit()
    kinds = text_rows(texting, request_id)
    assert kinds[-2:] == [("text_reminder_24h", "superseded", "dropped"),
                          ("text_cancelled", "queued", "queued")]


# -- what texts say --------------------------------------------------------------------

def all_texts(app, language: str) -> list[str]:
    with app.app_context():
        therapist = make_therapist("Maya Alvarez")
        consultation = make_request(therapist, DAY + timedelta(days=2), first_name="Rosa",
                                    last_name="Delgado", language=language,
                                    preferred_name="Rosie")
        texts = [compose.body(kind, consultation) for kind in compose.KINDS]
        consultation.slot_start = None
        texts += [compose.body(kind, consultation)
                  for kind in ("text_confirmation", "text_cancelled")]
        texts += [compose.reply(kind, language) for kind in ("stop", "start", "help")]
        return texts


@pytest.mark.parametrize("language", ["en", "es"])
def test_texts_fit_and_never_say_too_much(texting, language):
    with texting.app_context():
        words = compose.clinical_words()
    for text in all_texts(texting, language):
        lowered = text.lower()
        for name in ("rosa", "rosie", "delgado", "maya", "alvarez", *words):
            assert name not in lowered, (name, text)
        if language == "en":
            assert compose.is_gsm7(text) and len(text) <= 160, (len(text), text)
        assert compose.segments(text) <= compose.segment_limit(language), text


def test_segments_are_counted_as_phones_count_them():
    assert compose.segments("a" * 160) == 1 and compose.segments("a" * 161) == 2
    assert compose.segments("{" * 80) == 1 and compose.segments("{" * 81) == 2
    assert compose.segments("á" * 70) == 1 and compose.segments("á" * 71) == 2
    assert compose.segments("á" * 134) == 2 and compose.segments("á" * 135) == 3
    assert compose.segments("ñé" * 80) == 1  # both in GSM-7


def test_a_practice_name_that_names_a_specialty_is_left_out(texting):
    texting.config["SMS_SENDER_NAME"] = None  # PRACTICE_NAME is "... Trauma Therapy"
    for text in all_texts(texting, "en"):
        assert "trauma" not in text.lower() and "therapy" not in text.lower()


def test_the_short_link_leads_to_the_manage_page(texting, client):
    request_id = new_request(texting)
    with texting.app_context():
        link = compose.short_link(db.session.get(ConsultationRequest, request_id))
    path = link.removeprefix(PUBLIC)
    answer = client.get(path)
    assert answer.status_code == 302 and "/manage/" in answer.headers["Location"]
    assert client.get(path[:-1] + ("A" if path[-1] != "A" else "B")).status_code == 404
    assert client.get("/t/zzzzzzzzzzzzzzz-abc").status_code == 404
    assert client.get("/t/%C2%B9-abc").status_code == 404


# -- the sink, staff, the dashboard ----------------------------------------------------

def test_the_sink_writes_one_file_per_text(app, client, own_instance_folder, daytime):
    app.config.update(SMS_BACKEND="sink", TWILIO_FROM=None)
    consenting(app, client)
    assert deliver(app).sent == 1
    [written] = (own_instance_folder / "sms").iterdir()
    head, _, body = written.read_text().partition("\n\n")
    assert head == f"To: {PHONE}\nFrom: sink"
    assert body.startswith("Woven Together: Texts on")


def test_the_dashboard_counts_30_days_of_texts(texting, client, twilio, daytime):
    first, second = consenting(texting, client), consenting(texting, client)
    deliver(texting)
    sids = [m.sid for m in twilio.messages]
    twilio.report(client, sids[0], "delivered")
    twilio.report(client, sids[1], "undelivered", error_code=30003)
    twilio.text_in(client, PHONE, "STOP")
    with texting.app_context():
        make_user("boss@example.com")
        db.session.commit()
    sign_in(client, "boss@example.com")
    page = client.get("/admin/").get_data(as_text=True)
    figures = dict(re.findall(r'id="texts-([a-z-]+)">(\d+)<', page))
    assert figures == {"sent": "2", "delivered": "1", "failed": "1", "opted-out": "2"}
    assert first != second


def test_no_24_hour_reminder_right_after_a_text_inside_the_last_day(texting, client, twilio,
                                                                      daytime):
    request_id = consenting(texting, client, hours_ahead=20)  # the confirmation says it
    with texting.app_context():
        assert outgoing.queue_due_reminders() == 0
        daytime.shift(timedelta(hours=18, minutes=30))
        assert outgoing.queue_due_reminders() == 1
        db.session.commit()
    kinds = [kind for kind, _, _ in text_rows(texting, request_id)]
    assert kinds == ["text_confirmation", "text_reminder_2h"]


def test_spanish_texts_speak_spanish(texting):
    from tests.test_spanish_everywhere import english_in

    for text in all_texts(texting, "es"):
        assert english_in(text.replace("Woven Together", "")) == [], text


# -- numbers at rest, rotation and forgetting -------------------------------------------

def test_numbers_are_stored_encrypted_and_stop_finds_them_after_a_key_rotation(
        texting, client, twilio, daytime):
    import base64
    import secrets

    from portal.encryption import init_app
    from portal.texts import numbers

    request_id = consenting(texting, client)
    with texting.app_context():
        raw = db.session.execute(db.text("SELECT phone, phone_hash FROM text_consent")).one()
        assert PHONE not in raw.phone and PHONE[2:] not in raw.phone_hash
        old_hash = raw.phone_hash
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    texting.config["ENCRYPTION_KEYS"] = [new_key, *texting.config["ENCRYPTION_KEYS"]]
    init_app(texting)  # as a restart with the new key first would
    result = texting.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 0, result.output
    with texting.app_context():
        rehashed = db.session.scalar(select(TextConsent.phone_hash))
        assert rehashed != old_hash and rehashed == numbers.phone_hash(PHONE)
    twilio.text_in(client, PHONE, "STOP")
    with texting.app_context():
        assert not consent.has_consent(db.session.get(ConsultationRequest, request_id))


def test_deleting_a_request_deletes_its_texts_but_the_stop_stays(texting, client, twilio,
                                                                 daytime):
    request_id = consenting(texting, client)
    twilio.text_in(client, PHONE, "STOP")
    with texting.app_context():
        db.session.delete(db.session.get(ConsultationRequest, request_id))
        db.session.commit()
        for model in (TextConsent, TextConsentEvent, TextMessage):
            assert db.session.scalars(select(model)).all() == []
        assert db.session.scalar(select(TextOptOut)) is not None
    again = consenting(texting, client)  # the same number, a new request
    deliver(texting)
    assert twilio.messages == []
    assert text_rows(texting, again) == []


# -- the senders, the commands and `flask check` ------------------------------------------

def test_the_outbox_workers_send_texts_too(texting, client, twilio, daytime):
    import threading

    from portal.messages import senders

    consenting(texting, client)
    senders.work_loop(texting, threading.Event(), max_rounds=1)
    assert len(twilio.messages) == 1
    consenting(texting, client)
    result = texting.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.exit_code == 0 and "Texts: Sent 1" in result.output
    assert len(twilio.messages) == 2


def test_reminders_send_queues_the_text_reminders(texting, client, twilio, daytime):
    request_id = consenting(texting, client, hours_ahead=30)
    daytime.shift(timedelta(hours=7))
    result = texting.test_cli_runner().invoke(args=["reminders", "send"])
    assert result.exit_code == 0 and "Text reminders queued: 1." in result.output
    assert [kind for kind, _, _ in text_rows(texting, request_id)][-1] == "text_reminder_24h"


@pytest.mark.parametrize(("change", "problem"), [
    ({"TWILIO_ACCOUNT_SID": None}, "sms.E002"), ({"TWILIO_AUTH_TOKEN": ""}, "sms.E002"),
    ({"TWILIO_FROM": None}, "sms.E003"), ({"PUBLIC_BASE_URL": "http://portal.example.com"},
                                          "sms.E004"),
    ({"SMS_BACKEND": "sink"}, "sms.W001"), ({"SMS_BACKEND": "carrier-pigeon"}, "sms.E001")])
def test_flask_check_on_texts(change, problem):
    from portal import readiness

    def sms_problems(config):
        return [p.id for p in readiness.check_configuration(config, debug=False, testing=False)
                if p.id.startswith("sms.")]

    assert sms_problems({**TWILIO_CONFIG, **change}) == [problem]
    assert sms_problems(TWILIO_CONFIG) == []
    assert sms_problems({**TWILIO_CONFIG, "TWILIO_FROM": None,
                         "TWILIO_MESSAGING_SERVICE_SID": "MG1"}) == []
