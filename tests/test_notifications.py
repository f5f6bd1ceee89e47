"""What each event sends, checked as received by a real SMTP server: recipients,
subjects, both parts, the .ics, and no client details in any therapist's inbox."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import icalendar
import pytest
from sqlalchemy import func, select

from portal.booking.scheduling import PACIFIC, format_slot_long
from portal.extensions import db
from portal.messages import notifications, outbox
from portal.messages.addresses import clean_address
from portal.messages.composer import check_subject
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, to_db
from tests.conftest import mail_app_config
from tests.factories import future_slot, make_request, make_therapist, soon
from tests.smtp import raw_text

SENTINELS = {
    "first_name": "Zebulonia",
    "last_name": "Quixotrane",
    "email": "zebulonia.quixotrane@example.com",
    "phone": "+14155550187",
    "zip_code": "95971",
    "message": "SENTINEL my private story about sleep",
}
FORBIDDEN = ("ketamine", "trauma", "depression")


app_config = mail_app_config  # the SMTP fixture's address, plus a test's own


def sentinel_request(therapist=None, slot=None, **fields):
    return make_request(therapist, slot, interests="kap,trauma,depression",
                        **{**SENTINELS, **fields})


def deliver(app, **kwargs):
    with app.app_context():
        return outbox.deliver_due(**kwargs)


def body(message, subtype):
    return message.get_body((subtype,)).get_content()


def both_parts(message) -> list[str]:
    """The plain part and the HTML part's text, whitespace normalised (templates wrap lines)."""
    markup = re.sub(r"<br\s*/?>", " ", body(message, "html"))
    text = html.unescape(re.sub(r"<[^>]+>", "", markup))
    return [" ".join(part.split()) for part in (body(message, "plain"), text)]


def assert_links(message, *urls):
    """Each URL is in the plain part and in the HTML part's markup."""
    for subtype in ("plain", "html"):
        assert all(url in body(message, subtype) for url in urls), subtype


def assert_says(message, *snippets):
    """Each snippet is in both parts, word for word."""
    for part in both_parts(message):
        for snippet in snippets:
            assert snippet in part, (snippet, part)


def calendar_of(message) -> icalendar.Calendar:
    parts = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    return icalendar.Calendar.from_ical(parts[0].get_payload(decode=True))


def only_event(calendar):
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def assert_event(event, start, *, sequence: int, reference: str, status: str = "CONFIRMED"):
    """The event is the half hour from ``start`` on Pacific time, as this booking's
    event (its UID) at this version (its SEQUENCE)."""
    # Aware datetimes compare as instants: the TZID is what says "Pacific, not UTC".
    assert event.decoded("dtstart") == start.astimezone(PACIFIC)
    assert event.decoded("dtend") == (start + timedelta(minutes=30)).astimezone(PACIFIC)
    for name in ("dtstart", "dtend"):
        assert event[name].params["TZID"] == "America/Los_Angeles", name
    assert str(event["UID"]) == f"consultation-{reference}@consultations.portal"
    assert int(event["SEQUENCE"]) == sequence
    assert str(event["STATUS"]) == status


def assert_no_client_details(message):
    raw = raw_text(message)
    texts = [body(message, "plain"), body(message, "html"), str(message["Subject"])]
    for value in SENTINELS.values():
        assert value not in raw
        assert all(value not in text for text in texts)
    assert SENTINELS["phone"][-7:] not in raw
    for label in ("Ketamine", "Trauma / PTSD", "Depression"):  # the interests
        assert all(label not in text for text in texts)
    assert not list(message.iter_attachments())


def assert_client_email(message, practice_name="Woven Together Trauma Therapy"):
    for part in (body(message, "plain"), body(message, "html")):
        assert "988" in part and "911" in part
        assert practice_name in part
        assert SENTINELS["message"] not in part
        assert "Ketamine" not in part and "Trauma / PTSD" not in part
    assert "tel:988" in body(message, "html")


def assert_common_headers(message, row):
    assert message["Message-ID"] == row.message_id
    assert row.message_id.endswith("@example.com>")
    assert message["Reply-To"] == "intake@example.com"
    assert "consultations@example.com" in message["From"]
    subject = str(message["Subject"]).lower()
    assert not any(word in subject for word in FORBIDDEN)


