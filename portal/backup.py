"""Backups of the database that restore: a consistent copy while the site runs, and
its restore into an empty database.

SQLite: the online backup API (a consistent snapshot, WAL included), saved as a
standalone file (rollback journal, no -wal beside it) and checked before it is kept.
PostgreSQL: ``pg_dump -Fc``, checked with ``pg_restore --list``; restored with
``pg_restore --no-owner --no-acl --exit-on-error --single-transaction``. The
password reaches pg_dump in PGPASSWORD, never on its command line.

A backup is written under a hidden temporary name with mode 0600 (it holds health
data) and renamed into place once complete, so a file with a backup's name is
always whole. Retention deletes only files whose names this module makes.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from psycopg.conninfo import make_conninfo
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Engine

PREFIX = "portal-backup-"
SUFFIXES = {"sqlite": ".sqlite3", "postgresql": ".dump"}
NAME_PATTERN = re.compile(r"^portal-backup-\d{8}T\d{6}\.\d{6}Z\.(sqlite3|dump)$")
POSTGRES_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why."""


def backup_name(dialect: str, now: datetime) -> str:
    """Sortable by time: ``portal-backup-20261202T163222.123456Z.sqlite3``."""
    return f"{PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}{SUFFIXES[dialect]}"


def make_backup(engine: Engine, directory: Path, now: datetime | None = None) -> Path:
    """Write a backup of the database into ``directory``; return its path."""
    dialect = engine.dialect.name
    if dialect not in SUFFIXES:
        raise BackupError(f"Backups of {dialect} databases are not supported.")
    if not directory.is_dir():
        raise BackupError(f"{directory} is not a directory.")
    final = directory / backup_name(dialect, now or datetime.now(UTC))
    if final.exists():
        raise BackupError(f"{final} exists already.")
    temporary = directory / f".{final.name}.part"
    try:
        # 0600 from the start: no moment when others could read it (umask only narrows).
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        if dialect == "sqlite":
            _backup_sqlite(_sqlite_path(engine.url), temporary)
        else:
            _backup_postgresql(engine.url, temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups this module made; return the deleted."""
    ours = sorted(path for path in directory.iterdir()
                  if NAME_PATTERN.match(path.name) and path.is_file())
    doomed = ours[:-keep] if keep else ours
    for path in doomed:
        path.unlink()
    return doomed


def restore(engine: Engine, backup: Path) -> None:
    """Restore ``backup`` into the configured database, which must be empty."""
    dialect = engine.dialect.name
    if dialect not in SUFFIXES:
        raise BackupError(f"Restoring into {dialect} databases is not supported.")
    if not backup.is_file():
        raise BackupError(f"{backup} is not a file.")
    with open(backup, "rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    expected = SQLITE_MAGIC if dialect == "sqlite" else POSTGRES_MAGIC
    if not head.startswith(expected):
        raise BackupError(f"{backup} is not a {dialect} backup of this portal "
                          f"(the configured database is {dialect}).")
    tables = _table_count(engine)
    if tables:
        raise BackupError(f"The configured database is not empty ({tables} tables): "
                          "restore only into a new, empty database.")
    if dialect == "sqlite":
        _restore_sqlite(backup, _sqlite_path(engine.url))
    else:
        _restore_postgresql(backup, engine.url)


def _table_count(engine: Engine) -> int:
    if engine.dialect.name == "sqlite":
        path = _sqlite_path(engine.url)
        if not path.exists():  # asking the engine would create it, with the wrong mode
            return 0
        count = len(inspect(engine).get_table_names())
    else:
        with engine.connect() as connection:
            count = connection.scalar(text(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"))
    engine.dispose()  # the restore writes from outside this pool
    return count


# -- SQLite -------------------------------------------------------------------

def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError("The SQLite database must be a file (not in memory or a URI).")
    return Path(url.database)


def _backup_sqlite(source_path: Path, target_path: Path) -> None:
    if not source_path.is_file():
        raise BackupError(f"The database file {source_path} does not exist.")
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)  # all pages in one step: one consistent snapshot
        # A standalone file: no -wal or -shm beside the copy.
        target.execute("PRAGMA journal_mode=DELETE")
        if target.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError("The copy failed SQLite's integrity check.")
    except sqlite3.Error as error:
        raise BackupError(f"SQLite could not copy the database: {error}") from error
    finally:
        target.close()
        source.close()


def _restore_sqlite(backup: Path, target_path: Path) -> None:
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        if source.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{backup} failed SQLite's integrity check.")
        if not target_path.exists():
            os.close(os.open(target_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")  # as the portal runs it
        finally:
            target.close()
    except sqlite3.Error as error:
        raise BackupError(f"SQLite could not restore {backup}: {error}") from error
    finally:
        source.close()


# -- PostgreSQL ---------------------------------------------------------------

def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install "
                          "postgresql-client).")
    return path


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A conninfo string without the password, and the environment that carries it."""
    params = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    params.update({key: value for key, value in url.query.items() if isinstance(value, str)})
    conninfo = make_conninfo(**{key: value for key, value in params.items()
                                if value is not None})
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    return conninfo, environment


def _run(command: list[str], environment: dict[str, str], **kwargs) -> None:
    result = subprocess.run(command, env=environment, stderr=subprocess.PIPE,  # noqa: S603
                            check=False, **kwargs)
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{Path(command[0]).name} failed: "
                          f"{reason[-1] if reason else f'exit {result.returncode}'}")


def _backup_postgresql(url: URL, target_path: Path) -> None:
    conninfo, environment = _libpq(url)
    with open(target_path, "wb") as target:
        _run([_tool("pg_dump"), "--format=custom", "--no-password", "--dbname", conninfo],
             environment, stdout=target)
    _run([_tool("pg_restore"), "--list", str(target_path)], environment,
         stdout=subprocess.DEVNULL)


def _restore_postgresql(backup: Path, url: URL) -> None:
    conninfo, environment = _libpq(url)
    _run([_tool("pg_restore"), "--no-owner", "--no-acl", "--exit-on-error",
          "--single-transaction", "--no-password", "--dbname", conninfo, str(backup)],
         environment, stdout=subprocess.DEVNULL)
