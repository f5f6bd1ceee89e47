"""Free consultation times from the database: which therapists can be booked,
what keeps them busy (bookings that hold their time, time off), and how many
upcoming consultations each has. The pure arithmetic is in portal.booking.scheduling."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import DateTime, Integer, String, TextClause, Time, bindparam, func, select, text
from sqlalchemy.orm import selectinload

from portal.booking import availability_version
from portal.booking.reply_promise import holidays
from portal.booking.scheduling import SLOT_LENGTH, Busy, HoursRange, free_slots, merge_free_slots
from portal.booking.statuses import HOLDS_SLOT_SQL, OPEN_STATUSES
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.lru_cache import LruCache
from portal.models import ConsultationRequest, as_utc, to_db


def bookable_therapists() -> list[Therapist]:
    """Active therapists taking new clients, with their weekly hours loaded at once
    (a page shows every therapist's times). Load once per request and pass it on."""
    return list(db.session.scalars(
        select(Therapist).where(Therapist.active.is_(True), Therapist.accepting_new.is_(True))
        .options(selectinload(Therapist.hours)).order_by(Therapist.name)
    ))


class TherapistCard(NamedTuple):
    """A bookable therapist as the public details page uses them: who they are and their
    weekly hours, read as plain values (no ORM objects to build on every visit)."""

    id: int
    name: str
    licence_type: str
    licence_number: str
    hours: tuple[HoursRange, ...]
    video_url: str | None = None


# One query for the therapists and their hours, in bookable_therapists()'s order.
_BOOKABLE_CARDS = text(
    'SELECT t.id, t.name, t.licence_type, t.licence_number, t.video_url, h.weekday, h.start,'
    ' h."end"'
    " FROM therapist t LEFT JOIN weekly_hours h ON h.therapist_id = t.id"
    " WHERE t.active = :yes AND t.accepting_new = :yes"
    " ORDER BY t.name, t.id, h.weekday, h.start"
).bindparams(yes=True).columns(id=Integer, name=String, licence_type=String,
                               licence_number=String, video_url=String, weekday=Integer,
                               start=Time, end=Time)


def bookable_therapist_cards() -> list[TherapistCard]:
    """bookable_therapists() as TherapistCards: the same therapists, hours and order,
    for a page that shows them. Reused while the availability version stays the same
    (a change of a therapist or their hours raises it)."""
    return list(availability_version.reuse("therapist_cards", _read_cards))


def _read_cards() -> tuple[TherapistCard, ...]:
    cards: dict[int, tuple[tuple, list[HoursRange], str | None]] = {}
    for tid, name, licence_type, number, video, weekday, begins, ends in (
            db.session.connection().execute(_BOOKABLE_CARDS)):
        _, hours, _ = cards.setdefault(tid, ((tid, name, licence_type, number), [], video))
        if weekday is not None:
            hours.append(HoursRange(weekday, begins, ends))
    return tuple(TherapistCard(*who, tuple(hours), video)
                 for who, hours, video in cards.values())


def therapists_for_reschedule(consultation: ConsultationRequest) -> list[Therapist]:
    """The therapists a booking may move to: the bookable ones, and the request's own
    therapist while still active even when no longer taking new clients (they keep
    their existing clients; without them here a client's reschedule would quietly go
    to someone else). Hours loaded, as bookable_therapists()."""
    therapists = bookable_therapists()
    own = consultation.therapist_id
    if own is None or any(t.id == own for t in therapists):
        return therapists
    mine = db.session.scalar(
        select(Therapist).where(Therapist.id == own, Therapist.active.is_(True))
        .options(selectinload(Therapist.hours)))
    return therapists if mine is None else sorted([*therapists, mine], key=lambda t: t.name)


def chosen_therapists(therapist_choice: object,
                       therapists: Sequence[Therapist] | None = None) -> list[Therapist]:
    therapists = bookable_therapists() if therapists is None else list(therapists)
    if therapist_choice in (None, "", "any"):
        return therapists
    return [t for t in therapists if str(t.id) == str(therapist_choice)]


class Busyness(NamedTuple):
    """What keeps one therapist busy: time off and the busy ranges of their own calendar
    as intervals, the start times of the bookings that hold their time (each one slot
    long, as booking.py writes them: slot_end is always slot_start + SLOT_LENGTH), and,
    for a therapist with a connected calendar, until when its last good read counts
    (``open_until``: after it, they offer no times; see portal.calendars.sync)."""

    intervals: list[Busy]
    booked: list[datetime]
    open_until: list[datetime]  # empty, or the one instant

    def closed_at(self, now: datetime) -> bool:
        return bool(self.open_until) and now >= self.open_until[0]


# The busy-time reads of the time picker, as fixed SQL: built and compiled once, not per
# page. Bookings are one range of the booking index (therapist_id, slot_start) per
# therapist, bounded on both sides, read only from that index (the condition repeats the
# uq_booking_therapist_slot index's word for word, literals included: SQLite uses a
# partial index only then). Start times come back as the driver gives them (text on
# SQLite) and are parsed here, much faster than the ORM's DateTime type does it.
_BOOKED_SQL = ("SELECT therapist_id, slot_start FROM consultation_request"  # noqa: S608 - constants
               f" WHERE {HOLDS_SLOT_SQL} AND therapist_id IN :ids"
               " AND slot_start > :after AND slot_start < :before")


def _window_query(sql: str, **columns) -> TextClause:
    return text(sql).bindparams(
        bindparam("ids", expanding=True), bindparam("after", type_=DateTime),
        bindparam("before", type_=DateTime)).columns(therapist_id=Integer, **columns)


_BOOKED = _window_query(_BOOKED_SQL)
# A request's own time counts as free (it is being moved, or it is the visitor's own
# pending request). Its own statement: the id is not in the booking index.
_BOOKED_BUT = _window_query(_BOOKED_SQL + " AND id != :exclude")
_TIME_OFF = _window_query(
    "SELECT therapist_id, starts_at, ends_at FROM time_off"
    " WHERE therapist_id IN :ids AND starts_at < :before AND ends_at > :after"
    " UNION ALL SELECT therapist_id, starts_at, ends_at FROM calendar_busy"
    " WHERE therapist_id IN :ids AND starts_at < :before AND ends_at > :after",
    starts_at=DateTime, ends_at=DateTime)
# When each connected calendar was last read successfully (portal.calendars.sync).
_CALENDARS = text(
    "SELECT therapist_id, read_ok_at FROM therapist_calendar WHERE therapist_id IN :ids"
).bindparams(bindparam("ids", expanding=True)).columns(therapist_id=Integer,
                                                        read_ok_at=DateTime)


def _busy_by_therapist(ids: list[int], start: datetime, end: datetime,
                       exclude_request_id: int | None) -> dict[int, Busyness]:
    """What keeps each therapist busy between ``start`` and ``end``."""
    busy = {tid: Busyness([], [], []) for tid in ids}
    if not ids:
        return busy
    window = {"ids": ids, "after": to_db(start - SLOT_LENGTH), "before": to_db(end)}
    parse = datetime.fromisoformat
    # The session's connection: plain rows, without the ORM's result machinery.
    connection = db.session.connection()
    if exclude_request_id is None:
        rows = connection.execute(_BOOKED, window)
    else:
        rows = connection.execute(_BOOKED_BUT, {**window, "exclude": exclude_request_id})
    for therapist_id, begins in rows:
        if not isinstance(begins, datetime):
            begins = parse(begins)
        busy[therapist_id].booked.append(begins.replace(tzinfo=UTC))
    window["after"] = to_db(start)
    for therapist_id, begins, ends in connection.execute(_TIME_OFF, window):
        if begins <= ends:  # a reversed time-off range blocks nothing rather than crash
            busy[therapist_id].intervals.append(Busy(as_utc(begins), as_utc(ends)))
    stale_after = timedelta(minutes=float(current_app.config["CALENDAR_STALE_MINUTES"]))
    for therapist_id, read_ok_at in connection.execute(_CALENDARS, {"ids": ids}):
        # Never read: closed from the start of time.
        ok_until = as_utc(read_ok_at) + stale_after if read_ok_at else datetime.min.replace(
            tzinfo=UTC)
        busy[therapist_id].open_until.append(ok_until)
    return busy


def available_slots(therapist_choice: object, now: datetime | None = None, *,
                    exclude_request_id: int | None = None,
                    therapists: Sequence[Therapist] | None = None,
                    reuse: bool = False) -> dict[datetime, list[int]]:
    """Free start times (UTC, sorted) for a therapist id or "any", each with the
    ids of the therapists free then. ``exclude_request_id``: a booking being moved
    does not block its own time. ``therapists``: bookable_therapists() when the
    caller has them already.

    ``reuse``: for a page that only shows the times (see ``FreeTimesCache``): the
    times may come from an earlier visit while the database's availability version
    is the same. Not for a caller that has changed bookings in its own transaction:
    its change raises the version only when it commits. Times that leave a request's
    own time free (``exclude_request_id``) are always worked out afresh."""
    now = now or datetime.now(UTC)
    notice, horizon = _notice_and_horizon()
    therapists = chosen_therapists(therapist_choice, therapists)
    if reuse and exclude_request_id is None:
        return free_times_cache().free(therapists, now, notice, horizon)
    return _work_out(therapists, now, notice, horizon, exclude_request_id)[0]


def _work_out(therapists: Sequence[Therapist | TherapistCard], now: datetime,
              notice: timedelta, horizon: timedelta, exclude_request_id: int | None = None
              ) -> tuple[dict[datetime, list[int]], datetime | None]:
    """The free times, and until when they hold as far as the therapists' own calendars
    go (the earliest moment a calendar read now counted goes stale; None: no calendar).
    A therapist whose calendar is stale already offers nothing."""
    ids = [t.id for t in therapists]
    busy = _busy_by_therapist(ids, now, now + horizon + SLOT_LENGTH, exclude_request_id)
    closed = holidays()  # no times at all, whatever the weekly hours say
    per_therapist = {
        t.id: free_slots(_weekly_hours(t), busy[t.id].intervals, booked=busy[t.id].booked,
                         now=now, min_notice=notice, horizon=horizon, closed=closed)
        for t in therapists if not busy[t.id].closed_at(now)
    }
    open_until = [b.open_until[0] for b in busy.values() if b.open_until and not b.closed_at(now)]
    return merge_free_slots(per_therapist), min(open_until, default=None)


class _WorkedOut(NamedTuple):
    at: datetime  # the "now" they were worked out for
    starts: list[datetime]  # sorted
    free: dict[datetime, list[int]]
    until: datetime | None  # a therapist's calendar goes stale then (None: no calendar)

    def holds_at(self, now: datetime, reuse_for: timedelta) -> bool:
        return self.at <= now < self.at + reuse_for and (self.until is None or now < self.until)


class FreeTimesCache:
    """Free times worked out once and reused by every visit while the availability
    version (portal.booking.availability_version) stays the same, so a page's cost follows the
    times it shows, not the bookings the database holds.

    Each entry is worked out for a window ``REUSE_FOR`` longer than the booking
    horizon and cut to the visit's own window (notice and horizon from its ``now``),
    so it stays exact as time passes; after ``REUSE_FOR`` it is worked out again.
    Keyed by the version, the therapists' ids, the notice and the horizon. One per app;
    a few entries, safe across threads."""

    REUSE_FOR = timedelta(minutes=15)
    SIZE = 16

    def __init__(self) -> None:
        self._entries: LruCache[_WorkedOut] = LruCache(self.SIZE)

    def free(self, therapists: Sequence[Therapist | TherapistCard], now: datetime,
             notice: timedelta, horizon: timedelta) -> dict[datetime, list[int]]:
        # The version is read first: what is then read can only be as new or newer.
        # The version stands for the therapists' hours too (a change raises it).
        key = (availability_version.current(), notice, horizon, tuple(t.id for t in therapists))
        entry = self._entries.get(key)
        if entry is None or not entry.holds_at(now, self.REUSE_FOR):
            free, until = _work_out(therapists, now, notice, horizon + self.REUSE_FOR)
            entry = _WorkedOut(now, list(free), free, until)
            self._entries.put(key, entry)
        starts = entry.starts
        first = bisect_left(starts, now + notice)
        last = bisect_left(starts, now + horizon)
        # Lists of their own: the entry is shared by every visit.
        return {start: list(entry.free[start]) for start in starts[first:last]}

    def __len__(self) -> int:
        return len(self._entries)


def free_times_cache() -> FreeTimesCache:
    """This app's cache (its settings decide the times)."""
    return current_app.extensions.setdefault("free_times", FreeTimesCache())


def free_therapists_at(therapist_choice: object, start: datetime, now: datetime | None = None,
                       *, exclude_request_id: int | None = None,
                       therapists: Sequence[Therapist] | None = None) -> list[int]:
    """The ids (sorted) of the therapists free at ``start`` (aware): the same answer as
    ``available_slots(...).get(start, [])``, but only the bookings and time off that
    overlap that one slot are read. For checking a chosen time under the write lock."""
    now = now or datetime.now(UTC)
    start = start.astimezone(UTC)
    notice, horizon = _notice_and_horizon()
    if not now + notice <= start < now + horizon:
        return []
    therapists = chosen_therapists(therapist_choice, therapists)
    busy = _busy_by_therapist([t.id for t in therapists], start, start + SLOT_LENGTH,
                              exclude_request_id)
    # The notice and horizon are checked above; free_slots only has to say whether
    # ``start`` is one of the therapist's free times, so it is asked as if ``now``
    # were the notice before it, with a window that ends one slot after it.
    closed = holidays()  # no times at all, whatever the weekly hours say
    return sorted(
        t.id for t in therapists
        if not busy[t.id].closed_at(now)
        and start in free_slots(_weekly_hours(t), busy[t.id].intervals,
                                booked=busy[t.id].booked, now=start - notice,
                                min_notice=notice, horizon=notice + SLOT_LENGTH, closed=closed)
    )


def _notice_and_horizon() -> tuple[timedelta, timedelta]:
    config = current_app.config
    return (timedelta(hours=config["MIN_NOTICE_HOURS"]),
            timedelta(days=config["BOOKING_HORIZON_DAYS"]))


def _weekly_hours(therapist: Therapist | TherapistCard) -> list[HoursRange]:
    return [HoursRange(h.weekday, h.start, h.end) for h in therapist.hours]


def upcoming_counts(therapist_ids: Sequence[int], now: datetime) -> dict[int, int]:
    rows = db.session.execute(
        select(ConsultationRequest.therapist_id, func.count()).where(
            ConsultationRequest.therapist_id.in_(list(therapist_ids)),
            ConsultationRequest.status.in_(OPEN_STATUSES),
            ConsultationRequest.slot_start >= to_db(now),
        ).group_by(ConsultationRequest.therapist_id)
    )
    return dict(rows.tuples().all())