def rows_by_key(app):
    with app.app_context():
        rows = db.session.scalars(select(OutboxEmail)).all()
        db.session.expunge_all()
        return {row.key: row for row in rows}


def test_booked_request_confirms_client_and_notifies_only_reference_to_therapist(
        app, smtp_server):
    slot = future_slot(days=5, hour_utc=18)
    with app.app_context():
        therapist = make_therapist("Dr. Rowan Ames", email="rowan@example.com",
                                   licence_type="LMFT", licence_number="123456")
        consultation = sentinel_request(therapist, slot)
        queued = notifications.queue_request_received(consultation)
        db.session.commit()
        request_id, reference, therapist_id = consultation.id, consultation.reference, therapist.id
        assert {row.kind for row in queued} == {"confirmation", "therapist_notice"}
    report = deliver(app)
    assert report.sent == 2
    with app.app_context():
        assert outbox.waiting_count() == 0
    rows = rows_by_key(app)

    [client] = smtp_server.to(SENTINELS["email"])
    assert sorted(rcpt for _, rcpts in smtp_server.handler.envelopes for rcpt in rcpts) == [
        "rowan@example.com", SENTINELS["email"]]
    assert all(len(rcpts) == 1 for _, rcpts in smtp_server.handler.envelopes)
    assert client["Subject"] == "Your free consultation is booked"
    assert_common_headers(client, rows[f"request:{request_id}:received:client"])
    assert_client_email(client)
    assert_says(client, format_slot_long(slot), "Dr. Rowan Ames", "LMFT #123456", reference)
    assert_links(client, "https://portal.example.com/manage/")
    event = only_event(calendar := calendar_of(client))
    assert str(calendar["METHOD"]) == "REQUEST"
    assert calendar.walk("VTIMEZONE")[0]["TZID"] == "America/Los_Angeles"
    assert_event(event, slot, sequence=0, reference=reference)

    [notice] = smtp_server.to("rowan@example.com")
    assert notice["Subject"] == f"New consultation {reference}"
    assert_common_headers(notice, rows[f"request:{request_id}:received:therapist:{therapist_id}"])
    assert_says(notice, reference, format_slot_long(slot))
    assert_links(notice, f"https://portal.example.com/admin/requests/{request_id}")
    assert_no_client_details(notice)


def test_request_without_time_says_what_happens_next_and_notifies_intake(app, smtp_server):
    with app.app_context():
        consultation = sentinel_request(preferred_contact="phone")
        notifications.queue_request_received(consultation)
        db.session.commit()
        reference = consultation.reference
    deliver(app)
    [client] = smtp_server.to(SENTINELS["email"])
    assert client["Subject"] == "We received your consultation request"
    assert not list(client.iter_attachments())
    assert_client_email(client)
    text = " ".join(body(client, "plain").split())
    assert "within one business day, by the end of " in text
    assert "we'll contact you by phone call to find a time" in text
    [notice] = smtp_server.to("intake@example.com")
    assert reference in notice["Subject"]
    assert "no time chosen" in body(notice, "plain")
    assert_no_client_details(notice)


def test_queuing_the_same_event_twice_adds_nothing(app):
    with app.app_context():
        consultation = make_request(make_therapist(), future_slot())
        assert len(notifications.queue_request_received(consultation)) == 2
        assert notifications.queue_request_received(consultation) == []
        db.session.commit()
        assert db.session.scalar(select(func.count(OutboxEmail.id))) == 2


