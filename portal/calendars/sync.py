"""Every connected calendar read and its busy ranges stored (``calendars sync``, its
timer, ``make run``'s background worker), the stale rule, and what staff are told.

Each calendar is read outside any transaction (the network never holds the database's
write lock), then its outcome is stored in a short write transaction of its own: one
slow or huge calendar costs at most CALENDAR_TIMEOUT_SECONDS and never stops the
others. The busy ranges are replaced only when they changed (their triggers then raise
the availability version), for a window from a day ago to the booking horizon plus
WINDOW_MARGIN, so the time picker reads the ranges, never the calendar.

Fail closed: a calendar not read successfully for CALENDAR_STALE_MINUTES makes its
therapist offer no times (``stale_therapists``), and a failed read keeps the last good
ranges until then. ``fresh_since`` moves only when a read succeeds after such a stale
spell (or for the first time): its trigger raises the availability version, so the
therapist's times come back at once; a routine read changes ``read_ok_at`` alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from portal.booking.scheduling import PACIFIC
from portal.calendars.errors import CalendarError, describe
from portal.calendars.models import CalendarBusy, TherapistCalendar
from portal.calendars.reading import Limits, Reading, read_caldav, read_ics
from portal.database import begin_write
from portal.extensions import db
from portal.models import as_utc, to_db

log = logging.getLogger("portal.calendars")
WINDOW_MARGIN = timedelta(days=14)


@dataclass
class SyncReport:
    read: int = 0
    changed: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (therapist id, code)

    def summary(self) -> str:
        failed = "".join(f"; therapist {tid}: {describe(code)}" for tid, code in self.failed)
        return (f"Read {self.read} calendar(s), {self.changed} changed, "
                f"{len(self.failed)} failed{failed}")


def window(now: datetime) -> tuple[datetime, datetime]:
    """The stretch of time whose busy ranges are kept: whole Pacific days from yesterday
    to the booking horizon plus WINDOW_MARGIN, so that it moves once a day, not with
    every read (a moved window would change the ranges, and the version, every time)."""
    horizon = timedelta(days=int(current_app.config["BOOKING_HORIZON_DAYS"]))
    today = now.astimezone(PACIFIC).date()
    first, last = today - timedelta(days=1), today + horizon + WINDOW_MARGIN
    return (datetime(first.year, first.month, first.day, tzinfo=PACIFIC).astimezone(UTC),
            datetime(last.year, last.month, last.day, tzinfo=PACIFIC).astimezone(UTC))


def stale_after() -> timedelta:
    return timedelta(minutes=float(current_app.config["CALENDAR_STALE_MINUTES"]))


def sync_all(now: datetime | None = None) -> SyncReport:
    """Read every connected calendar once; one failure is recorded and the rest go on."""
    report = SyncReport()
    ids = db.session.scalars(select(TherapistCalendar.id).order_by(TherapistCalendar.id)).all()
    db.session.rollback()
    for calendar_id in ids:
        try:
            sync_one(calendar_id, now, report)
        except Exception as error:  # a portal fault with one calendar must not stop the rest
            db.session.rollback()
            log.error("calendar id=%s outcome=error error=%s", calendar_id, type(error).__name__)
    return report


def sync_one(calendar_id: int, now: datetime | None = None,
             report: SyncReport | None = None) -> Reading | CalendarError | None:
    """Read one calendar and store the outcome (commits). None if it is gone."""
    report = report if report is not None else SyncReport()
    calendar = db.session.get(TherapistCalendar, calendar_id)
    if calendar is None:
        return None
    source = (calendar.kind, calendar.url, calendar.username, calendar.password,
              calendar.validator)
    db.session.rollback()  # no transaction, and no lock, while the network is read
    now = now or datetime.now(UTC)
    outcome = read(*source, now=now)
    begin_write()
    calendar = db.session.get(TherapistCalendar, calendar_id)
    if calendar is None or (calendar.kind, calendar.url) != source[:2]:
        db.session.rollback()  # disconnected or changed meanwhile: this read is void
        return None
    if isinstance(outcome, CalendarError):
        record_failure(calendar, outcome, now)
        report.failed.append((calendar.therapist_id, outcome.code))
    else:
        report.read += 1
        report.changed += record_success(calendar, outcome, now)
    db.session.commit()
    return outcome


def read(kind: str, url: str, username: str | None, password: str | None,
         validator: str | None, *, now: datetime) -> Reading | CalendarError:
    """One read of a calendar (no database). The validator carries the Pacific date the
    window began on: a new day reads everything again, as the window has moved."""
    limits = Limits.from_config(current_app.config)
    start, end = window(now)
    day = now.astimezone(PACIFIC).date().isoformat()
    stored_day, _, stored = (validator or "").partition(" ")
    previous = stored if stored_day == day and stored else None
    try:
        if kind == "caldav":
            reading = read_caldav(url, username, password, previous, start, end, limits)
        else:
            reading = read_ics(url, previous, start, end, limits)
    except CalendarError as error:
        return error
    if reading.validator:
        reading.validator = f"{day} {reading.validator}"[:300]
    return reading


def record_success(calendar: TherapistCalendar, reading: Reading, now: datetime) -> int:
    """Store a good read; 1 when the busy ranges changed."""
    last_ok = as_utc(calendar.read_ok_at)
    if last_ok is None or last_ok <= now - stale_after():
        calendar.fresh_since = to_db(now)
    calendar.read_ok_at = to_db(now)
    calendar.failing_since = None
    calendar.last_error = None
    calendar.validator = reading.validator
    if reading.events is not None:
        calendar.event_count = reading.events
    log.info("calendar id=%s outcome=read changed=%s", calendar.id, reading.ranges is not None)
    if reading.ranges is None:
        return 0
    return int(replace_ranges(calendar.therapist_id, reading.ranges))


def record_failure(calendar: TherapistCalendar, error: CalendarError, now: datetime) -> None:
    if calendar.failing_since is None:
        calendar.failing_since = to_db(now)
    calendar.last_error = error.code
    log.warning("calendar id=%s outcome=failed error=%s", calendar.id, error.code)


def replace_ranges(therapist_id: int, ranges: list[tuple[datetime, datetime]]) -> bool:
    """Store ``ranges`` as the therapist's busy ranges unless they are the same already."""
    stored = [(as_utc(begins), as_utc(ends)) for begins, ends in db.session.execute(
        select(CalendarBusy.starts_at, CalendarBusy.ends_at)
        .where(CalendarBusy.therapist_id == therapist_id).order_by(CalendarBusy.starts_at))]
    wanted = [(begins.astimezone(UTC), ends.astimezone(UTC)) for begins, ends in ranges]
    if stored == wanted:
        return False
    db.session.execute(delete(CalendarBusy).where(CalendarBusy.therapist_id == therapist_id))
    if wanted:
        db.session.execute(CalendarBusy.__table__.insert(), [
            {"therapist_id": therapist_id, "starts_at": to_db(b), "ends_at": to_db(e)}
            for b, e in wanted])
    return True


