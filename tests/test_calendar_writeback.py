"""Consultations written into a CalDAV-connected therapist's own calendar through the
outbox, against a real Radicale: a booking appears, a move keeps the UID with a higher
SEQUENCE, a cancellation stays as CANCELLED (and free), a reassignment removes it from
the previous therapist's calendar; a refused write is retried in order, and the
portal never reads its own events back as busy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import time_machine
from sqlalchemy import select

from portal.booking import consultations
from portal.booking.therapists import Therapist
from portal.calendars import delivery
from portal.calendars.models import CalendarBusy, TherapistCalendar
from portal.calendars.sync import sync_all
from portal.database import begin_write
from portal.extensions import db
from portal.messages import notifications, outbox
from portal.messages.models import OutboxEmail
from tests.calendar_servers import (  # noqa: F401 - fixtures
    MARCH,
    RADICALE_PASSWORD,
    app_config,
    connect_caldav,
    ctx,
    ics_server,
    ics_server_session,
    radicale,
)
from tests.factories import make_request, make_therapist


def events_in(calendar) -> dict[str, icalendar.cal.Component]:
    """The calendar's events by UID, as Radicale holds them."""
    found = {}
    for item in calendar.events():
        for event in icalendar.Calendar.from_ical(item.data).walk("VEVENT"):
            found[str(event["UID"])] = event
    return found


def deliver(days: int = 1) -> outbox.DeliveryReport:
    """Write what is due ``days`` from now (the move's back-off, when one failed)."""
    db.session.rollback()
    return delivery.deliver_due(datetime.now(UTC) + timedelta(days=days))


def book(therapist_id: int, start: datetime):
    consultation = make_request(db.session.get(Therapist, therapist_id), start)
    notifications.queue_request_received(consultation)  # as the verified code does
    db.session.commit()
    return consultation


def test_create_move_and_cancel_show_in_the_calendar_with_one_uid(ctx, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        calendar = radicale.new_calendar(f"writeback-{tid}")
        connect_caldav(tid, str(calendar.url))
        sync_all()  # read: its therapist offers times (and a move is checked against it)
        start = datetime(2027, 3, 10, 18, tzinfo=UTC)
        consultation = book(tid, start)
        uid = f"consultation-{consultation.reference}@consultations.portal"
        assert deliver().sent == 1
        event = events_in(calendar)[uid]
        booked = int(event["SEQUENCE"])
        client_file = icalendar.Calendar.from_ical(db.session.scalar(
            select(OutboxEmail.ics).where(OutboxEmail.kind == "confirmation")))
        [client_event] = client_file.walk("VEVENT")  # the client's own calendar file
        assert (str(client_event["UID"]), int(client_event["SEQUENCE"])) == (uid, booked)
        assert event["DTSTART"].dt == start
        assert str(event["SUMMARY"]) == f"Free consultation {consultation.reference}"
        assert "/admin/requests/" in str(event["DESCRIPTION"])
        assert "Casey" not in item_text(calendar) and "@example.com" not in str(event)

        begin_write()
        consultation = db.session.get(type(consultation), consultation.id)
        consultations.reschedule_booking(consultation, start + timedelta(days=1), actor="client")
        db.session.commit()
        assert deliver().sent == 1
        [(got_uid, event)] = events_in(calendar).items()
        assert got_uid == uid and event["DTSTART"].dt == start + timedelta(days=1)
        assert int(event["SEQUENCE"]) == booked + 1

        begin_write()
        consultation = db.session.get(type(consultation), consultation.id)
        consultations.cancel_booking(consultation, by="client", actor="client")
        db.session.commit()
        assert deliver().sent == 1
        [(got_uid, event)] = events_in(calendar).items()
        assert got_uid == uid and str(event["STATUS"]) == "CANCELLED"
        assert int(event["SEQUENCE"]) == booked + 2

        sync_all()  # the portal's own events never come back as busy times
        assert db.session.scalars(select(CalendarBusy)).all() == []


def item_text(calendar) -> str:
    return "".join(item.data for item in calendar.events())


def test_a_reassignment_removes_it_from_the_previous_calendar(ctx, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        first, second = make_therapist().id, make_therapist().id
        db.session.commit()
        calendars = {}
        for tid in (first, second):
            calendars[tid] = radicale.new_calendar(f"reassign-{tid}")
            connect_caldav(tid, str(calendars[tid].url))
        consultation = book(first, datetime(2027, 3, 11, 18, tzinfo=UTC))
        deliver()
        assert len(events_in(calendars[first])) == 1
        begin_write()
        consultation = db.session.get(type(consultation), consultation.id)
        consultations.reassign_therapist(consultation, second, actor="system")
        db.session.commit()
        assert deliver().sent == 2
        assert events_in(calendars[first]) == {}
        assert len(events_in(calendars[second])) == 1


def test_a_refused_write_is_retried_in_order_and_emails_do_not_wait(ctx, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        calendar = radicale.new_calendar(f"retry-{tid}")
        connect_caldav(tid, str(calendar.url))
        sync_all()
        # The therapist changes their app password at the server; the portal still has
        # the old one (reading would fail too, but only after a sync).
        db.session.scalar(select(TherapistCalendar)).password = "an-old-password"
        db.session.commit()
        consultation = book(tid, datetime(2027, 3, 12, 18, tzinfo=UTC))
        begin_write()
        consultation = db.session.get(type(consultation), consultation.id)
        consultations.reschedule_booking(consultation, datetime(2027, 3, 12, 19, tzinfo=UTC),
                                   actor="client")
        db.session.commit()
        report = deliver()
        assert report.retrying == 1 and report.sent == 0  # the move waits for the booking
        rows = db.session.scalars(select(OutboxEmail).where(OutboxEmail.channel == "calendar")
                                  .order_by(OutboxEmail.id)).all()
        assert [r.status for r in rows] == ["queued", "queued"]
        assert rows[0].attempts == 1 and "Wrong user name or password" in rows[0].last_error
        # The move's email to the client, queued after the booking's calendar write.
        email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.channel == "email")
                                  .order_by(OutboxEmail.id.desc()))
        assert email.id > rows[0].id and email.kind.startswith("rescheduled")
        db.session.execute(OutboxEmail.__table__.update().where(  # the earlier emails went
            OutboxEmail.channel == "email", OutboxEmail.id < email.id).values(status="sent"))
        db.session.commit()
        claimed = outbox.claim_batch(datetime.now(UTC), "test-run", 20)
        assert [item.id for item in claimed] == [email.id]  # not held back by the calendar
        db.session.rollback()
        # The right password: both go, in order.
        row = db.session.scalar(select(TherapistCalendar))
        row.password = RADICALE_PASSWORD
        db.session.commit()
        assert deliver(days=3).sent == 2
        [event] = events_in(calendar).values()
        assert event["DTSTART"].dt == datetime(2027, 3, 12, 19, tzinfo=UTC)
        assert int(event["SEQUENCE"]) == consultation.booking_sequence
