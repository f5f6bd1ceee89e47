"""Free consultation times, in Pacific time, correct across daylight saving.

Therapists keep weekly hours as Pacific wall-clock times; time off and
existing bookings are busy intervals. ``free_slots`` turns those into the
30-minute start times a person may pick, as UTC instants, and the
``format_*`` functions write them for people. Slot radio values travel as
ISO 8601 instants (``slot_value`` / ``parse_slot_value``). Nothing here
touches Flask or the database.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import groupby
from zoneinfo import ZoneInfo

from babel import dates as babel_dates

PACIFIC = ZoneInfo("America/Los_Angeles")
SLOT_LENGTH = timedelta(minutes=30)
MIN_NOTICE = timedelta(hours=24)
HORIZON = timedelta(days=21)

# A slot value outside these years is a typo or a probe, never a real booking.
_EARLIEST_YEAR = 2000
_LATEST_YEAR = 2200

# The Babel locale behind each language the portal speaks (Spanish as used in the US).
BABEL_LOCALES = {"en": "en_US", "es": "es_US"}
# A day without its year, in CLDR's pattern syntax ("jueves, 3 de diciembre").
DAY_PATTERNS = {"es": "EEEE, d 'de' MMMM"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class HoursRange:
    """Weekly hours: Pacific wall-clock ``start``-``end`` on ``weekday`` (0 = Monday)."""

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), not {self.weekday}")
        if self.start >= self.end:
            raise ValueError("hours must end after they start")


@dataclass(frozen=True)
class Busy:
    """A half-open interval [start, end) when a therapist is not free."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start)
        _require_aware(self.end)
        if self.end < self.start:
            raise ValueError("busy interval ends before it starts")


def _require_aware(dt: datetime) -> None:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {dt!r}")


def _pacific(dt: datetime) -> datetime:
    _require_aware(dt)
    return dt.astimezone(PACIFIC)


def _local_instant(day: date, wall_clock: time) -> datetime | None:
    """The UTC instant of a Pacific wall-clock time, None when it does not exist."""
    # fold=0 picks the first (daylight) occurrence of an ambiguous fall-back time.
    local = datetime.combine(day, wall_clock, tzinfo=PACIFIC)
    instant = local.astimezone(UTC)
    if instant.astimezone(PACIFIC).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # inside the spring-forward gap
    return instant


def _range_starts(day: date, hours: HoursRange, length: timedelta) -> tuple[datetime, ...]:
    return _day_starts(day, hours.start, hours.end, length)


@lru_cache(maxsize=8192)
def _day_starts(day: date, start: time, end: time, length: timedelta) -> tuple[datetime, ...]:
    """The UTC start times of one day's weekly hours. Cached: the same few weeks of
    days are asked for on every page, and the zone arithmetic is the costly part."""
    wall = datetime.combine(day, start)
    last = datetime.combine(day, end)
    found = []
    while wall + length <= last:
        instant = _local_instant(day, wall.time())
        if instant is not None:
            found.append(instant)
        wall += length
    return tuple(found)


class _BusyIndex:
    """Busy intervals sorted by start, with the latest end among each prefix, so
    "does [start, end) overlap any of them?" is one binary search instead of a scan:
    the intervals starting before ``end`` are a prefix, and one of them overlaps
    exactly when the latest end in that prefix is after ``start`` (the same answer
    as testing each interval, zero-length ones included)."""

    def __init__(self, busy: Iterable[Busy], booked: Iterable[datetime],
                 length: timedelta) -> None:
        pairs = [(b.start, b.end) for b in busy]
        pairs += [(begins, begins + length) for begins in booked]
        ordered = sorted(pairs, key=lambda pair: pair[0])
        self.starts = [begins for begins, _ in ordered]
        self.latest_end: list[datetime] = []
        for _, ends in ordered:
            self.latest_end.append(max(ends, self.latest_end[-1]) if self.latest_end else ends)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        before = bisect_left(self.starts, end)
        return before > 0 and self.latest_end[before - 1] > start


def free_slots(
    hours: Iterable[HoursRange],
    busy: Iterable[Busy],
    *,
    now: datetime,
    min_notice: timedelta = MIN_NOTICE,
    horizon: timedelta = HORIZON,
    length: timedelta = SLOT_LENGTH,
    booked: Iterable[datetime] = (),
    closed: Collection[date] = frozenset(),
) -> list[datetime]:
    """Sorted UTC start times of free slots between ``now + min_notice`` and ``now + horizon``.

    ``closed``: days (Pacific dates, the practice's ``HOLIDAYS``) with no times at all.

    ``booked``: start times (aware) of bookings, each ``length`` long; the same as
    passing them as ``Busy`` intervals, without checking each one (the database
    gives hundreds). The cost follows the candidate times (one binary search each
    among the busy intervals), not the bookings times the candidates."""
    _require_aware(now)
    hours, earliest, latest = list(hours), now + min_notice, now + horizon
    taken = _BusyIndex(busy, booked, length)
    day, last_day = _pacific(now).date(), _pacific(latest).date()
    starts: set[datetime] = set()
    while day <= last_day:
        for weekly in hours:
            if weekly.weekday == day.weekday() and day not in closed:
                starts.update(_range_starts(day, weekly, length))
        day += timedelta(days=1)
    return sorted(
        start
        for start in starts
        if earliest <= start < latest and not taken.overlaps(start, start + length)
    )