def is_stale(calendar: TherapistCalendar, now: datetime) -> bool:
    last_ok = as_utc(calendar.read_ok_at)
    return last_ok is None or last_ok <= now - stale_after()


@dataclass
class CalendarProblem:
    """What the dashboard and the therapist's page say about a calendar that fails."""

    therapist_id: int
    therapist_name: str
    kind: str
    stale: bool  # offering no times because of it
    since: datetime | None  # failing since, or connected and never read since
    error: str  # in words


def problems(now: datetime | None = None, therapist_id: int | None = None
             ) -> list[CalendarProblem]:
    """Calendars whose last read failed or that are stale, with why."""
    now = now or datetime.now(UTC)
    query = select(TherapistCalendar).order_by(TherapistCalendar.therapist_id)
    if therapist_id is not None:
        query = query.where(TherapistCalendar.therapist_id == therapist_id)
    found = []
    for calendar in db.session.scalars(query):
        stale = is_stale(calendar, now)
        if not stale and calendar.last_error is None:
            continue
        since = as_utc(calendar.failing_since) or as_utc(calendar.read_ok_at) \
            or as_utc(calendar.connected_at)
        words = describe(calendar.last_error) or "Not read yet: the next sync reads it."
        found.append(CalendarProblem(calendar.therapist_id, calendar.therapist.name,
                                     calendar.kind_label, stale, since, words))
    return found
