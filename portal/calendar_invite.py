"""The ``.ics`` attached to a client's emails: one event per booking, in Pacific time.

The UID stays the same for the life of a booking so that calendar programs
update the event instead of adding a second one; SEQUENCE is the booking's
``booking_sequence`` (raised on every reschedule and cancellation); a
cancellation is the same event with STATUS:CANCELLED. The UID's domain is the
setting ``CALENDAR_UID_DOMAIN``, not the sender's, so changing the sender
address does not turn every booking into a new event. The event carries no
client details and no manage link (calendars get shared and synced; the link
is a key to the booking).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, Timezone

from portal.scheduling import PACIFIC, SLOT_LENGTH

PRODID = "-//Consultation portal//EN"


def event_uid(reference: str, domain: str) -> str:
    return f"consultation-{reference}@{domain}"


def build_ics(*, reference: str, domain: str, starts_at: datetime, ends_at: datetime | None,
              sequence: int, summary: str, description: str, organizer_email: str,
              cancelled: bool = False, stamp: datetime | None = None) -> str:
    """The calendar for one booking as text (CRLF line endings, as RFC 5545 wants)."""
    start = starts_at.astimezone(PACIFIC)
    end = (ends_at or starts_at + SLOT_LENGTH).astimezone(PACIFIC)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    # A VTIMEZONE lets every client place the time correctly, DST included.
    calendar.add_component(Timezone.from_tzid("America/Los_Angeles",
                                              first_date=start.date() - timedelta(days=366),
                                              last_date=end.date() + timedelta(days=366)))
    event = Event()
    event.add("uid", event_uid(reference, domain))
    event.add("dtstamp", stamp or datetime.now(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("sequence", sequence)
    event.add("summary", summary)
    event.add("description", description)
    event.add("organizer", f"mailto:{organizer_email}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")
