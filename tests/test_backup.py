"""`flask --app portal backup DIR` and `restore FILE`: a seeded database backed up,
restored elsewhere, equal row by row; retention; refusals and failures."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from flask_migrate import upgrade
from sqlalchemy import MetaData, create_engine, select, text

from portal import audit, backup, create_app
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages.models import OutboxEmail
from tests.conftest import BACKENDS, BASE_TEST_CONFIG
from tests.factories import make_time_off
from tests.test_readiness import fresh_database

NOW = datetime(2027, 3, 14, 9, 59, tzinfo=UTC)


def portal_app(url: str):
    return create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})


def close(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def invoke(app, *args, env=None):
    return app.test_cli_runner().invoke(args=list(args), env=env)


def seed(app) -> None:
    """Every kind of row the portal keeps: people, requests, email, audit."""
    with app.app_context():
        upgrade()
    result = invoke(app, "seed-demo", "--requests", "50")
    assert result.exit_code == 0, result.output
    result = invoke(app, "create-user", "coord@example.com", "--role", "admin",
                    env={"PORTAL_PASSWORD": "a long enough password"})
    assert result.exit_code == 0, result.output
    with app.app_context():
        therapist = db.session.scalars(select(Therapist)).first()
        make_time_off(therapist, NOW + timedelta(days=3), NOW + timedelta(days=4))
        for n, status in enumerate(["queued", "sent", "failed"]):
            db.session.add(OutboxEmail(
                key=f"seed-{n}", kind="confirmation", recipient=f"zoë{n}@example.com",
                subject="Your consultation", body_text="Bonjour, Zoë — ✓",
                ics="BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", message_id=f"<{n}@example.com>",
                status=status, attempts=n, next_attempt_at=NOW.replace(tzinfo=None),
                created_at=NOW.replace(tzinfo=None)))
        audit.record("export", actor="command line", filters={"status": "new"}, rows=50)
        db.session.commit()


def every_row(url: str) -> dict[str, list[tuple]]:
    """Each table's rows in primary-key order, read by reflection (not the models)."""
    engine = create_engine(url)
    metadata = MetaData()
    metadata.reflect(engine)
    rows = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            order = list(table.primary_key.columns) or list(table.columns)
            rows[table.name] = [tuple(row) for row in
                                connection.execute(select(table).order_by(*order))]
        if engine.dialect.name == "postgresql":
            rows["(sequences)"] = list(connection.execute(text(
                "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1")))
    engine.dispose()
    return rows


@pytest.fixture(params=BACKENDS)
def kind(request):
    return request.param


def test_a_backup_restores_every_row(kind, tmp_path):
    backups = tmp_path / "backups"
    with fresh_database(kind, tmp_path, "source") as source_url, \
            fresh_database(kind, tmp_path, "copy") as copy_url:
        source = portal_app(source_url)
        seed(source)
        result = invoke(source, "backup", str(backups))
        assert result.exit_code == 0, result.output
        [written] = list(backups.iterdir())
        assert backup.NAME_PATTERN.match(written.name)
        assert stat.S_IMODE(written.stat().st_mode) == 0o600
        assert stat.S_IMODE(backups.stat().st_mode) == 0o700
        close(source)

        copy = portal_app(copy_url)
        result = invoke(copy, "restore", str(written))
        assert result.exit_code == 0, result.output
        close(copy)
        original, restored = every_row(source_url), every_row(copy_url)
    assert restored == original
    assert len(original["consultation_request"]) == 50
    for table in ("therapist", "weekly_hours", "time_off", "user", "outbox_email",
                  "audit_event", "alembic_version"):
        assert original[table], table
    if kind == "sqlite":
        assert stat.S_IMODE(Path(copy_url.removeprefix("sqlite:///")).stat().st_mode) == 0o600