def merge_free_slots(per_therapist: Mapping[int, Iterable[datetime]]) -> dict[datetime, list[int]]:
    """Each free start time (sorted) with the ids of the therapists free then (sorted)."""
    merged: dict[datetime, set[int]] = {}
    for therapist_id, slots in per_therapist.items():
        for start in slots:
            merged.setdefault(start.astimezone(UTC), set()).add(therapist_id)
    return {start: sorted(merged[start]) for start in sorted(merged)}


def rank_therapists(candidates: Iterable[int], upcoming_counts: Mapping[int, int]) -> list[int]:
    """Candidates best first: fewest upcoming consultations, ties to the lowest id."""
    return sorted(candidates, key=lambda tid: (upcoming_counts.get(tid, 0), tid))


def pick_therapist(candidates: Iterable[int], upcoming_counts: Mapping[int, int]) -> int:
    """The candidate with the fewest upcoming consultations; ties go to the lowest id."""
    ranked = rank_therapists(candidates, upcoming_counts)
    if not ranked:
        raise ValueError("no therapist is free at that time")
    return ranked[0]


def group_by_day(slots: Iterable[datetime]) -> list[tuple[date, list[datetime]]]:
    """Slots in order, grouped by their Pacific date; days without slots are absent."""
    ordered = sorted(slots)
    if ordered:  # aware slots sort only among aware ones: checking the first is enough
        _require_aware(ordered[0])
    return [
        (day, list(day_slots))
        for day, day_slots in groupby(ordered, key=lambda dt: dt.astimezone(PACIFIC).date())
    ]


def _clock(local: datetime) -> tuple[str, str]:
    hour = local.hour % 12 or 12
    return f"{hour}:{local.minute:02d}", "AM" if local.hour < 12 else "PM"


def format_time(dt: datetime, language: str = "en") -> str:
    """Pacific clock time, e.g. "10:00 AM" ("10:00 a.m." in Spanish)."""
    if language != "en":
        return babel_dates.format_time(_pacific(dt), "short", locale=BABEL_LOCALES[language])
    clock, meridiem = _clock(_pacific(dt))
    return f"{clock} {meridiem}"


def format_day(day: date, language: str = "en") -> str:
    """A date for people, e.g. "Tuesday, December 1" ("martes, 1 de diciembre")."""
    if language != "en":
        return babel_dates.format_date(day, DAY_PATTERNS[language], locale=BABEL_LOCALES[language])
    return f"{WEEKDAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {day.day}"


def format_span(dt: datetime, length: timedelta = SLOT_LENGTH, language: str = "en") -> str:
    """A slot's Pacific start and end, e.g. "10:00–10:30 AM" or "11:30 AM–12:00 PM"."""
    if language != "en":
        start, end = _pacific(dt), _pacific(dt + length)
        return babel_dates.format_interval(start.time(), end.time(), "hm",
                                           locale=BABEL_LOCALES[language])
    start_clock, start_meridiem = _clock(_pacific(dt))
    end_clock, end_meridiem = _clock(_pacific(dt + length))
    if start_meridiem == end_meridiem:
        return f"{start_clock}\u2013{end_clock} {end_meridiem}"
    return f"{start_clock} {start_meridiem}\u2013{end_clock} {end_meridiem}"


def format_slot_long(dt: datetime, length: timedelta = SLOT_LENGTH, language: str = "en") -> str:
    """A full slot, e.g. "Tuesday, December 1, 2026, 10:00–10:30 AM PT"
    ("martes, 1 de diciembre de 2026, 10:00–10:30 a.m. PT")."""
    local = _pacific(dt)
    if language != "en":
        day = babel_dates.format_date(local.date(), "full", locale=BABEL_LOCALES[language])
        return f"{day}, {format_span(dt, length, language)} PT"
    return f"{format_day(local.date())}, {local.year}, {format_span(dt, length)} PT"


def slot_value(dt: datetime) -> str:
    """The canonical radio value for a slot: its UTC instant, e.g. "2026-12-01T18:00:00+00:00"."""
    _require_aware(dt)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def parse_slot_value(text: object) -> datetime | None:
    """A submitted slot value as a UTC instant; None unless it is ISO 8601 with an offset."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return None
        instant = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if not _EARLIEST_YEAR <= instant.year <= _LATEST_YEAR:
        return None
    return instant