def test_reschedule_to_another_therapist_updates_calendar_and_tells_all_three(app, smtp_server):
    first_slot, new_slot = future_slot(days=4), future_slot(days=6, hour_utc=20)
    with app.app_context():
        before, after = make_therapist(email="before@example.com"), make_therapist(
            email="after@example.com")
        consultation = sentinel_request(before, first_slot)
        notifications.queue_request_received(consultation)
        consultation.therapist = after
        consultation.slot_start = to_db(new_slot)
        consultation.slot_end = to_db(new_slot + timedelta(minutes=30))
        consultation.booking_sequence += 1
        db.session.flush()
        queued = notifications.queue_rescheduled(
            consultation, previous_start=first_slot, previous_therapist_id=before.id)
        db.session.commit()
        reference = consultation.reference
        assert {row.kind for row in queued} == {
            "rescheduled_client", "therapist_notice", "no_longer_with_you"}
    deliver(app)
    client = smtp_server.to(SENTINELS["email"])[-1]
    assert client["Subject"] == "Your consultation has a new time"
    assert_client_email(client)
    assert_says(client, format_slot_long(new_slot), f"(It was {format_slot_long(first_slot)}.)")
    assert_event(only_event(calendar_of(client)), new_slot, sequence=1, reference=reference)
    [released] = [m for m in smtp_server.to("before@example.com")
                  if "no longer with you" in m["Subject"]]
    assert released["Subject"] == f"Consultation {reference} is no longer with you"
    assert_says(released, f"Consultation {reference} ({format_slot_long(new_slot)}) "
                          "is no longer with you.")
    [taken] = smtp_server.to("after@example.com")
    assert taken["Subject"] == f"Consultation {reference} is now with you"
    assert_says(taken, "A consultation has been moved to you.", reference,
                format_slot_long(new_slot))
    for message in (released, taken):
        assert_no_client_details(message)


def test_reschedule_with_the_same_therapist_tells_client_and_therapist_the_new_time(
        app, smtp_server):
    first_slot, new_slot = future_slot(days=4), future_slot(days=6, hour_utc=20)
    with app.app_context():
        therapist = make_therapist(email="same@example.com")
        consultation = sentinel_request(therapist, first_slot)
        consultation.slot_start = to_db(new_slot)
        consultation.slot_end = to_db(new_slot + timedelta(minutes=30))
        consultation.booking_sequence += 1
        queued = notifications.queue_rescheduled(consultation, previous_start=first_slot,
                                                 previous_therapist_id=therapist.id)
        db.session.commit()
        reference = consultation.reference
        assert {row.kind for row in queued} == {"rescheduled_client", "rescheduled_therapist"}
    deliver(app)
    [client] = smtp_server.to(SENTINELS["email"])
    assert client["Subject"] == "Your consultation has a new time"
    assert_client_email(client)
    assert_says(client, format_slot_long(new_slot), f"(It was {format_slot_long(first_slot)}.)")
    assert_event(only_event(calendar_of(client)), new_slot, sequence=1, reference=reference)
    [notice] = smtp_server.to("same@example.com")
    assert notice["Subject"] == f"Consultation {reference} has a new time"
    assert_says(notice, f"New time: {format_slot_long(new_slot)}",
                f"It was: {format_slot_long(first_slot)}")
    assert_no_client_details(notice)


def test_cancellation_sends_cancelled_calendar_and_therapist_notice(app, smtp_server):
    slot = future_slot(days=4)
    with app.app_context():
        therapist = make_therapist(email="cancel-t@example.com")
        consultation = sentinel_request(therapist, slot)
        consultation.status = "cancelled"
        consultation.booking_sequence += 1  # what booking.cancel_booking does
        queued = notifications.queue_cancelled(consultation, by="practice")
        db.session.commit()
        reference = consultation.reference
        assert {row.kind for row in queued} == {"cancelled_client", "cancelled_therapist"}
        with pytest.raises(ValueError):
            notifications.queue_cancelled(consultation, by="someone")
    deliver(app)
    [client] = smtp_server.to(SENTINELS["email"])
    assert client["Subject"] == "Your consultation is canceled"
    assert_says(client, f"We are sorry: your free consultation on {format_slot_long(slot)} "
                        "is canceled.")
    assert_client_email(client)
    assert_event(only_event(calendar_of(client)), slot, sequence=1, reference=reference,
                 status="CANCELLED")
    [notice] = smtp_server.to("cancel-t@example.com")
    assert notice["Subject"] == f"Consultation {reference} was canceled"
    assert_says(notice, f"Consultation {reference} on {format_slot_long(slot)} was canceled "
                        "by the practice.")
    assert_no_client_details(notice)


def calendar_part(message):
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    return part


