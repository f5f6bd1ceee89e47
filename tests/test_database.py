"""The schema: migrations equal the models, and the database itself refuses double bookings."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from portal import create_app
from portal.booking.therapists import Therapist
from portal.database import begin_write
from portal.extensions import db
from portal.models import ConsultationRequest
from tests.conftest import BACKENDS, BASE_TEST_CONFIG, new_postgres_database
from tests.factories import future_slot, make_request, make_therapist


@pytest.fixture(params=BACKENDS)
def empty_database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        return
    with new_postgres_database(os.environ["TEST_DATABASE_URL"]) as url:
        yield url


def test_migrations_build_exactly_the_models(empty_database_url):
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "render_as_batch": True}
            )
            differences = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert differences == []


def test_a_therapist_time_can_be_booked_only_once(app):
    start = future_slot()
    with app.app_context():
        therapist = make_therapist()
        make_request(therapist, start)
        db.session.commit()
        with pytest.raises(IntegrityError, match="uq_booking_therapist_slot|UNIQUE"):
            make_request(therapist, start)
        db.session.rollback()
        assert db.session.scalar(
            select(db.func.count()).select_from(ConsultationRequest)
        ) == 1


def test_a_cancelled_or_not_a_fit_booking_frees_the_time(app):
    start = future_slot()
    with app.app_context():
        therapist = make_therapist()
        make_request(therapist, start, status="cancelled")
        make_request(therapist, start, status="not_a_fit")
        make_request(therapist, start)
        other = make_therapist()
        make_request(other, start)  # same time, another therapist
        make_request(therapist, start + timedelta(minutes=30))
        db.session.commit()
        assert db.session.scalar(
            select(db.func.count()).select_from(ConsultationRequest)
        ) == 5


def test_one_open_request_per_email_but_a_phone_may_be_shared(app):
    with app.app_context():
        make_request(email="same@example.com", phone="+14155550100")
        db.session.commit()
        with pytest.raises(IntegrityError):
            make_request(email="same@example.com")
        db.session.rollback()
        # Refusing a shared phone would tell a stranger it has a request: staff see it.
        make_request(phone="+14155550100")
        # Pending requests are not open: an address may have several, and one open.
        make_request(email="same@example.com", status="pending")
        make_request(email="same@example.com", status="pending")
        make_request(email="same@example.com", phone="+14155550100", status="completed")
        db.session.commit()


@contextmanager
def other_sqlite3_connection():
    """A second writer on the app's SQLite file, outside SQLAlchemy, that gives up
    after 0.1 s; the app's own transaction is rolled back afterwards."""
    other = sqlite3.connect(db.engine.url.database, timeout=0.1)
    try:
        yield other
    finally:
        other.close()
        db.session.rollback()


def test_begin_write_takes_the_sqlite_write_lock_up_front(sqlite_app):
    with sqlite_app.app_context():
        make_therapist()
        db.session.commit()
        begin_write()
        db.session.scalar(select(ConsultationRequest.id))  # a read, yet the lock is held
        with other_sqlite3_connection() as other, pytest.raises(sqlite3.OperationalError,
                                                                match="locked"):
            other.execute("UPDATE therapist SET name = 'x'")


def test_a_second_begin_write_keeps_the_transaction_it_began(app):
    """A view and the domain function it calls both begin the write: the second
    call keeps the first's transaction (and its flushed work), with no ROLLBACK."""
    with app.app_context():
        statements, rollbacks = [], []

        def on_statement(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        def on_rollback(conn):
            rollbacks.append(conn)

        event.listen(db.engine, "before_cursor_execute", on_statement)
        event.listen(db.engine, "rollback", on_rollback)
        try:
            begin_write()
            therapist = make_therapist()  # flushed, not committed
            began = len(statements)
            begin_write()
            assert rollbacks == []
            assert not any(s.upper().startswith(("BEGIN", "ROLLBACK"))
                           for s in statements[began:])
            assert db.session.get(ConsultationRequest, -1) is None  # the session still works
            assert db.session.scalar(select(Therapist.id).where(Therapist.id == therapist.id))
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", on_statement)
            event.remove(db.engine, "rollback", on_rollback)
        assert db.session.scalar(select(Therapist.id).where(Therapist.id == therapist.id))


def test_plain_reads_do_not_take_the_write_lock(sqlite_app):
    with sqlite_app.app_context():
        make_therapist()
        db.session.commit()
        db.session.scalar(select(ConsultationRequest.id))
        with other_sqlite3_connection() as other:
            other.execute("UPDATE therapist SET name = 'x'")
            other.commit()


def test_migrations_that_rebuild_a_table_keep_the_rows_that_refer_to_it(empty_database_url):
    """On SQLite a migration that changes a column rebuilds the table (copy, drop,
    rename); with foreign keys on, the drop would delete every note and email of every
    request. Down past such a migration (the journey's) and up again, nothing is lost."""
    from flask_migrate import downgrade
    from sqlalchemy import text

    from portal.messages.models import OutboxEmail
    from portal.models import RequestNote

    def counts() -> list[int]:
        return [db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
                for table in ("consultation_request", "request_note", "outbox_email")]

    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()
        consultation = make_request(make_therapist(), future_slot(days=3))
        db.session.add(RequestNote(request_id=consultation.id, body="a note"))
        db.session.add(OutboxEmail(key="k", kind="confirmation", request_id=consultation.id,
                                   recipient="a@example.com", subject="s", body_text="Hello",
                                   message_id="<m@example.com>"))
        db.session.commit()
        db.session.remove()
        downgrade(revision="b8d2e6f4a1c3")  # rebuilds consultation_request on SQLite
        assert counts() == [1, 1, 1]
        db.session.remove()
        upgrade()  # and again
        assert counts() == [1, 1, 1]
        # Foreign keys are on again for the connections that follow.
        with db.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.session.remove()
        db.engine.dispose()
