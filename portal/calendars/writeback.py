"""Consultations written into a CalDAV-connected therapist's own calendar, through the
outbox: each booking, move, reassignment and cancellation queues one row on the outbox's
``calendar`` channel in the same transaction as the event (an iCalendar event for a PUT,
nothing for a removal), and ``portal.calendars.delivery`` writes it. The outbox gives
what email has: durable, in order per request (per channel: a calendar server that is
down never holds back a client's email), retried with back-off, once per event (the
row's key).

The event is the one the therapist's feed carries (portal.calendars.feed): "Free
consultation C-…" with the back-office link, no client details, under the UID of the
client's own calendar file, with ``booking_sequence`` as its SEQUENCE (a move raises
it). A cancellation stays in the calendar as STATUS:CANCELLED (and free), so the
therapist sees what happened; a consultation moved to another therapist is removed
from the previous one's calendar. Reading skips these events (CALENDAR_UID_DOMAIN).
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from icalendar import Calendar
from sqlalchemy import select

from portal.booking.statuses import OPEN_STATUSES
from portal.calendars.models import TherapistCalendar
from portal.extensions import db
from portal.messages.calendar_invite import PRODID, event_uid
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest

CHANNEL = "calendar"
PUT, DELETE = "calendar_put", "calendar_delete"


def target(therapist_id: int) -> str:
    """The outbox row's recipient: whose calendar it is written into."""
    return f"calendar:{therapist_id}"


def therapist_of(recipient: str) -> int | None:
    kind, _, number = recipient.partition(":")
    return int(number) if kind == "calendar" and number.isdigit() else None


def queue(consultation: ConsultationRequest, prefix: str, *,
          previous_therapist_id: int | None = None) -> None:
    """Queue what the therapists' calendars need after an event (``prefix``: the event's
    outbox key, as notifications use it)."""
    if consultation.starts_at is None:
        return
    current = consultation.therapist_id
    if previous_therapist_id not in (None, current):
        _add(consultation, previous_therapist_id, f"{prefix}:calendar-remove", DELETE, None)
    if current is not None:
        held = consultation.status in OPEN_STATUSES
        _add(consultation, current, f"{prefix}:calendar", PUT,
             event_ics(consultation, cancelled=not held))


def event_ics(consultation: ConsultationRequest, *, cancelled: bool = False) -> str:
    """The consultation as a calendar object (no METHOD: a stored object, not a message)."""
    from portal.calendars.feed import consultation_event

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    event = consultation_event(consultation, current_app.config["CALENDAR_UID_DOMAIN"],
                               datetime.now(UTC), cancelled=cancelled)
    if cancelled:
        event["TRANSP"] = "TRANSPARENT"
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")


def _writes_back(therapist_id: int) -> bool:
    return db.session.scalar(select(TherapistCalendar.kind).where(
        TherapistCalendar.therapist_id == therapist_id)) == "caldav"


def _add(consultation: ConsultationRequest, therapist_id: int, key: str, kind: str,
         ics: str | None) -> None:
    if not _writes_back(therapist_id):
        return
    if db.session.scalar(select(OutboxEmail.id).where(OutboxEmail.key == key)) is not None:
        return
    uid = event_uid(consultation.reference, current_app.config["CALENDAR_UID_DOMAIN"])
    # body_text "": the row holds something to send (retry_failed requeues only those).
    db.session.add(OutboxEmail(key=key, kind=kind, channel=CHANNEL, request_id=consultation.id,
                               recipient=target(therapist_id), subject="", body_text="",
                               ics=ics, message_id=uid))
    db.session.flush()
