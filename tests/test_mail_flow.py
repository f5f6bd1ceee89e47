"""The email of whole booking stories, driven through the booking functions (not the
models): exactly which messages go to whom, the calendar's SEQUENCE over a booking's
life, reminders that a change makes outdated, and no client details in any message
bound for a therapist or the intake address."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import icalendar
import pytest
from sqlalchemy import select

from portal.booking import consultations, verification
from portal.extensions import db
from portal.messages import notifications, outbox
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.conftest import mail_app_config
from tests.factories import make_request, make_therapist, soon
from tests.smtp import raw_text

CLIENTS = [
    {"first_name": "Zebulonia", "last_name": "Quixotrane",
     "email": "zebulonia.quixotrane@example.com", "phone": "+14155550187",
     "zip_code": "95971", "message": "SENTINEL my private story about sleep"},
    {"first_name": "Ottoline", "last_name": "Marwick-Fenn",
     "email": "ottoline.fenn@example.com", "phone": "+14155550142",
     "zip_code": "94110", "message": "SENTINEL2 another private story"},
]
INTAKE = "intake@example.com"


app_config = mail_app_config  # the SMTP fixture's address, plus a test's own


def details(client: dict, therapist_choice: str, slot: datetime | None):
    return consultations.RequestDetails(
        **client, preferred_contact="email", state="CA", ca_resident=True, in_california=True,
        therapist_choice=therapist_choice, slot_start=slot, interests=["kap", "trauma"])


def create_confirmed(request_details: consultations.RequestDetails) -> ConsultationRequest:
    """A request as the web makes it: stored pending, then confirmed with the code from
    its email."""
    consultation = consultations.create_request(request_details)
    body = db.session.scalars(select(OutboxEmail.body_text).where(
        OutboxEmail.request_id == consultation.id,
        OutboxEmail.kind == "verification_code")).one()
    verification.confirm(consultation, re.search(r"\b(\d{6})\b", body).group(1),
                         now=datetime.now(UTC))
    return consultation


def free_times(therapist_id: int) -> list[datetime]:
    return sorted(consultations.available_slots(str(therapist_id)))


def outbox_rows() -> list[tuple[str, str]]:
    return [(row.kind, row.recipient) for row in
            db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id))]


def calendars(messages) -> list[icalendar.Event]:
    events = []
    for message in messages:
        for part in message.iter_attachments():
            if part.get_content_type() == "text/calendar":
                calendar = icalendar.Calendar.from_ical(part.get_payload(decode=True))
                [event] = calendar.walk("VEVENT")
                # An iTIP message: the MIME method agrees with the file's, and the
                # cancellation is the organizer's CANCEL of the same invitation.
                method = "CANCEL" if str(event["STATUS"]) == "CANCELLED" else "REQUEST"
                assert str(calendar["METHOD"]) == method == part.get_param("method")
                assert str(event["ORGANIZER"]) == f"mailto:{INTAKE}"
                assert str(event["ATTENDEE"]) == f"mailto:{message['To']}"
                events.append(event)
    return events


def assert_nothing_about_clients(message):
    raw = raw_text(message)
    texts = [raw] + [part.get_content() for part in message.walk()
                     if part.get_content_maintype() == "text"]
    for client in CLIENTS:
        for value in client.values():
            assert all(value not in text for text in texts), value
        assert all(client["phone"][-7:] not in text for text in texts)
    assert all(label not in text for text in texts
               for label in ("Ketamine", "Trauma / PTSD"))


def test_a_booking_story_sends_each_notice_to_the_right_people_and_nothing_more(
        app, smtp_server):
    with app.app_context():
        first = make_therapist("Dr. First", email="first@example.com")
        second = make_therapist("Dr. Second", email="second@example.com")
        db.session.commit()
        times = free_times(first.id)
        c1, c2 = CLIENTS[0]["email"], CLIENTS[1]["email"]

        # A sender runs between the steps: news still waiting when the booking is
        # cancelled would never go (test_outbox covers that).
        sent = 0
        consultation = create_confirmed(details(CLIENTS[0], str(first.id), times[0]))
        db.session.commit()
        sent += outbox.deliver_due().sent
        reference = consultation.reference
        consultations.reschedule_booking(consultation, times[2], actor="client")
        db.session.commit()
        sent += outbox.deliver_due().sent
        consultations.reschedule_booking(consultation, times[4], actor="practice",
                                   therapist_id=second.id)
        db.session.commit()
        sent += outbox.deliver_due().sent
        assert consultations.cancel_booking(consultation, by="client", actor="client")
        db.session.commit()
        sent += outbox.deliver_due().sent
        consultation.status = "new"  # reopened in the back office ...
        db.session.commit()
        # ... again
        assert consultations.cancel_booking(consultation, by="practice", actor="practice")
        db.session.commit()
        sent += outbox.deliver_due().sent

        unbooked = create_confirmed(details(CLIENTS[1], "any", None))
        db.session.commit()
        sent += outbox.deliver_due().sent
        consultations.cancel_booking(unbooked, by="client", actor="client")
        db.session.commit()
        sent += outbox.deliver_due().sent

        expected = [
            ("verification_code", c1),
            ("confirmation", c1), ("therapist_notice", "first@example.com"),
            ("rescheduled_client", c1), ("rescheduled_therapist", "first@example.com"),
            ("rescheduled_client", c1), ("therapist_notice", "second@example.com"),
            ("no_longer_with_you", "first@example.com"),
            ("cancelled_client", c1), ("cancelled_therapist", "second@example.com"),
            ("cancelled_client", c1), ("cancelled_therapist", "second@example.com"),
            ("verification_code", c2), ("confirmation", c2), ("therapist_notice", INTAKE),
            ("cancelled_client", c2), ("cancelled_therapist", INTAKE),
        ]
        assert outbox_rows() == expected
        assert sent == len(expected)

    assert sorted(rcpt[0] for _, rcpt in smtp_server.handler.envelopes) == sorted(
        recipient for _, recipient in expected)
    staff = [m for m in smtp_server.messages if str(m["To"]) not in (c1, c2)]
    assert len(staff) == 8
    for message in staff:
        assert_nothing_about_clients(message)

    events = calendars(smtp_server.to(c1))
    sequences = [int(event["SEQUENCE"]) for event in events]
    assert sequences == sorted(set(sequences)) and len(sequences) == 5
    assert [str(event["STATUS"]) for event in events][-2:] == ["CANCELLED", "CANCELLED"]
    assert {str(event["UID"]) for event in events} == {
        f"consultation-{reference}@consultations.portal"}
    assert not calendars(smtp_server.to(c2))


def test_the_calendar_uid_does_not_follow_the_sender_address(app, smtp_server):
    app.config["MAIL_DEFAULT_SENDER"] = "Consultations <hello@another.example>"
    with app.app_context():
        therapist = make_therapist()
        db.session.commit()
        consultation = create_confirmed(
            details(CLIENTS[0], str(therapist.id), free_times(therapist.id)[0]))
        db.session.commit()
        reference = consultation.reference
        outbox.deliver_due()
    [event] = calendars(smtp_server.to(CLIENTS[0]["email"]))
    assert str(event["UID"]) == f"consultation-{reference}@consultations.portal"


@pytest.mark.parametrize("change", ["reschedule", "cancel"])
def test_a_changed_booking_never_gets_the_old_times_reminder(app, smtp_server, change):
    with app.app_context():
        therapist = make_therapist()
        consultation = make_request(therapist, soon(hours=5))
        notifications.queue_request_received(consultation)
        db.session.commit()
        assert outbox.deliver_due().sent == 2  # the client knows of the booking
        assert notifications.queue_due_reminders() == 1
        db.session.commit()
        if change == "reschedule":
            consultations.reschedule_booking(consultation, free_times(therapist.id)[0],
                                       actor="client")
        else:
            consultations.cancel_booking(consultation, by="client", actor="client")
        db.session.commit()
        [reminder] = db.session.scalars(
            select(OutboxEmail).where(OutboxEmail.kind == "reminder")).all()
        assert reminder.status == "superseded"
        report = outbox.deliver_due(include_waiting=True)
        assert report.sent == 2 and outbox.waiting_count() == 0
        expected = {"reschedule": "new", "cancel": "cancelled"}[change]
        assert db.session.get(ConsultationRequest, consultation.id).status == expected
    assert not [m for m in smtp_server.messages if "Reminder" in str(m["Subject"])]


def test_a_reminder_already_sent_is_left_alone(app, smtp_server):
    with app.app_context():
        therapist = make_therapist()
        consultation = make_request(therapist, soon(hours=5))
        db.session.commit()
        notifications.queue_due_reminders()
        db.session.commit()
        assert outbox.deliver_due().sent == 1
        consultations.cancel_booking(consultation, by="practice", actor="practice")
        db.session.commit()
        statuses = dict(db.session.execute(select(OutboxEmail.kind, OutboxEmail.status)).all())
    assert statuses["reminder"] == "sent"


@pytest.mark.parametrize("meeting", ["phone", "video"])
def test_a_reminder_says_how_to_meet_as_the_confirmation_does(app, smtp_server, meeting):
    room = "https://video.example.com/reminder-room"
    with app.app_context():
        therapist = make_therapist("Maya Alvarez", video_url=room)
        consultation = make_request(therapist, soon(hours=5), meeting=meeting,
                                    phone="+14155550123")
        db.session.commit()
        assert notifications.queue_due_reminders() == 1
        db.session.commit()
        address = consultation.email
        assert outbox.deliver_due().sent == 1
    [reminder] = smtp_server.to(address)
    text = reminder.get_body(("plain",)).get_content()
    html = reminder.get_body(("html",)).get_content()
    if meeting == "phone":
        assert "What happens next: Maya Alvarez will call you at (415) 555-0123 on " in text
        assert "will call you at (415) 555-0123" in html
    else:
        assert f"What happens next: Join Maya Alvarez by video at {room} on " in text
        assert f'<a href="{room}">{room}</a>' in html


def test_a_new_time_email_says_how_to_meet_too(app, smtp_server):
    with app.app_context():
        therapist = make_therapist("Maya Alvarez")
        consultation = make_request(therapist, soon(hours=50), meeting="phone",
                                    phone="+14155550123")
        db.session.commit()
        consultations.reschedule_booking(consultation, free_times(therapist.id)[0], actor="client")
        db.session.commit()
        address = consultation.email
        outbox.deliver_due()
    [moved] = [m for m in smtp_server.to(address)
               if m["Subject"] == "Your consultation has a new time"]
    text = moved.get_body(("plain",)).get_content()
    assert "What happens next: Maya Alvarez will call you at (415) 555-0123 on " in text