def test_the_cancellation_calendar_removes_the_booked_event(app, smtp_server):
    """RFC 5546: the invitation is the organizer's REQUEST with the client as attendee,
    and the cancellation the organizer's CANCEL of the same UID at a higher SEQUENCE,
    each with its MIME part's method= matching. That is what calendar programs act on."""
    slot = future_slot(days=6)
    with app.app_context():
        therapist = make_therapist(email="ics-t@example.com")
        consultation = sentinel_request(therapist, slot)
        notifications.queue_request_received(consultation)
        db.session.commit()
        deliver(app)
        consultation.status = "cancelled"
        consultation.booking_sequence += 1  # what booking.cancel_booking does
        notifications.queue_cancelled(consultation, by="client")
        db.session.commit()
    deliver(app)
    booked, cancelled = smtp_server.to(SENTINELS["email"])
    calendars = {}
    for name, message in (("booked", booked), ("cancelled", cancelled)):
        part = calendar_part(message)
        calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
        event = only_event(calendar)
        assert str(calendar["METHOD"]) == {"booked": "REQUEST", "cancelled": "CANCEL"}[name]
        assert part.get_param("method") == str(calendar["METHOD"]), name
        assert str(event["ORGANIZER"]) == "mailto:intake@example.com", name
        assert event["ORGANIZER"].params["CN"] == "Woven Together Trauma Therapy"
        assert str(event["ATTENDEE"]) == f"mailto:{SENTINELS['email']}", name
        assert event["ATTENDEE"].params["RSVP"] == "FALSE"
        # The attendee's address is the one client detail a calendar file carries.
        raw = part.get_payload(decode=True).decode()
        assert all(value not in raw for key, value in SENTINELS.items() if key != "email")
        calendars[name] = (calendar, event, raw)
    (_, first, _), (_, second, cancel_text) = calendars["booked"], calendars["cancelled"]
    assert str(first["UID"]) == str(second["UID"])
    assert int(second["SEQUENCE"]) > int(first["SEQUENCE"])
    assert str(first["STATUS"]) == "CONFIRMED" and str(second["STATUS"]) == "CANCELLED"
    assert second.decoded("dtstart") == first.decoded("dtstart")
    assert "to cancel" not in " ".join(cancel_text.split()).lower()
    assert "to change the time or cancel" in str(first["DESCRIPTION"]).lower()


def test_reassignment_tells_new_and_previous_therapist(app, smtp_server):
    with app.app_context():
        old, new = make_therapist(email="old@example.com"), make_therapist(email="new@example.com")
        consultation = sentinel_request(new, future_slot())
        queued = notifications.queue_reassigned(consultation, previous_therapist_id=old.id)
        db.session.commit()
        assert {row.recipient for row in queued} == {"old@example.com", "new@example.com"}
        # Swapping back later is a new event, not a duplicate.
        consultation.therapist = old
        assert len(notifications.queue_reassigned(consultation,
                                                  previous_therapist_id=new.id)) == 2
        db.session.commit()
    deliver(app)
    assert len(smtp_server.to("old@example.com")) == 2
    for message in smtp_server.messages:
        assert_no_client_details(message)


def make_soon(app, hours: float, **fields) -> int:
    with app.app_context():
        consultation = make_request(make_therapist(), soon(hours=hours), **fields)
        db.session.commit()
        return consultation.id


@pytest.mark.clock
def test_reminders_send_is_idempotent_and_skips_far_and_cancelled(app, runner, smtp_server):
    due = make_soon(app, 20)
    with app.app_context():
        due_start = db.session.get(ConsultationRequest, due).starts_at
    make_soon(app, 40)
    make_soon(app, 10, status="cancelled")
    first = runner.invoke(args=["reminders", "send"])
    assert first.exit_code == 0, first.output
    assert "Reminders queued: 1." in first.output
    second = runner.invoke(args=["reminders", "send"])
    assert "Reminders queued: 0." in second.output
    with app.app_context():
        rows = db.session.scalars(select(OutboxEmail)).all()
        assert [row.request_id for row in rows] == [due]
        assert db.session.get(ConsultationRequest, due).reminder_queued_at is not None
    deliver(app)
    [reminder] = smtp_server.messages
    assert reminder["Subject"] == "Reminder: your free consultation is coming up"
    assert_says(reminder, format_slot_long(due_start))
    assert_links(reminder, "https://portal.example.com/manage/")


def test_header_injection_is_refused():
    for address in ("a@example.com\r\nBcc: b@example.com", "A <a@example.com>",
                    "a@example.com, b@example.com", "no-at-sign", "a@localhost"):
        with pytest.raises(ValueError):
            clean_address(address)
    assert clean_address(" o'brien@example.com ") == "o'brien@example.com"
    with pytest.raises(ValueError):
        check_subject("About your ketamine session")
