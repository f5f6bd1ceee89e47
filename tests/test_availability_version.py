"""The availability version (portal.booking.availability_version): the database raises it on
every change that can move a free time, whoever makes the change, and the public pages
reuse what they worked out (free times, the bookable therapists, the intake pause) only
while it stays the same. So a visit reads one row, and still never shows a time the
database has given away or hides one it has freed."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from flask_migrate import upgrade
from sqlalchemy import DateTime, bindparam, create_engine, event, text

from portal import create_app
from portal.booking import availability_version
from portal.booking.availability import FreeTimesCache, available_slots, free_times_cache
from portal.booking.scheduling import parse_slot_value
from portal.booking.therapists import Therapist
from portal.calendars.models import TherapistCalendar
from portal.extensions import db
from portal.models import to_db
from portal.public.forms import NO_SLOT
from tests.conftest import BASE_TEST_CONFIG
from tests.factories import future_slot, make_request, make_therapist
from tests.test_database import empty_database_url  # noqa: F401 - a fixture
from tests.test_public_flow import details_page, pass_eligibility

SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')
WATCHED = re.compile(r"\b(consultation_request|time_off|weekly_hours|therapist|setting)\b")


@contextmanager
def another_connection(app):
    """SQL as another process would send it: its own engine, not the portal's session."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        yield engine
    finally:
        engine.dispose()


def run(engine, sql: str, **params) -> None:
    times = [bindparam(name, type_=DateTime) for name, value in params.items()
             if isinstance(value, datetime)]
    with engine.begin() as conn:  # committed, as another writer's change would be
        conn.execute(text(sql).bindparams(*times), params)


