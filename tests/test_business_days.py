"""The working calendar and the one-business-day reply promise (portal/booking/business_days.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal import config
from portal.booking.business_days import (
    PACIFIC,
    business_hours_before,
    due_today_window,
    is_business_day,
    overdue_before,
    parse_holidays,
    reply_due,
    reply_due_day,
)

HOLIDAYS = parse_holidays(config.HOLIDAYS)


def pt(*args) -> datetime:
    return datetime(*args, tzinfo=PACIFIC)


@pytest.mark.parametrize(("received", "due"), [
    # Friday evening: Monday's close, stated in Pacific wall-clock time.
    (pt(2026, 12, 4, 19, 30), pt(2026, 12, 7, 17)),
    (pt(2026, 12, 5, 10), pt(2026, 12, 7, 17)),          # Saturday
    (pt(2026, 12, 6, 23, 59), pt(2026, 12, 7, 17)),      # Sunday, last minute
    (pt(2026, 12, 7, 0, 1), pt(2026, 12, 8, 17)),        # Monday: the day after, not the same day
    (pt(2026, 12, 7, 16, 59), pt(2026, 12, 8, 17)),
    # 23:30 PT on Wednesday is already Thursday in UTC: the Pacific date counts.
    (datetime(2026, 12, 3, 7, 30, tzinfo=UTC), pt(2026, 12, 3, 17)),
    # Holidays: Thanksgiving and the day after, Christmas, July 4th observed on Friday.
    (pt(2026, 11, 25, 10), pt(2026, 11, 30, 17)),
    (pt(2026, 11, 26, 12), pt(2026, 11, 30, 17)),
    (pt(2026, 12, 24, 9), pt(2026, 12, 28, 17)),
    (pt(2026, 7, 2, 18), pt(2026, 7, 6, 17)),
    # Friday before a Monday holiday (Independence Day 2027 observed Monday July 5).
    (pt(2027, 7, 2, 20), pt(2027, 7, 6, 17)),
    # The year's end: December 31, 2027 is New Year's Day 2028 observed.
    (pt(2027, 12, 30, 12), pt(2028, 1, 3, 17)),
])
def test_the_reply_is_due_at_the_close_of_the_next_business_day(received, due):
    assert reply_due(received, HOLIDAYS) == due
    assert reply_due(received.astimezone(UTC), HOLIDAYS) == due  # any zone, same instant


def test_dst_weeks_keep_the_close_at_five_pm_on_the_wall_clock():
    # Spring forward (Sunday, March 14, 2027): Friday's request, due Monday 17:00 PDT.
    due = reply_due(pt(2027, 3, 12, 18), HOLIDAYS)
    assert due == datetime(2027, 3, 16, 0, 0, tzinfo=UTC)  # 17:00 PDT is 00:00 UTC
    # During the skipped hour's night itself.
    assert reply_due(datetime(2027, 3, 14, 9, 59, tzinfo=UTC), HOLIDAYS) == due
    # Fall back (Sunday, November 7, 2027): Monday 17:00 PST is 01:00 UTC.
    due = reply_due(pt(2027, 11, 5, 18), HOLIDAYS)
    assert due == datetime(2027, 11, 9, 1, 0, tzinfo=UTC)
    # 01:30 happens twice that night; both are Sunday in Pacific time.
    first = datetime(2027, 11, 7, 8, 30, tzinfo=UTC)   # 01:30 PDT
    second = datetime(2027, 11, 7, 9, 30, tzinfo=UTC)  # 01:30 PST
    assert reply_due(first, HOLIDAYS) == reply_due(second, HOLIDAYS) == due


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="naive"):
        reply_due(datetime(2026, 12, 4, 19), HOLIDAYS)


def test_late_and_due_today_on_a_monday_morning():
    now = pt(2026, 12, 7, 10)  # Monday
    # Friday has closed: anything received before Friday was due by Friday 17:00.
    assert overdue_before(now, HOLIDAYS) == pt(2026, 12, 4, 0)
    # Friday, Saturday and Sunday's requests are due today at 17:00.
    assert due_today_window(now, HOLIDAYS) == (pt(2026, 12, 4, 0), pt(2026, 12, 7, 0))
    # At 17:00 they are late, and nothing more is due today.
    close = pt(2026, 12, 7, 17)
    assert overdue_before(close, HOLIDAYS) == pt(2026, 12, 7, 0)
    assert due_today_window(close, HOLIDAYS) is None


def test_nothing_is_due_on_a_holiday_or_a_weekend():
    assert due_today_window(pt(2026, 11, 27, 11), HOLIDAYS) is None  # day after Thanksgiving
    assert due_today_window(pt(2026, 12, 5, 11), HOLIDAYS) is None   # Saturday
    # Wednesday before Thanksgiving has closed; the next close is Monday's.
    assert overdue_before(pt(2026, 11, 28, 11), HOLIDAYS) == pt(2026, 11, 25, 0)


instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))


@given(received=instants, later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=8)))
def test_the_dashboard_cut_offs_agree_with_the_promise(received, later):
    """The cut-offs a database filters on say the same as reply_due() for every pair
    (within days of each other, where the answers differ)."""
    now = received + later
    due = reply_due(received, HOLIDAYS)
    late = received < overdue_before(now, HOLIDAYS)
    assert late == (due <= now)
    window = due_today_window(now, HOLIDAYS)
    today = now.astimezone(PACIFIC).date()
    due_today = window is not None and window[0] <= received < window[1]
    assert due_today == (not late and reply_due_day(received, HOLIDAYS) == today)


@pytest.mark.clock
def test_at_any_hour_the_promise_is_the_next_business_days_close(clock):
    now = datetime.now(UTC)
    due = reply_due(now, HOLIDAYS)
    local = due.astimezone(PACIFIC)
    assert (local.hour, local.minute) == (17, 0)
    assert is_business_day(local.date(), HOLIDAYS)
    received_day = now.astimezone(PACIFIC).date()
    assert local.date() > received_day
    between = [received_day + timedelta(days=n)
               for n in range(1, (local.date() - received_day).days)]
    assert not any(is_business_day(day, HOLIDAYS) for day in between)
    assert now < due <= now + timedelta(days=6)
    assert not now < overdue_before(now, HOLIDAYS)  # a request made now is not late


def test_the_default_holidays():
    assert len(HOLIDAYS) == 21
    assert all(day.weekday() < 5 for day in HOLIDAYS)  # observed days fall on weekdays
    assert {date(2026, 1, 19), date(2026, 6, 19), date(2026, 7, 3), date(2026, 11, 26),
            date(2026, 11, 27), date(2026, 12, 25), date(2027, 7, 5), date(2027, 12, 24),
            date(2027, 12, 31)} <= HOLIDAYS
    assert date(2026, 7, 4) not in HOLIDAYS  # a Saturday: observed on Friday


@pytest.mark.parametrize("values", [["2026-13-01"], ["Christmas"], [20261225],
                                    [datetime(2026, 12, 25)], "2026-12-25"])
def test_holidays_that_are_not_dates_are_refused(values):
    with pytest.raises(ValueError, match="HOLIDAYS"):
        parse_holidays(values)


def test_business_hours_skip_nights_weekends_and_holidays():
    monday_10 = pt(2026, 12, 7, 10)
    assert business_hours_before(monday_10, 1, HOLIDAYS) == pt(2026, 12, 7, 9)
    # 8 business hours before Monday 10:00 is Friday 10:00.
    assert business_hours_before(monday_10, 8, HOLIDAYS) == pt(2026, 12, 4, 10)
    assert business_hours_before(pt(2026, 12, 6, 15), 2, HOLIDAYS) == pt(2026, 12, 4, 15)
    # Monday after Thanksgiving, 10:00: Thursday and Friday were closed.
    assert business_hours_before(pt(2026, 11, 30, 10), 8, HOLIDAYS) == pt(2026, 11, 25, 10)
    assert business_hours_before(pt(2026, 11, 30, 10), 8, frozenset()) == pt(2026, 11, 27, 10)


def test_the_portal_refuses_to_start_with_holidays_that_are_not_dates():
    from portal import create_app
    from tests.conftest import BASE_TEST_CONFIG

    with pytest.raises(RuntimeError, match="HOLIDAYS"):
        create_app({**BASE_TEST_CONFIG, "HOLIDAYS": ["2026-12-25", "Dec 31"]})
