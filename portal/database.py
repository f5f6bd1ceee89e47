"""Database behaviour that SQLAlchemy leaves to us.

SQLite: WAL, a busy timeout and foreign keys on every connection, and
``BEGIN IMMEDIATE`` for write transactions that check before they insert
(pysqlite's deferred transactions would let two such checks both pass, and
``with_for_update()`` is a no-op there). This follows SQLAlchemy's documented
recipe: pysqlite's own transaction handling is switched off and we emit BEGIN.
"""

from __future__ import annotations

import os
import weakref

from sqlalchemy import event
from sqlalchemy.engine import Engine

from portal.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 10_000
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@event.listens_for(Engine, "connect")
def _on_connect(dbapi_connection, connection_record):
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@event.listens_for(Engine, "begin")
def _on_begin(conn):
    if conn.dialect.name != "sqlite":
        return
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


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


def track_engine(engine: Engine) -> None:
    _engines.add(engine)


def _dispose_after_fork() -> None:
    # A forked worker must not share its parent's pooled connections.
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)
