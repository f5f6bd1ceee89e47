"""A number the database raises whenever what the booking pages show may have changed.

The time picker's free times follow from the bookings that hold a time, the therapists'
time off, their weekly hours and who is bookable; whether intake is open at all is a
setting. Triggers on those five tables raise ``availability_version.version`` in the
same transaction as the change, whoever makes it: a booking, the back office, a command,
another host, or SQL typed by hand. A page may then reuse what it worked out before for
as long as the number is the same (``reuse``; the free times:
``portal.booking.availability.FreeTimesCache``), reading one row instead of every booking.

The number is read before the data it labels. A copy filed under a number therefore
never holds less than that number stands for: at worst it holds more (a change that
committed between the two reads), and that change raised the number, so the next read
works the times out again.

On PostgreSQL the triggers are deferred constraint triggers: the row is raised at
commit, after the transaction has taken every other lock, so two writers can't wait on
each other through it. SQLite has one writer at a time and plain triggers.

``install`` is what the migration and ``db.create_all()`` (the tests) run; a change
to it needs a new migration. SQLite drops a table's triggers when a migration rebuilds
the table (``batch_alter_table``): such a migration must call ``install`` again, and
``tests/test_availability_version.py`` checks the migrated schema for every trigger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from flask import current_app
from sqlalchemy import BigInteger, Integer, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db

TABLE = "availability_version"
# A request holds a time while it has one and is not released (statuses.HOLDS_SLOT_SQL):
# a change to any of these may free or take one.
REQUEST_COLUMNS = ("status", "slot_start", "slot_end", "therapist_id")
# (trigger name, table, event, condition on the changed row). Every change of time off,
# weekly hours, a therapist or a setting counts; a request only when it has or had a time.
TRIGGERS = (
    ("availability_request_insert", "consultation_request", "INSERT",
     "NEW.slot_start IS NOT NULL"),
    ("availability_request_update", "consultation_request",
     "UPDATE OF " + ", ".join(REQUEST_COLUMNS),
     "(OLD.slot_start IS NOT NULL OR NEW.slot_start IS NOT NULL) AND ("
     + " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in REQUEST_COLUMNS) + ")"),
    ("availability_request_delete", "consultation_request", "DELETE",
     "OLD.slot_start IS NOT NULL"),
    *((f"availability_{table}_{event.lower()}", table, event, None)
      for table in ("time_off", "weekly_hours", "therapist", "setting")
      for event in ("INSERT", "UPDATE", "DELETE")),
)
# The therapists' own calendars (portal.calendars): every busy range read from one, a
# calendar connected or disconnected, and a calendar read again after it went stale
# (``fresh_since`` moves only then; see portal.calendars.sync). Installed by their own
# migration: the migrations before it install TRIGGERS alone.
CALENDAR_TRIGGERS = (
    *((f"availability_calendar_busy_{event.lower()}", "calendar_busy", event, None)
      for event in ("INSERT", "UPDATE", "DELETE")),
    ("availability_therapist_calendar_insert", "therapist_calendar", "INSERT", None),
    ("availability_therapist_calendar_update", "therapist_calendar", "UPDATE OF fresh_since",
     "OLD.fresh_since IS DISTINCT FROM NEW.fresh_since"),
    ("availability_therapist_calendar_delete", "therapist_calendar", "DELETE", None),
)
ALL_TRIGGERS = TRIGGERS + CALENDAR_TRIGGERS
_RAISE = (f"INSERT INTO {TABLE} (id, version) VALUES (1, 1)"  # noqa: S608 - constants
          f" ON CONFLICT (id) DO UPDATE SET version = {TABLE}.version + 1")
_PG_FUNCTION = "raise_availability_version"
_READ = text(f"SELECT version FROM {TABLE} WHERE id = 1")  # noqa: S608 - a constant


def install(connection: Connection, triggers=TRIGGERS) -> None:
    """Create (or re-create) the triggers on this connection's database; the table
    itself is the model ``AvailabilityVersion``. Safe to run again."""
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger"
            f" LANGUAGE plpgsql AS $$ BEGIN {_RAISE}; RETURN NULL; END $$")
    for trigger in triggers:
        _create(connection, *trigger)


def _create(connection: Connection, name: str, table: str, event: str,
            condition: str | None) -> None:
    run = connection.exec_driver_sql
    postgres = connection.dialect.name == "postgresql"
    run(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    when = f" WHEN ({condition})" if condition else ""
    if postgres:
        run(f"CREATE CONSTRAINT TRIGGER {name} AFTER {event} ON {table}"
            f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW{when}"
            f" EXECUTE FUNCTION {_PG_FUNCTION}()")
    else:
        # SQLite has no IS DISTINCT FROM; IS NOT is the same test there.
        when = when.replace("IS DISTINCT FROM", "IS NOT")
        run(f"CREATE TRIGGER {name} AFTER {event} ON {table}{when}"
            f" BEGIN {_RAISE}; END")


@contextmanager
def bulk_insert_requests(connection: Connection) -> Iterator[None]:
    """For inserting many requests in this connection's transaction (the demo seed):
    the insert trigger is off inside, instead of raising the number once per booked
    row (on PostgreSQL, a deferred upsert of one row per booked row at commit), and the
    number is raised once at the end. Other sessions wait for the table meanwhile; if
    anything inside fails, rolling the transaction back brings the trigger back."""
    name, table, event, condition = next(
        trigger for trigger in TRIGGERS if trigger[0] == "availability_request_insert")
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
    else:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    yield
    if postgres:
        connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
    else:
        _create(connection, name, table, event, condition)
    connection.exec_driver_sql(_RAISE)


def uninstall(connection: Connection, triggers=TRIGGERS, *, function: bool = True) -> None:
    postgres = connection.dialect.name == "postgresql"
    for name, table, _, _ in triggers:
        connection.exec_driver_sql(
            f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres and function:
        connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS {_PG_FUNCTION}()")


_SEEN = "availability_version"  # db.session.info: (transaction, the number it read)
_PG_IDLE = 0  # libpq's PQTRANS_IDLE: connected, no transaction open
T = TypeVar("T")


def current() -> int:
    """The number as this session first read it in its current transaction (0 before any
    change): one read per transaction, made before whatever it labels is read."""
    session = db.session()
    connection = session.connection()  # begins the transaction if none is open
    transaction = session.get_transaction()
    seen = session.info.get(_SEEN)
    if seen is not None and seen[0] is transaction:
        return seen[1]
    version = _read(connection)
    session.info[_SEEN] = (transaction, version)
    return version


def _read(connection: Connection) -> int:
    """The number. On PostgreSQL, while this transaction has sent nothing yet, it is read
    on its own (autocommit) and the transaction starts with the next statement, if any:
    a page whose times are reused then makes one round trip instead of three (BEGIN, the
    read, and the ROLLBACK that returning the connection would send). Under READ
    COMMITTED every statement takes a fresh snapshot anyway, so what is read next is no
    older than the number, as above."""
    raw = connection.connection.dbapi_connection
    if connection.dialect.name != "postgresql" or raw.autocommit \
            or raw.info.transaction_status != _PG_IDLE:
        return connection.execute(_READ).scalar() or 0
    raw.autocommit = True
    try:
        return connection.execute(_READ).scalar() or 0
    finally:
        if not raw.closed and raw.info.transaction_status == _PG_IDLE:
            raw.autocommit = False
        elif not raw.closed:  # never back in the pool committing each statement
            connection.invalidate()


def reuse(name: str, work_out: Callable[[], T]) -> T:
    """``work_out()``, kept by this app under ``name`` and reused while the number
    stays the same. Only for what a page shows: a caller that changes the data in its
    own transaction must read afresh (its change raises the number when it commits).
    The value is shared by every thread: it must not be changed (tuples, not lists)."""
    kept = current_app.extensions.setdefault("availability_reuse", {})
    version = current()
    entry = kept.get(name)
    if entry is not None and entry[0] == version:
        return entry[1]
    value = work_out()
    kept[name] = (version, value)
    return value


class AvailabilityVersion(db.Model):
    """One row whose number the database raises on every change that may change the
    free times (its triggers: below)."""

    __tablename__ = "availability_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


@event.listens_for(db.metadata, "after_create")
def _install_triggers(target, connection, **kw) -> None:
    """``db.create_all()`` (the tests' schema) gets the triggers the migration makes."""
    install(connection, ALL_TRIGGERS)