def test_the_restored_database_is_ready_to_use(tmp_path):
    with fresh_database("sqlite", tmp_path, "source") as source_url:
        source = portal_app(source_url)
        seed(source)
        assert invoke(source, "backup", str(tmp_path)).exit_code == 0
        [written] = tmp_path.glob("portal-backup-*")
        # A standalone file (rollback journal, not WAL): readable as it is, even from
        # a read-only medium, with no -wal or -shm to keep beside it.
        copy_file = sqlite3.connect(f"file:{written}?mode=ro", uri=True)
        assert copy_file.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        copy_file.close()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("portal-b")) \
            == [written.name]
        copy = portal_app(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
        assert invoke(copy, "restore", str(written)).exit_code == 0
        result = invoke(copy, "seed-demo", "--requests", "5")  # writes on top
        assert result.exit_code == 0, result.output
        with copy.app_context():
            assert db.session.scalar(text("PRAGMA journal_mode")) == "wal"
            assert db.session.scalar(text("SELECT count(*) FROM consultation_request")) == 55
        close(copy)
        close(source)


def test_restore_refuses_a_database_that_is_not_empty(kind, tmp_path):
    with fresh_database(kind, tmp_path, "source") as source_url:
        app = portal_app(source_url)
        seed(app)
        assert invoke(app, "backup", str(tmp_path / "b")).exit_code == 0
        [written] = (tmp_path / "b").iterdir()
        before = every_row(source_url)
        result = invoke(app, "restore", str(written))
        close(app)
        assert result.exit_code == 1
        assert "Restore failed: The configured database is not empty" in result.output
        assert every_row(source_url) == before


def test_retention_keeps_the_newest_and_only_touches_backups(tmp_path):
    app = portal_app(f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    with app.app_context():
        upgrade()
    folder = tmp_path / "backups"
    folder.mkdir()
    others = ["notes.txt", "portal-backup-manual.sqlite3", "portal-backup-20200101T000000Z.db"]
    for name in others:
        (folder / name).write_text("keep me")
    made = []
    for day in range(5):
        with time_machine.travel(NOW + timedelta(days=day), tick=False):
            result = invoke(app, "backup", str(folder), "--keep", "3")
        assert result.exit_code == 0, result.output
        made.append(result.output.split()[2])
    close(app)
    assert made[0].endswith("portal-backup-20270314T095900.000000Z.sqlite3")
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted(others + [Path(path).name for path in made[2:]])
    assert "Deleted 1 older backup, keeping the newest 3." in result.output


def test_backup_failures_exit_non_zero_and_leave_nothing(tmp_path):
    app = portal_app(f"sqlite:///{tmp_path / 'never-created.sqlite3'}")
    folder = tmp_path / "backups"
    result = invoke(app, "backup", str(folder))
    assert result.exit_code == 1
    assert "Backup failed: The database file" in result.output
    assert list(folder.iterdir()) == []  # no partial file left behind
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    result = invoke(app, "backup", str(blocked))
    assert result.exit_code != 0


def test_restore_refuses_a_file_that_is_no_backup(kind, tmp_path):
    with fresh_database(kind, tmp_path, "target") as url:
        app = portal_app(url)
        bogus = tmp_path / "bogus.dump"
        bogus.write_bytes(b"not a backup at all")
        result = invoke(app, "restore", str(bogus))
        assert result.exit_code == 1
        assert f"is not a {kind} backup" in result.output
        result = invoke(app, "restore", str(tmp_path / "missing.dump"))
        assert result.exit_code == 1 and "is not a file" in result.output
        close(app)


def test_postgresql_password_goes_in_the_environment(tmp_path, monkeypatch):
    seen = []

    def fake_run(command, env, **kwargs):
        seen.append((command, env))
        raise backup.BackupError("pg_dump failed: stop here")

    monkeypatch.setattr(backup, "_run", fake_run)
    url = "postgresql+psycopg://portal:s3cret%20pw@db.internal:5433/portal?sslmode=require"
    engine = create_engine(url)
    with pytest.raises(backup.BackupError, match="stop here"):
        backup.make_backup(engine, tmp_path)
    [(command, env)] = seen
    assert command[0].endswith("pg_dump") and "--format=custom" in command
    assert not any("s3cret" in part for part in command)
    assert env["PGPASSWORD"] == "s3cret pw"
    conninfo = command[command.index("--dbname") + 1]
    assert set(conninfo.split()) == {"host=db.internal", "port=5433", "user=portal",
                                     "dbname=portal", "sslmode=require"}
    assert list(tmp_path.iterdir()) == []
    assert os.environ.get("PGPASSWORD") != "s3cret pw"


def test_backup_without_pg_dump_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(backup.shutil, "which", lambda name: None)
    app = portal_app("postgresql+psycopg://portal@127.0.0.1:5432/portal")
    result = invoke(app, "backup", str(tmp_path))
    assert result.exit_code == 1
    assert "Backup failed: pg_dump is not installed" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="TEST_DATABASE_URL is not set")
def test_a_failing_pg_dump_exits_non_zero_and_leaves_nothing(tmp_path):
    base = os.environ["TEST_DATABASE_URL"].rpartition("/")[0]
    app = portal_app(f"{base}/portal_no_such_database")
    result = invoke(app, "backup", str(tmp_path))
    assert result.exit_code == 1
    assert "Backup failed: pg_dump failed:" in result.output
    assert 'database "portal_no_such_database" does not exist' in result.output
    assert list(tmp_path.iterdir()) == []
