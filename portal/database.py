"""Database behaviour that SQLAlchemy leaves to us.

SQLite: WAL, a busy timeout and foreign keys on every connection, and
``BEGIN IMMEDIATE`` for write transactions that check before they insert
(pysqlite's deferred transactions would let two such checks both pass, and
``with_for_update()`` is a no-op there). This follows SQLAlchemy's documented
recipe: pysqlite's own transaction handling is switched off and we emit BEGIN.

PostgreSQL: a connect timeout and a statement timeout (``DATABASE_CONNECT_TIMEOUT``,
``DATABASE_STATEMENT_TIMEOUT``), so that a database that stops answering costs a page
a few seconds and a kind 503, not a worker held until gunicorn kills it. A pooled
connection is checked where that costs no round trip, in place of ``pool_pre_ping``'s
``SELECT 1`` on every checkout: one the server closed (a restart, a terminated backend)
has something to read while idle, the server's goodbye or the end of the stream, and
is replaced before use; one idle longer than ``IDLE_PING_SECONDS`` is pinged as well.

Both: the session is closed after each request without letting a connection that
died meanwhile turn the page already decided into the server's bare 500.
"""

from __future__ import annotations

import os
import select
import time
import weakref
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool

from portal.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 10_000
IDLE_PING_SECONDS = 30.0
_IDLE_SINCE = "portal_idle_since"  # connection_record.info: time.monotonic() at checkin
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@event.listens_for(Engine, "connect")
def _on_connect(dbapi_connection, connection_record):
    connection_record.info[_IDLE_SINCE] = time.monotonic()
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _is_psycopg(dbapi_connection) -> bool:
    """A psycopg 3 connection (the portal's PostgreSQL driver; not psycopg2)."""
    return type(dbapi_connection).__module__.partition(".")[0] == "psycopg"


@event.listens_for(Pool, "checkin")
def _on_checkin(dbapi_connection, connection_record):
    connection_record.info[_IDLE_SINCE] = time.monotonic()


@event.listens_for(Pool, "checkout")
def _on_checkout(dbapi_connection, connection_record, connection_proxy):
    """PostgreSQL: a connection the server has closed is replaced (the pool connects
    again, or fails with the database's own error: the 503 page)."""
    if not _is_psycopg(dbapi_connection):
        return
    if dbapi_connection.closed or _has_unread_input(dbapi_connection):
        raise DisconnectionError("the database closed this connection while it was idle")
    idle = time.monotonic() - connection_record.info.get(_IDLE_SINCE, 0.0)
    if idle > IDLE_PING_SECONDS and not _answers(dbapi_connection):
        raise DisconnectionError("the database did not answer on this idle connection")


def _has_unread_input(dbapi_connection) -> bool:
    try:
        fd = dbapi_connection.fileno()
    except Exception:  # noqa: BLE001 - no socket: nothing to use
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _answers(dbapi_connection) -> bool:
    was_autocommit = dbapi_connection.autocommit  # an engine may run in AUTOCOMMIT
    try:
        dbapi_connection.autocommit = True  # the ping opens no transaction
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.autocommit = was_autocommit
    except Exception:  # noqa: BLE001 - any failure: a connection not to use
        return False
    return True


@event.listens_for(Engine, "begin")
def _on_begin(conn):
    if conn.dialect.name != "sqlite":
        return
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class KeepsChanges(Exception):  # noqa: N818 - a mark on errors, not an error of its own
    """Marks an error after which what the transaction did so far must stay (a wrong
    code counted, a request dropped by its fifth wrong try): the transaction's owner
    (portal.web.transaction) commits before letting it through, where any other error
    rolls everything back. Domain errors say so by inheriting it, never by committing."""


def begin_write() -> None:
    """Make the session's next transaction a writer's.

    On SQLite this takes the write lock up front, so a check-then-insert is
    serialised across processes; elsewhere it is an ordinary transaction and
    the unique indexes are the guarantee. A read transaction already open in
    this session is ended first (it holds nothing that needs keeping). Called
    again inside a transaction it already began (a view, then the domain function
    it calls), it returns at once, keeping what was done meanwhile.
    """
    session = db.session()  # the scoped session's current Session
    if session.in_transaction():
        if session.connection().get_execution_options().get("sqlite_immediate"):
            return  # already a writer's transaction
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("begin_write() called with unflushed changes")
        session.rollback()
    session.connection(execution_options={"sqlite_immediate": True})


def engine_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """SQLALCHEMY_ENGINE_OPTIONS, with the timeouts added for PostgreSQL: libpq's
    ``connect_timeout`` (seconds; the whole connection, authentication included) and
    the server's ``statement_timeout`` (each statement, waiting for locks included).
    0 leaves either out. A copy: the defaults' dict is shared by every app."""
    options = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if not str(config.get("SQLALCHEMY_DATABASE_URI") or "").startswith("postgresql"):
        return options
    if make_url(config["SQLALCHEMY_DATABASE_URI"]).get_driver_name() == "psycopg":
        options["pool_pre_ping"] = False  # the checkout check above, without a round trip
    connect_args = dict(options.get("connect_args") or {})
    connect = float(config.get("DATABASE_CONNECT_TIMEOUT") or 0)
    if connect > 0:
        connect_args.setdefault("connect_timeout", max(1, round(connect)))
    statement = float(config.get("DATABASE_STATEMENT_TIMEOUT") or 0)
    if statement > 0:
        setting = f"-c statement_timeout={round(statement * 1000)}"
        connect_args["options"] = f"{connect_args.get('options', '')} {setting}".strip()
    options["connect_args"] = connect_args
    return options


def close_sessions_harmlessly(app: Flask) -> None:
    """Flask-SQLAlchemy removes the session when the app context ends, after the
    response is made; when the connection died after the page's last query, the
    rollback that closing does raises there, outside every error handler, and the
    server sends its bare 500 instead of the page (a booking stored and its code
    emailed, and a person told it failed). Replaced by the same removal that logs
    one line instead. Call after ``db.init_app``."""
    funcs = app.teardown_appcontext_funcs
    ours = [index for index, func in enumerate(funcs) if func == db._teardown_session]
    if len(ours) != 1:
        raise RuntimeError("Flask-SQLAlchemy's session teardown was not found")
    funcs[ours[0]] = remove_session


def remove_session(exc: BaseException | None = None) -> None:
    try:
        db.session.remove()
    except Exception as error:  # noqa: BLE001 - the response stands; nothing to undo
        orig = getattr(error, "orig", None)
        code = getattr(orig, "sqlstate", None)
        current_app.logger.warning(
            "database connection lost while closing the session after the response "
            "(%s%s); the response stands", type(orig or error).__name__,
            f" {code}" if code else "")
        # A new session for the next request: this one's connection is invalidated.
        db.session.registry.clear()


def track_engine(engine: Engine) -> None:
    _engines.add(engine)


def _dispose_after_fork() -> None:
    # A forked worker must not share its parent's pooled connections.
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)
