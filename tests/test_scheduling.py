"""Scheduling: free consultation times in Pacific time, across daylight saving."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.booking.scheduling import (
    PACIFIC,
    Busy,
    HoursRange,
    format_day,
    format_slot_long,
    format_time,
    free_slots,
    group_by_day,
    merge_free_slots,
    parse_slot_value,
    pick_therapist,
    rank_therapists,
    slot_value,
)

MONDAY, TUESDAY, SUNDAY = 0, 1, 6
HALF_HOUR = timedelta(minutes=30)


def pt(*args):
    """A Pacific wall-clock time (first occurrence if ambiguous)."""
    return datetime(*args, tzinfo=PACIFIC)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def hours(weekday, start, end):
    return HoursRange(weekday, time.fromisoformat(start), time.fromisoformat(end))


def busy(start, end):
    return Busy(start, end)


def wall_clock(slots):
    return [format_time(slot) for slot in slots]


class TestDaylightSaving:
    def test_spring_forward_week_moves_the_utc_instants(self):
        slots = free_slots(
            [hours(SUNDAY, "09:00", "10:00")], [], now=pt(2026, 2, 26, 12), horizon=timedelta(14)
        )
        # March 1 is still PST (UTC-8); March 8 is PDT (UTC-7).
        assert slots == [
            utc(2026, 3, 1, 17),
            utc(2026, 3, 1, 17, 30),
            utc(2026, 3, 8, 16),
            utc(2026, 3, 8, 16, 30),
        ]

    def test_fall_back_week_moves_the_utc_instants(self):
        slots = free_slots(
            [hours(SUNDAY, "09:00", "12:00")], [], now=pt(2026, 10, 22, 12), horizon=timedelta(14)
        )
        october_25 = [s for s in slots if s.date() == date(2026, 10, 25)]
        november_1 = [s for s in slots if s.date() == date(2026, 11, 1)]
        assert october_25[0] == utc(2026, 10, 25, 16)  # 9:00 PDT
        assert november_1[0] == utc(2026, 11, 1, 17)  # 9:00 PST
        assert wall_clock(october_25) == wall_clock(november_1)
        assert len(november_1) == 6
        assert november_1[-1] == utc(2026, 11, 1, 19, 30)  # 11:30 PST

    def test_spring_forward_gap_is_skipped(self):
        slots = free_slots(
            [hours(SUNDAY, "01:00", "04:00")], [], now=pt(2026, 3, 5, 12), horizon=timedelta(4)
        )
        assert wall_clock(slots) == ["1:00 AM", "1:30 AM", "3:00 AM", "3:30 AM"]
        assert slots == [
            utc(2026, 3, 8, 9),
            utc(2026, 3, 8, 9, 30),
            utc(2026, 3, 8, 10),
            utc(2026, 3, 8, 10, 30),
        ]

    def test_hours_entirely_inside_the_gap_give_no_slots(self):
        ranges = [hours(SUNDAY, "02:00", "03:00"), hours(SUNDAY, "01:30", "02:30")]
        slots = free_slots(ranges, [], now=pt(2026, 3, 5, 12), horizon=timedelta(4))
        assert slots == [utc(2026, 3, 8, 9, 30)]  # 1:30 AM PST; nothing at 3:00 PDT

    def test_fall_back_ambiguous_hour_yields_each_wall_clock_time_once(self):
        slots = free_slots(
            [hours(SUNDAY, "00:00", "03:00")], [], now=pt(2026, 10, 29, 12), horizon=timedelta(4)
        )
        assert wall_clock(slots) == [
            "12:00 AM",
            "12:30 AM",
            "1:00 AM",
            "1:30 AM",
            "2:00 AM",
            "2:30 AM",
        ]
        # 1:00 and 1:30 are the first (daylight) occurrence; 2:00 is standard time.
        assert slots[2:5] == [utc(2026, 11, 1, 8), utc(2026, 11, 1, 8, 30), utc(2026, 11, 1, 10)]


class TestWindow:
    tuesday_morning = (hours(TUESDAY, "09:00", "12:00"),)

    def test_minimum_notice(self):
        slots = free_slots(self.tuesday_morning, [], now=pt(2026, 11, 30, 9, 15))
        assert slots[0] == pt(2026, 12, 1, 9, 30)
        exactly_a_day = free_slots(self.tuesday_morning, [], now=pt(2026, 11, 30, 9))
        assert exactly_a_day[0] == pt(2026, 12, 1, 9)

    def test_horizon(self):
        slots = free_slots(
            self.tuesday_morning, [], now=pt(2026, 12, 1, 8), min_notice=timedelta(0)
        )
        days = [day for day, _ in group_by_day(slots)]
        # December 22 at 9:00 is after now + 21 days (8:00).
        assert days == [date(2026, 12, 1), date(2026, 12, 8), date(2026, 12, 15)]

    def test_past_times_today_are_not_offered(self):
        slots = free_slots(
            self.tuesday_morning, [], now=pt(2026, 12, 1, 10), min_notice=timedelta(0)
        )
        assert slots[0] == pt(2026, 12, 1, 10)

    def test_today_is_the_pacific_date_even_when_utc_is_tomorrow(self):
        monday_evening = [hours(MONDAY, "21:00", "22:00")]
        now = utc(2026, 12, 1, 4)  # 8:00 PM Monday in Pacific time
        slots = free_slots(monday_evening, [], now=now, min_notice=timedelta(0))
        assert slots[:2] == [pt(2026, 11, 30, 21), pt(2026, 11, 30, 21, 30)]

    def test_slots_are_utc(self):
        slots = free_slots(self.tuesday_morning, [], now=pt(2026, 11, 25))
        assert slots and all(slot.tzinfo is UTC for slot in slots)

    def test_naive_now_is_refused(self):
        with pytest.raises(ValueError):
            free_slots(self.tuesday_morning, [], now=datetime(2026, 11, 25))


class TestBusy:
    tuesday_morning = (hours(TUESDAY, "09:00", "12:00"),)
    now = pt(2026, 12, 3, 12)  # the next Tuesday is December 8

    def december_8(self, busy_intervals):
        slots = free_slots(self.tuesday_morning, busy_intervals, now=self.now)
        return wall_clock(s for s in slots if s.astimezone(PACIFIC).date() == date(2026, 12, 8))

    def test_time_off_removes_overlapping_slots(self):
        time_off = busy(pt(2026, 12, 8, 10, 15), pt(2026, 12, 8, 11))
        assert self.december_8([time_off]) == ["9:00 AM", "9:30 AM", "11:00 AM", "11:30 AM"]

    def test_busy_is_half_open(self):
        before = busy(pt(2026, 12, 8, 8), pt(2026, 12, 8, 9))
        after = busy(pt(2026, 12, 8, 12), pt(2026, 12, 8, 13))
        assert len(self.december_8([before, after])) == 6

    def test_a_booked_slot_disappears(self):
        booked = pt(2026, 12, 8, 10).astimezone(UTC)
        assert "10:00 AM" not in self.december_8([busy(booked, booked + HALF_HOUR)])
        assert len(self.december_8([busy(booked, booked + HALF_HOUR)])) == 5

    def test_a_week_off_removes_whole_days(self):
        vacation = busy(pt(2026, 12, 5), pt(2026, 12, 12))
        slots = free_slots(self.tuesday_morning, [vacation], now=self.now)
        assert [day for day, _ in group_by_day(slots)] == [date(2026, 12, 15), date(2026, 12, 22)]

    def test_busy_must_be_aware_and_in_order(self):
        with pytest.raises(ValueError):
            Busy(datetime(2026, 12, 8, 10), datetime(2026, 12, 8, 11))
        with pytest.raises(ValueError):
            Busy(pt(2026, 12, 8, 11), pt(2026, 12, 8, 10))


def test_overlapping_ranges_give_no_duplicates():
    ranges = [
        hours(TUESDAY, "09:00", "11:00"),
        hours(TUESDAY, "10:00", "12:00"),
        hours(TUESDAY, "09:00", "11:00"),
    ]
    slots = free_slots(ranges, [], now=pt(2026, 11, 30, 8), horizon=timedelta(2))
    assert wall_clock(slots) == [
        "9:00 AM",
        "9:30 AM",
        "10:00 AM",
        "10:30 AM",
        "11:00 AM",
        "11:30 AM",
    ]


def test_a_range_too_short_for_a_slot_gives_nothing():
    slots = free_slots([hours(TUESDAY, "09:00", "09:20")], [], now=pt(2026, 11, 25))
    assert slots == []


def test_hours_range_is_checked():
    with pytest.raises(ValueError):
        hours(7, "09:00", "10:00")
    with pytest.raises(ValueError):
        hours(TUESDAY, "10:00", "09:00")


class TestTherapists:
    def test_merge_lists_each_time_once_with_who_is_free(self):
        nine, half_past, ten = utc(2026, 12, 1, 17), utc(2026, 12, 1, 17, 30), utc(2026, 12, 1, 18)
        merged = merge_free_slots({3: [half_past, ten], 1: [nine, half_past], 2: []})
        assert merged == {nine: [1], half_past: [1, 3], ten: [3]}
        assert list(merged) == [nine, half_past, ten]

    def test_merge_treats_the_same_instant_in_any_zone_as_one_time(self):
        instant = utc(2026, 12, 1, 18)
        merged = merge_free_slots({1: [instant], 2: [instant.astimezone(PACIFIC)]})
        assert merged == {instant: [1, 2]}

    def test_pick_fewest_upcoming(self):
        assert pick_therapist([1, 2, 3], {1: 4, 2: 1, 3: 2}) == 2

    def test_pick_tie_goes_to_lowest_id(self):
        assert pick_therapist([5, 3, 9], {5: 1, 3: 1, 9: 1}) == 3

    def test_pick_counts_missing_as_zero(self):
        assert pick_therapist([4, 7], {4: 2}) == 7

    def test_rank_orders_every_candidate_best_first(self):
        assert rank_therapists([9, 3, 5], {9: 0, 3: 2, 5: 0}) == [5, 9, 3]
        assert rank_therapists([], {}) == []

    def test_pick_from_nobody(self):
        with pytest.raises(ValueError):
            pick_therapist([], {1: 0})


def test_group_by_day_uses_the_pacific_date():
    late_monday = pt(2026, 11, 30, 23, 30).astimezone(UTC)  # Tuesday in UTC
    tuesday = pt(2026, 12, 1, 9).astimezone(UTC)
    thursday = pt(2026, 12, 3, 9).astimezone(UTC)
    assert group_by_day([thursday, late_monday, tuesday]) == [
        (date(2026, 11, 30), [late_monday]),
        (date(2026, 12, 1), [tuesday]),
        (date(2026, 12, 3), [thursday]),
    ]
    assert group_by_day([]) == []


class TestFormatting:
    @pytest.mark.parametrize(
        ("local", "text"),
        [
            (pt(2026, 12, 1, 0), "12:00 AM"),
            (pt(2026, 12, 1, 9, 5), "9:05 AM"),
            (pt(2026, 12, 1, 12, 30), "12:30 PM"),
            (pt(2026, 12, 1, 23, 30), "11:30 PM"),
        ],
    )
    def test_time(self, local, text):
        assert format_time(local.astimezone(UTC)) == text

    def test_day(self):
        assert format_day(date(2026, 12, 1)) == "Tuesday, December 1"
        assert format_day(date(2026, 3, 8)) == "Sunday, March 8"

    def test_slot_long(self):
        assert format_slot_long(utc(2026, 12, 1, 18)) == (
            "Tuesday, December 1, 2026, 10:00\u201310:30 AM PT"
        )

    def test_slot_long_across_noon_names_both_halves(self):
        assert format_slot_long(pt(2026, 12, 1, 11, 30)) == (
            "Tuesday, December 1, 2026, 11:30 AM\u201312:00 PM PT"
        )

    def test_naive_times_are_refused(self):
        with pytest.raises(ValueError):
            format_slot_long(datetime(2026, 12, 1, 10))


class TestSlotValues:
    def test_slot_value_is_canonical_utc(self):
        assert slot_value(pt(2026, 12, 1, 10)) == "2026-12-01T18:00:00+00:00"

    @pytest.mark.parametrize(
        "text",
        [
            "2026-12-01T18:00:00+00:00",
            "2026-12-01T10:00:00-08:00",
            "2026-12-01T18:00:00Z",
            " 2026-12-01T18:00:00+00:00 ",
            "2026-12-01T18:00+00:00",
            "2026-12-01T23:30:00+05:30",
        ],
    )
    def test_parse_normalises_to_utc(self, text):
        parsed = parse_slot_value(text)
        assert parsed == utc(2026, 12, 1, 18)
        assert parsed.utcoffset() == timedelta(0)

    @pytest.mark.parametrize(
        "text",
        [
            "2026-12-01T18:00:00",
            "2026-12-01",
            "none",
            "",
            "garbage",
            "2026-13-01T18:00:00+00:00",
            "2026-12-01T18:00:00+25:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "1900-01-01T00:00:00+00:00",
            None,
            1764612000,
        ],
    )
    def test_parse_rejects_everything_else(self, text):
        assert parse_slot_value(text) is None

    def test_round_trip(self):
        slot = utc(2026, 12, 1, 18)
        assert parse_slot_value(slot_value(slot)) == slot

    @settings(database=None, deadline=None)
    @given(st.one_of(st.text(), st.datetimes(timezones=st.timezones()).map(str)))
    def test_parse_never_raises(self, text):
        parsed = parse_slot_value(text)
        assert parsed is None or parsed.tzinfo is UTC


# Hours on a 15-minute grid so ranges do not always line up with the half hour.
@st.composite
def hours_ranges(draw):
    start = draw(st.integers(0, 24 * 4 - 3)) * 15
    end = draw(st.integers(start // 15 + 1, 24 * 4 - 1)) * 15
    weekday = draw(st.integers(0, 6))
    return HoursRange(weekday, time(start // 60, start % 60), time(end // 60, end % 60))


@st.composite
def busy_intervals(draw, now):
    start = now + timedelta(minutes=draw(st.integers(-600, 30 * 24 * 60)))
    return Busy(start, start + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60))))


NOWS = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
    # Around both daylight-saving changes, so the horizon crosses them often.
    st.sampled_from([pt(2026, 3, 1), pt(2026, 3, 7, 22), pt(2026, 10, 25), pt(2026, 10, 31, 23)]),
)


def _minutes(t):
    return t.hour * 60 + t.minute


def _inside_some_range(local, ranges):
    start = _minutes(local)
    return any(
        r.weekday == local.weekday()
        and _minutes(r.start) <= start
        and start + 30 <= _minutes(r.end)
        and (start - _minutes(r.start)) % 30 == 0
        for r in ranges
    )


@settings(database=None, deadline=None, max_examples=200)
@given(st.data())
def test_free_slots_property(data):
    now = data.draw(NOWS)
    ranges = data.draw(st.lists(hours_ranges(), max_size=6))
    busy_list = data.draw(st.lists(busy_intervals(now), max_size=6))
    slots = free_slots(ranges, busy_list, now=now)
    assert slots == sorted(set(slots))
    for slot in slots:
        local = slot.astimezone(PACIFIC)
        assert slot.tzinfo is UTC and local.second == 0
        assert local.fold == 0  # an ambiguous wall-clock time is offered once
        assert _inside_some_range(local, ranges)
        assert now + timedelta(hours=24) <= slot < now + timedelta(days=21)
        assert not any(slot < b.end and b.start < slot + HALF_HOUR for b in busy_list)


def _free_slots_by_scanning(hours_list, busy_list, *, now, min_notice=timedelta(hours=24),
                            horizon=timedelta(days=21), length=HALF_HOUR):
    """The computation as it was before the busy index: every candidate tested against
    every interval, day starts worked out afresh. The reference for the faster one."""
    earliest, latest = now + min_notice, now + horizon
    day, last_day = now.astimezone(PACIFIC).date(), latest.astimezone(PACIFIC).date()
    starts = set()
    while day <= last_day:
        for weekly in hours_list:
            if weekly.weekday != day.weekday():
                continue
            wall, end = datetime.combine(day, weekly.start), datetime.combine(day, weekly.end)
            while wall + length <= end:
                local = wall.replace(tzinfo=PACIFIC)
                instant = local.astimezone(UTC)
                if instant.astimezone(PACIFIC).replace(tzinfo=None) == wall:
                    starts.add(instant)
                wall += length
        day += timedelta(days=1)
    return sorted(s for s in starts if earliest <= s < latest
                  and not any(s < b.end and b.start < s + length for b in busy_list))


@settings(database=None, deadline=None, max_examples=300)
@given(st.data())
def test_free_slots_match_the_scanning_computation(data):
    """Time off as intervals and bookings as start times (each one slot long) give
    exactly what testing every candidate against every interval gave."""
    now = data.draw(NOWS)
    ranges = data.draw(st.lists(hours_ranges(), max_size=6))
    time_off = data.draw(st.lists(busy_intervals(now), max_size=4))
    booked = [now + timedelta(minutes=15 * m) for m in data.draw(
        st.lists(st.integers(-8, 4 * 24 * 22), max_size=40))]
    expected = _free_slots_by_scanning(
        ranges, [*time_off, *(Busy(b, b + HALF_HOUR) for b in booked)], now=now)
    assert free_slots(ranges, time_off, booked=booked, now=now) == expected
    assert free_slots(ranges, [*time_off, *(Busy(b, b + HALF_HOUR) for b in booked)],
                      now=now) == expected
