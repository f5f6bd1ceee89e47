"""Connecting a therapist to their own calendar, testing it and disconnecting it: what
the back office's therapist page and ``calendars connect`` do. The view or command owns
the transaction; ``test`` reads the calendar (portal.calendars.sync) and commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from flask import current_app
from sqlalchemy import delete, select

from portal.booking.scheduling import PACIFIC, format_day, format_span, format_time
from portal.booking.therapists import Therapist
from portal.calendars.addresses import check_address
from portal.calendars.errors import CalendarError, describe
from portal.calendars.models import CalendarBusy, TherapistCalendar
from portal.calendars.sync import is_stale, sync_one
from portal.extensions import db
from portal.models import to_db


def connect(therapist: Therapist, kind: str, url: str, *, username: str | None = None,
            password: str | None = None) -> TherapistCalendar:
    """Connect (or re-connect) ``therapist`` to a calendar. Raises CalendarError when the
    address may not be fetched. Busy ranges of an earlier calendar are dropped: the new
    one is read by ``test`` or the next sync (until then the therapist offers no times)."""
    if kind not in ("ics", "caldav"):
        raise CalendarError("bad_address")
    url = url.strip()
    if url.startswith("webcal://"):  # how Apple and Outlook hand out published calendars
        url = "https://" + url.removeprefix("webcal://")
    check_address(url, allow_private=bool(current_app.config["CALENDAR_ALLOW_PRIVATE_URLS"]))
    disconnect(therapist)
    calendar = TherapistCalendar(therapist_id=therapist.id, kind=kind, url=url,
                                 username=(username or None) if kind == "caldav" else None,
                                 password=(password or None) if kind == "caldav" else None)
    db.session.add(calendar)
    db.session.flush()
    return calendar


def disconnect(therapist: Therapist) -> bool:
    """Forget the therapist's calendar and every busy range read from it."""
    calendar = calendar_of(therapist.id)
    db.session.execute(delete(CalendarBusy).where(CalendarBusy.therapist_id == therapist.id))
    if calendar is None:
        return False
    db.session.delete(calendar)
    db.session.flush()
    return True


def calendar_of(therapist_id: int) -> TherapistCalendar | None:
    return db.session.scalar(
        select(TherapistCalendar).where(TherapistCalendar.therapist_id == therapist_id))


def test(therapist_id: int, now: datetime | None = None) -> str:
    """Read the therapist's calendar now (stored like any sync; commits) and say what it
    gave: "Read 37 events; next busy Monday, December 7, 10:00–11:00 AM PT"."""
    now = now or datetime.now(UTC)
    calendar = calendar_of(therapist_id)
    if calendar is None:
        return "No calendar is connected."
    outcome = sync_one(calendar.id, now)
    if isinstance(outcome, CalendarError):
        return f"Could not read the calendar. {outcome.words}"
    calendar = calendar_of(therapist_id)
    events = calendar.event_count if calendar is not None else None
    read = f"Read {events} event{'s' if events != 1 else ''}" if events is not None \
        else "Read the calendar (unchanged since the last read)"
    busy = next_busy(therapist_id, now)
    db.session.rollback()
    if busy is None:
        return f"{read}; nothing busy ahead."
    return f"{read}; next busy {busy}."


@dataclass
class CalendarStatus:
    """What a therapist reads about their own calendar on their dashboard."""

    kind: str  # "CalDAV calendar", "iCalendar address"
    read_ok_at: datetime | None  # the last good read (None: never read)
    stale: bool  # offering no times because of it
    error: str  # the last read's failure in words ("" when it went well)
    failing_since: datetime | None
    event_count: int | None
    next_busy: str | None  # "Monday, December 7, 10:00–11:00 AM PT"


def status(therapist_id: int, now: datetime | None = None) -> CalendarStatus | None:
    """The therapist's own calendar as the last sync left it (None: not connected)."""
    now = now or datetime.now(UTC)
    calendar = calendar_of(therapist_id)
    if calendar is None:
        return None
    return CalendarStatus(calendar.kind_label, calendar.read_ok_at, is_stale(calendar, now),
                          describe(calendar.last_error), calendar.failing_since,
                          calendar.event_count, next_busy(therapist_id, now))


def next_busy(therapist_id: int, now: datetime) -> str | None:
    """The therapist's next busy range from their calendar, in words (None: none ahead)."""
    busy = db.session.execute(
        select(CalendarBusy.starts_at, CalendarBusy.ends_at)
        .where(CalendarBusy.therapist_id == therapist_id, CalendarBusy.ends_at > to_db(now))
        .order_by(CalendarBusy.starts_at).limit(1)).first()
    return describe_range(*busy) if busy else None


def describe_range(starts_at: datetime, ends_at: datetime) -> str:
    """A busy range for staff: "Monday, December 7, 10:00–11:00 AM PT", "Friday,
    March 12, all day"."""
    begins, ends = starts_at.replace(tzinfo=UTC), ends_at.replace(tzinfo=UTC)
    local_begins, local_ends = begins.astimezone(PACIFIC), ends.astimezone(PACIFIC)
    first, last = local_begins.date(), local_ends.date()
    if local_begins.time() == local_ends.time() == time(0):
        days = format_day(first) if (last - first).days == 1 else \
            f"{format_day(first)} to {format_day(last - timedelta(days=1))}"
        return f"{days}, all day"
    if first == last:
        return f"{format_day(first)}, {format_span(begins, ends - begins)} PT"
    return (f"{format_day(first)}, {format_time(begins)} PT to "
            f"{format_day(last)}, {format_time(ends)} PT")