def version(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version FROM availability_version")).scalar() or 0


@contextmanager
def statements(app):
    """The SQL the app sends meanwhile."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def shown_times(client) -> list[str]:
    """The times offered, without "no time suits me"."""
    return [value for value in SLOT_VALUE.findall(details_page(client)) if value != NO_SLOT]


# -- the triggers --------------------------------------------------------------

def test_every_change_that_can_move_a_free_time_raises_the_version(app, therapist_id):
    start = future_slot(days=3)
    with app.app_context():
        booking_id = make_request(db.session.get(Therapist, therapist_id), start).id
        other_id = make_therapist("Ana Ortiz").id
        db.session.commit()
    later = start + timedelta(hours=1)
    changes = [
        ("a booking moves", "UPDATE consultation_request SET slot_start = :at, slot_end = :to"
         " WHERE id = :id", {"at": to_db(later), "to": to_db(later + timedelta(minutes=30)),
                             "id": booking_id}),
        ("a booking changes therapist",
         "UPDATE consultation_request SET therapist_id = :other WHERE id = :id",
         {"other": other_id, "id": booking_id}),
        ("a booking is cancelled",
         "UPDATE consultation_request SET status = 'cancelled' WHERE id = :id", {"id": booking_id}),
        ("a booking is reopened",
         "UPDATE consultation_request SET status = 'new' WHERE id = :id", {"id": booking_id}),
        ("a booking is deleted", "DELETE FROM consultation_request WHERE id = :id",
         {"id": booking_id}),
        ("time off is added", "INSERT INTO time_off (therapist_id, starts_at, ends_at, note)"
         " VALUES (:tid, :at, :to, '')", {"tid": therapist_id, "at": to_db(start),
                                           "to": to_db(later)}),
        ("time off is changed", "UPDATE time_off SET ends_at = :to",
         {"to": to_db(later + timedelta(hours=1))}),
        ("time off is removed", "DELETE FROM time_off", {}),
        ("hours are changed",
         "UPDATE weekly_hours SET start = '10:00:00' WHERE therapist_id = :tid",
         {"tid": therapist_id}),
        ("hours are added", "INSERT INTO weekly_hours (therapist_id, weekday, start, \"end\")"
         " VALUES (:tid, 0, '18:00:00', '19:00:00')", {"tid": therapist_id}),
        ("hours are removed", "DELETE FROM weekly_hours WHERE therapist_id = :tid",
         {"tid": other_id}),
        ("a therapist stops taking new clients",
         "UPDATE therapist SET accepting_new = :no WHERE id = :tid",
         {"no": False, "tid": therapist_id}),
        ("a therapist is removed", "DELETE FROM therapist WHERE id = :tid", {"tid": other_id}),
        ("intake is paused", "INSERT INTO setting (key, value) VALUES ('intake_paused', '1')", {}),
        ("intake is opened", "UPDATE setting SET value = '' WHERE key = 'intake_paused'", {}),
        ("a setting is removed", "DELETE FROM setting", {}),
        ("a calendar is connected", "INSERT INTO therapist_calendar (therapist_id, kind, url,"
         " connected_at) VALUES (:tid, 'ics', 'x', :at)", {"tid": therapist_id,
                                                           "at": to_db(start)}),
        ("a stale calendar is read again", "UPDATE therapist_calendar SET fresh_since = :at",
         {"at": to_db(start)}),
        ("a busy range is read", "INSERT INTO calendar_busy (therapist_id, starts_at, ends_at)"
         " VALUES (:tid, :at, :to)", {"tid": therapist_id, "at": to_db(start),
                                       "to": to_db(later)}),
        ("a busy range changes", "UPDATE calendar_busy SET ends_at = :to",
         {"to": to_db(later + timedelta(hours=1))}),
        ("a busy range goes", "DELETE FROM calendar_busy", {}),
        ("a calendar is disconnected", "DELETE FROM therapist_calendar", {}),
    ]
    with another_connection(app) as engine:
        before = version(engine)
        assert before > 0  # the therapists and the booking above raised it already
        for what, sql, params in changes:
            run(engine, sql, **params)
            after = version(engine)
            assert after > before, f"{what}: the version stayed at {before}"
            before = after


def test_changes_that_cannot_move_a_time_leave_the_version_alone(app, therapist_id):
    with app.app_context():
        booking_id = make_request(db.session.get(Therapist, therapist_id), future_slot()).id
        unbooked_id = make_request(None).id  # on the waiting list: no time
        db.session.add(TherapistCalendar(therapist_id=therapist_id, kind="ics",
                                         url="https://example.com/c.ics"))
        db.session.commit()
    with another_connection(app) as engine:
        before = version(engine)
        for sql, params in [
            ("UPDATE consultation_request SET message = 'call after 5' WHERE id = :id",
             {"id": booking_id}),
            ("UPDATE consultation_request SET status = 'new' WHERE id = :id",  # no change
             {"id": booking_id}),
            ("UPDATE consultation_request SET status = 'contacted' WHERE id = :id",
             {"id": unbooked_id}),
            ("DELETE FROM consultation_request WHERE id = :id", {"id": unbooked_id}),
            # A routine read of a calendar that is not stale: the ranges it gave decide.
            ("UPDATE therapist_calendar SET read_ok_at = :at, last_error = NULL",
             {"at": to_db(datetime.now(UTC))}),
            ("UPDATE therapist_calendar SET last_error = 'timeout'", {}),
        ]:
            run(engine, sql, **params)
            assert version(engine) == before, sql


def test_the_migrated_schema_has_every_trigger(empty_database_url):  # noqa: F811
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()  # every migration, as on a new server
        postgres = db.engine.dialect.name == "postgresql"
        listed = text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal" if postgres
                      else "SELECT name FROM sqlite_master WHERE type = 'trigger'")
        names = set(db.session.scalars(listed))
        db.session.rollback()
        make_therapist()
        db.session.commit()
        raised = availability_version.current()
        db.session.remove()
        db.engine.dispose()
    assert {name for name, *_ in availability_version.ALL_TRIGGERS} <= names
    assert raised > 0


# -- the pages that reuse ------------------------------------------------------

def test_a_second_visit_reads_the_version_and_nothing_else(app, client, therapist_id):
    pass_eligibility(client)
    first = shown_times(client)
    with statements(app) as sent:
        assert shown_times(client) == first
    assert [s for s in sent if "availability_version" in s], sent
    assert [s for s in sent if WATCHED.search(s)] == []


def test_the_version_read_opens_no_transaction_and_what_follows_is_one(app):
    """On PostgreSQL the number is read on its own (no BEGIN, no ROLLBACK for a page that
    reads nothing else); what the same session does next is an ordinary transaction
    again, which a rollback undoes."""
    from portal.booking.intake_tables import Setting

    with app.test_request_context():
        availability_version.current()
        raw = db.session.connection().connection.dbapi_connection
        if db.engine.dialect.name == "postgresql":
            assert raw.info.transaction_status == 0  # idle: nothing to roll back
            assert raw.autocommit is False
        db.session.add(Setting(key="read-then-write", value="kept?"))
        db.session.flush()
        db.session.rollback()
        assert db.session.get(Setting, "read-then-write") is None
    with another_connection(app) as engine, engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM setting WHERE key = 'read-then-write'")
                            ).scalar() == 0


def test_changes_made_outside_the_portal_show_on_the_next_visit(app, client, therapist_id):
    pass_eligibility(client)
    shown = shown_times(client)
    first, second = parse_slot_value(shown[0]), parse_slot_value(shown[1])
    with app.app_context():
        booking_id = make_request(db.session.get(Therapist, therapist_id), first).id
        db.session.commit()
    assert shown_times(client) == shown[1:]
    with another_connection(app) as engine:
        run(engine, "UPDATE consultation_request SET status = 'cancelled' WHERE id = :id",
            id=booking_id)
        assert shown_times(client) == shown  # freed
        run(engine, "INSERT INTO time_off (therapist_id, starts_at, ends_at, note)"
            " VALUES (:tid, :at, :to, '')", tid=therapist_id, at=to_db(first),
            to=to_db(second + timedelta(minutes=30)))
        assert shown_times(client) == shown[2:]
        run(engine, "DELETE FROM time_off")
        assert shown_times(client) == shown
        run(engine, "UPDATE therapist SET accepting_new = :no", no=False)
        assert shown_times(client) == []
        assert "Maya Alvarez" not in details_page(client)
        run(engine, "UPDATE therapist SET accepting_new = :yes", yes=True)
        assert shown_times(client) == shown
        run(engine, "INSERT INTO setting (key, value) VALUES ('intake_paused', '1')")
        paused = client.get("/consultation/time")
        assert "not taking new consultation requests" in paused.text
        assert 'name="slot"' not in paused.text
        run(engine, "DELETE FROM setting")
        assert shown_times(client) == shown


# -- the free times kept between visits ----------------------------------------

# 08:55 in Los Angeles: ten minutes later the first time (24 hours' notice) has gone
# and a new one (21 days ahead) has come into the window.
T0 = datetime(2027, 1, 12, 16, 55, tzinfo=UTC)


@pytest.mark.parametrize("minutes", [0, 1, 5, 10, 14, 15, 16, 40])
def test_reused_times_are_cut_to_each_visits_window(app, therapist_id, minutes):
    now = T0 + timedelta(minutes=minutes)
    with app.test_request_context():
        at_t0 = available_slots("any", T0, reuse=True)
        with statements(app) as sent:
            reused = available_slots("any", now, reuse=True)
        worked_out = available_slots("any", now)
    assert list(reused) == list(worked_out)
    assert reused == worked_out
    read_bookings = any("consultation_request" in s for s in sent)
    assert read_bookings == (minutes >= FreeTimesCache.REUSE_FOR.total_seconds() / 60)
    if minutes >= 10:
        assert min(reused) > min(at_t0) and max(reused) > max(at_t0)


def test_each_therapist_choice_keeps_its_own_times(app, therapist_id):
    with app.app_context():
        other = make_therapist("Ana Ortiz", hours=[(day, "13:00", "15:00") for day in range(7)])
        db.session.commit()
        other_id = other.id
    with app.test_request_context():
        everyone = available_slots("any", T0, reuse=True)
        hers = available_slots(str(other_id), T0, reuse=True)
        assert hers == available_slots(str(other_id), T0)
        assert everyone == available_slots("any", T0)
        assert len(hers) < len(everyone)
        assert len(free_times_cache()) == 2


def test_only_the_latest_few_are_kept(app):
    with app.app_context():
        ids = [make_therapist(f"Therapist {n}").id for n in range(FreeTimesCache.SIZE + 2)]
        db.session.commit()
    with app.test_request_context():
        for therapist in ids:
            assert available_slots(str(therapist), T0, reuse=True) == \
                available_slots(str(therapist), T0)
        assert len(free_times_cache()) == FreeTimesCache.SIZE
        with statements(app) as sent:  # the latest is kept, the first was let go
            available_slots(str(ids[-1]), T0, reuse=True)
            assert not any("consultation_request" in s for s in sent)
            available_slots(str(ids[0]), T0, reuse=True)
            assert any("consultation_request" in s for s in sent)
