"""The practice's working calendar and its promise to reply within one business day.

Business days are Monday to Friday in Pacific time, except the practice's
holidays (``HOLIDAYS``, a list of dates). Business hours are 9:00 to 17:00
Pacific on those days.

The promise, precisely: a request received at any moment of a Pacific date D
(a business day or not) gets its reply by **17:00 Pacific on the first business
day after D**. A request on Friday evening, Saturday or Sunday is due at 17:00
on Monday (Tuesday when Monday is a holiday); one on Monday at 8:00 is due at
17:00 on Tuesday. The due moment is an instant, so DST changes move nothing: it
is always 17:00 on the wall clock in California.

This module knows nothing of Flask, requests or the database: callers pass the
holidays and the instant ("now", or when a request came in), always aware.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")
BUSINESS_OPEN, BUSINESS_CLOSE = time(9), time(17)
# Ten years of days: a bound for loops over a calendar, never reached with real holidays.
_MAX_DAYS = 3660


def parse_holidays(values: Iterable[object]) -> frozenset[date]:
    """The holidays from configuration: ISO dates ("2026-12-25") or ``date`` objects.
    Raises ValueError naming the first value that is neither."""
    days = set()
    for value in values:
        if isinstance(value, datetime):
            raise ValueError(f"HOLIDAYS holds dates, not times: {value!r}")
        if isinstance(value, date):
            days.add(value)
        elif isinstance(value, str):
            try:
                days.add(date.fromisoformat(value.strip()))
            except ValueError:
                raise ValueError(f"HOLIDAYS: {value!r} is not a date like 2026-12-25") from None
        else:
            raise ValueError(f"HOLIDAYS: {value!r} is not a date like 2026-12-25")
    return frozenset(days)


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a naive datetime: pass an aware one (UTC or Pacific)")


def pacific_date(moment: datetime) -> date:
    _require_aware(moment)
    return moment.astimezone(PACIFIC).date()


def is_business_day(day: date, holidays: Collection[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def next_business_day(day: date, holidays: Collection[date]) -> date:
    """The first business day strictly after ``day``."""
    for offset in range(1, _MAX_DAYS):
        candidate = day + timedelta(days=offset)
        if is_business_day(candidate, holidays):
            return candidate
    raise ValueError("no business day within ten years: check HOLIDAYS")


def previous_business_day(day: date, holidays: Collection[date]) -> date:
    """The last business day strictly before ``day``."""
    for offset in range(1, _MAX_DAYS):
        candidate = day - timedelta(days=offset)
        if is_business_day(candidate, holidays):
            return candidate
    raise ValueError("no business day within ten years: check HOLIDAYS")


def _at(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=PACIFIC)


def start_of(day: date) -> datetime:
    """Midnight at the start of ``day`` in Pacific time, in UTC."""
    return _at(day, time(0)).astimezone(UTC)


def close_of(day: date) -> datetime:
    """17:00 Pacific on ``day`` (close of business), in UTC."""
    return _at(day, BUSINESS_CLOSE).astimezone(UTC)


def reply_due_day(received_at: datetime, holidays: Collection[date]) -> date:
    """The business day by whose close a request received at ``received_at`` gets its reply."""
    return next_business_day(pacific_date(received_at), holidays)


def reply_due(received_at: datetime, holidays: Collection[date]) -> datetime:
    """The instant (UTC) the reply to a request received at ``received_at`` is due."""
    return close_of(reply_due_day(received_at, holidays))


def last_closed_business_day(now: datetime, holidays: Collection[date]) -> date:
    """The latest business day whose close of business is not after ``now``."""
    today = pacific_date(now)
    if is_business_day(today, holidays) and close_of(today) <= now:
        return today
    return previous_business_day(today, holidays)


def overdue_before(now: datetime, holidays: Collection[date]) -> datetime:
    """Requests received before this instant (UTC) are past the promise at ``now``.

    A request from Pacific date D is due at the close of the first business day
    after D, so it is late once that close has passed: exactly when D is before
    the last business day that has closed. One cut-off, so a database can filter
    on it."""
    return start_of(last_closed_business_day(now, holidays))


def due_today_window(now: datetime, holidays: Collection[date]) -> tuple[datetime, datetime] | None:
    """``(start, end)`` in UTC: requests received in ``[start, end)`` are due at
    today's close and not yet late. None when nothing is due today (a weekend, a
    holiday, or after today's close, when they are late instead)."""
    today = pacific_date(now)
    if not is_business_day(today, holidays) or close_of(today) <= now:
        return None
    return start_of(previous_business_day(today, holidays)), start_of(today)


def business_hours_before(now: datetime, hours: float, holidays: Collection[date]) -> datetime:
    """The instant (UTC) ``hours`` business hours (9–17 Pacific on business days)
    before ``now``."""
    _require_aware(now)
    remaining = timedelta(hours=hours)
    cursor = now.astimezone(PACIFIC)
    for _ in range(_MAX_DAYS):
        day = cursor.date()
        opens, closes = _at(day, BUSINESS_OPEN), _at(day, BUSINESS_CLOSE)
        if is_business_day(day, holidays) and cursor > opens:
            end = min(cursor, closes)
            available = end - opens
            if remaining <= available:
                return (end - remaining).astimezone(UTC)
            remaining -= available
        cursor = _at(day - timedelta(days=1), time(23, 59))
    return cursor.astimezone(UTC)
