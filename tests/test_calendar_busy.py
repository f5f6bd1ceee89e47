"""Busy times read from therapists' own calendars, against a real CalDAV server
(Radicale) and a plain-HTTP iCalendar file server: each kind of event removes exactly
the times it covers from the time picker, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from sqlalchemy import select

from portal.calendars.models import TherapistCalendar
from portal.calendars.sync import sync_all
from portal.extensions import db
from tests.calendar_servers import (  # noqa: F401 - fixtures
    ALL_DAY,
    ALL_DAY_BUSY,
    MARCH,
    OCTOBER,
    app_config,
    assert_removes_exactly,
    connect_caldav,
    connect_ics,
    covered,
    ctx,
    ics_server,
    ics_server_session,
    la,
    picker,
    radicale,
    radicale_calendar,
    vcalendar,
    vevent,
)
from tests.factories import make_therapist

# Each event with the busy ranges it must cause (empty: it must block nothing).
WEEKLY = vevent(  # Tuesdays 10-11 PT from February; March 16 cancelled, March 23 moved
    "weekly@example.com", ";TZID=America/Los_Angeles:20270202T100000",
    ";TZID=America/Los_Angeles:20270202T110000", "RRULE:FREQ=WEEKLY;BYDAY=TU",
    "EXDATE;TZID=America/Los_Angeles:20270316T100000") + vevent(
    "weekly@example.com", ";TZID=America/Los_Angeles:20270324T140000",
    ";TZID=America/Los_Angeles:20270324T150000",
    "RECURRENCE-ID;TZID=America/Los_Angeles:20270323T100000")
WEEKLY_BUSY = [(la(9, 10), la(9, 11)), (la(24, 14), la(24, 15))]
IN_BERLIN = vevent("berlin@example.com", ";TZID=Europe/Berlin:20270311T180000",
                   ";TZID=Europe/Berlin:20270311T190000")  # 09:00-10:00 PST
BERLIN_BUSY = [(la(11, 9), la(11, 10))]
# Saturdays 17:00-17:30 UTC: 09:00 PST before the change, 10:00 PDT after it.
ACROSS_MARCH = vevent("utc-weekly@example.com", ":20270306T170000Z", ":20270306T173000Z",
                      "RRULE:FREQ=WEEKLY;COUNT=6")
ACROSS_MARCH_BUSY = [(la(13, 9), la(13, 9, 30)), (la(20, 10), la(20, 10, 30)),
                     (la(27, 10), la(27, 10, 30))]
TRANSPARENT = vevent("free@example.com", ";TZID=America/Los_Angeles:20270310T110000",
                     ";TZID=America/Los_Angeles:20270310T120000", "TRANSP:TRANSPARENT")
CANCELLED = vevent("cancelled@example.com", ";TZID=America/Los_Angeles:20270310T150000",
                   ";TZID=America/Los_Angeles:20270310T160000", "STATUS:CANCELLED")
OWN = vevent("consultation-C-ABCDEFG@consultations.portal",
             ";TZID=America/Los_Angeles:20270311T150000",
             ";TZID=America/Los_Angeles:20270311T153000")
EVERYTHING = [WEEKLY, ALL_DAY, IN_BERLIN, ACROSS_MARCH, TRANSPARENT, CANCELLED, OWN]
EVERYTHING_BUSY = WEEKLY_BUSY + ALL_DAY_BUSY + BERLIN_BUSY + ACROSS_MARCH_BUSY


def split_by_uid(events: list[str]) -> list[str]:
    """One calendar object per UID (how CalDAV stores a series and its exceptions)."""
    by_uid: dict[str, str] = {}
    for block in "".join(events).split("BEGIN:VEVENT")[1:]:
        uid = block.split("UID:", 1)[1].split("\r\n", 1)[0]
        by_uid[uid] = by_uid.get(uid, "") + "BEGIN:VEVENT" + block
    return list(by_uid.values())


@pytest.mark.parametrize("source", ["ics", "caldav"])
def test_each_kind_of_event_removes_exactly_its_times(ctx, source, ics_server, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        before = picker(tid)
        if source == "ics":
            connect_ics(tid, ics_server.serve("/everything.ics", vcalendar(*EVERYTHING)))
        else:
            calendar = radicale_calendar(radicale, f"everything-{tid}",
                                         split_by_uid(EVERYTHING))
            connect_caldav(tid, str(calendar.url))
        report = sync_all()
        assert report.read == 1 and not report.failed
        assert_removes_exactly(before, picker(tid), EVERYTHING_BUSY)


@pytest.mark.parametrize("event, busy", [
    (WEEKLY, WEEKLY_BUSY), (ALL_DAY, ALL_DAY_BUSY), (IN_BERLIN, BERLIN_BUSY),
    (ACROSS_MARCH, ACROSS_MARCH_BUSY)], ids=["weekly-moved-cancelled", "all-day", "berlin",
                                             "across-march-dst"])
def test_one_event_at_a_time(ctx, ics_server, event, busy):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        before = picker(tid)
        connect_ics(tid, ics_server.serve(f"/one-{tid}.ics", vcalendar(event)))
        sync_all()
        assert_removes_exactly(before, picker(tid), busy)


@pytest.mark.parametrize("event", [TRANSPARENT, CANCELLED, OWN],
                         ids=["transparent", "cancelled", "the-portals-own"])
def test_free_events_remove_nothing(ctx, ics_server, event):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        before = picker(tid)
        connect_ics(tid, ics_server.serve(f"/free-{tid}.ics", vcalendar(event)))
        assert not sync_all().failed
        assert picker(tid) == before


def test_an_event_across_the_november_change(ctx, ics_server):  # noqa: F811
    # Thursdays 13:00-13:30 Pacific: 20:00 UTC before November 7, 21:00 UTC after.
    event = vevent("thursdays@example.com", ";TZID=America/Los_Angeles:20271007T130000",
                   ";TZID=America/Los_Angeles:20271007T133000", "RRULE:FREQ=WEEKLY")
    with time_machine.travel(OCTOBER, tick=True):
        tid = make_therapist().id
        db.session.commit()
        before = picker(tid)
        connect_ics(tid, ics_server.serve("/november.ics", vcalendar(event)))
        sync_all()
        busy = [(la(d, 13, month=m), la(d, 13, 30, month=m))
                for m, d in ((11, 4), (11, 11), (11, 18))]
        assert datetime(2027, 11, 4, 20, tzinfo=UTC) in covered(before, busy)
        assert datetime(2027, 11, 11, 21, tzinfo=UTC) in covered(before, busy)
        assert_removes_exactly(before, picker(tid), busy)


def test_a_google_calendar_with_x_wr_timezone(ctx, ics_server):  # noqa: F811
    # Google writes UTC times and names the calendar's zone apart: the series stays at
    # 09:00 Pacific after the change (16:00 UTC), not 10:00.
    event = vevent("google@example.com", ":20270302T170000Z", ":20270302T180000Z",
                   "RRULE:FREQ=WEEKLY")
    feed = vcalendar(event, extra="X-WR-CALNAME:Work\r\nX-WR-TIMEZONE:America/Los_Angeles\r\n")
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        before = picker(tid)
        connect_ics(tid, ics_server.serve("/google.ics", feed))
        sync_all()
        busy = [(la(d, 9), la(d, 10)) for d in (9, 16, 23)]
        assert_removes_exactly(before, picker(tid), busy)


def test_a_deleted_event_frees_its_times_again(ctx, ics_server, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        before = picker(tid)
        calendar = radicale_calendar(radicale, f"deleted-{tid}", [IN_BERLIN, ALL_DAY])
        connect_caldav(tid, str(calendar.url))
        sync_all()
        assert_removes_exactly(before, picker(tid), BERLIN_BUSY + ALL_DAY_BUSY)
        calendar.event_by_uid("berlin@example.com").delete()
        sync_all()
        assert_removes_exactly(before, picker(tid), ALL_DAY_BUSY)


def test_an_unchanged_calendar_is_not_read_again(ctx, ics_server, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        connect_ics(tid, ics_server.serve("/same.ics", vcalendar(ALL_DAY)))
        sync_all()
        sync_all()
        assert ics_server.requests[-1][1].get("If-None-Match", "").startswith('"')
        row = db.session.scalar(select(TherapistCalendar))
        assert row.last_error is None and row.event_count == 1


@pytest.mark.parametrize("source", ["ics", "caldav"])
def test_an_unchanged_calendar_is_answered_without_its_events(  # noqa: F811
        ctx, source, ics_server, radicale):  # noqa: F811
    """ETag / If-None-Match for an iCalendar address, the sync-token for CalDAV: a second
    read of an unchanged calendar transfers and parses nothing; a change is read."""
    from portal.calendars.sync import sync_one

    with time_machine.travel(MARCH, tick=True):
        tid = make_therapist().id
        db.session.commit()
        if source == "ics":
            connect_ics(tid, ics_server.serve("/conditional.ics", vcalendar(ALL_DAY)))
        else:
            calendar = radicale_calendar(radicale, f"conditional-{tid}", [ALL_DAY])
            connect_caldav(tid, str(calendar.url))
        calendar_id = db.session.scalar(select(TherapistCalendar.id))
        assert sync_one(calendar_id).ranges is not None
        assert sync_one(calendar_id).ranges is None  # not modified
        if source == "ics":
            assert ics_server.requests[-1][1]["If-None-Match"]
            ics_server.serve("/conditional.ics", vcalendar(ALL_DAY, IN_BERLIN))
        else:
            calendar.save_event(vcalendar(IN_BERLIN))
        assert len(sync_one(calendar_id).ranges) == 2
