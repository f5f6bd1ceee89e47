"""A database that goes away answers 503 with a kind page, logs one line, and the
site comes back by itself: PostgreSQL behind a loopback relay we stop and start
(a restart, as the app sees it), and SQLite in a folder that is not there yet."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

from sqlalchemy import text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.booking.intake_tables import Setting
from portal.extensions import db
from portal.web.errors import RETRY_AFTER_SECONDS
from tests.conftest import BASE_TEST_CONFIG, free_port

# Propagated exceptions would hide the error handlers that a real server runs.
OUTAGE_CONFIG = {**BASE_TEST_CONFIG, "PROPAGATE_EXCEPTIONS": False,
                 "PRACTICE_PHONE": "(415) 555-0100"}


@contextlib.contextmanager
def another_connection(url: str):
    from sqlalchemy import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


class TcpRelay:
    """A loopback relay to a TCP server. ``stop`` closes it and every connection
    through it, as a database restart does; ``start`` listens on the same port again."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.port = free_port()
        self.running = threading.Event()
        self.sockets: list[socket.socket] = []
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self.running.set()
        self.thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.running.clear()
        self.thread.join(5)
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets = []

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self.running.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def relayed(database_url: str) -> tuple[TcpRelay, str]:
    """A started relay to the test's PostgreSQL server, and the database's URL through it."""
    direct = make_url(database_url)
    relay = TcpRelay(direct.port or 5432)
    relay.start()
    return relay, direct.set(host="127.0.0.1", port=relay.port).render_as_string(
        hide_password=False)


def outage_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.INFO]


def assert_kind_503(client, caplog, path="/consultation"):
    caplog.clear()
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    page = response.text
    assert "We'll be back in a moment" in page
    assert "call us at <a href=\"tel:+14155550100\">(415) 555-0100</a>" in page
    assert 'href="tel:988"' in page and 'href="sms:988"' in page
    assert "Traceback" not in page and "psycopg" not in page and "sqlite" not in page.lower()
    [line] = outage_lines(caplog)
    assert line.levelno == logging.WARNING and line.exc_info is None
    message = line.getMessage()
    assert message.startswith("database unavailable, answered 503 (public.eligibility): ")
    assert "\n" not in message and "SELECT" not in message
    return message


@contextlib.contextmanager
def portal_on(url: str):
    """The portal on ``url``, its tables made, and a client; its connections closed after."""
    app = create_app({**OUTAGE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
    try:
        yield app, app.test_client()
    finally:
        with app.app_context():
            db.engine.dispose()


def test_postgresql_going_away_answers_503_and_comes_back(postgres_url, caplog):
    relay, url = relayed(postgres_url)
    try:
        with portal_on(url) as (_, client):
            assert client.get("/consultation").status_code == 200  # a pooled connection now
            relay.stop()  # a restart: the pooled connection is cut and nothing listens
            message = assert_kind_503(client, caplog)
            assert "Connection refused" in message or "OperationalError" in message
            assert_kind_503(client, caplog)  # still down: one line for each failure
            relay.start()
            caplog.clear()
            assert client.get("/consultation").status_code == 200
            assert outage_lines(caplog) == []
    finally:
        relay.stop()


def test_postgresql_restart_between_requests_is_not_noticed(postgres_url):
    """A pooled connection that died while idle is replaced unseen (portal.database's
    checkout check)."""
    relay, url = relayed(postgres_url)
    try:
        with portal_on(url) as (_, client):
            assert client.get("/consultation").status_code == 200
            relay.stop()
            relay.start()
            assert client.get("/consultation").status_code == 200
    finally:
        relay.stop()


def test_a_connection_the_server_ended_is_replaced_unseen(postgres_url):
    """A backend the server itself ends (an administrator, an idle timeout) says goodbye
    on the socket: the next checkout sees it and connects again, with no ping."""
    with portal_on(postgres_url) as (app, client):
        assert client.get("/consultation").status_code == 200
        with app.app_context():
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with another_connection(postgres_url) as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                                 ).scalar() is True
        assert client.get("/consultation").status_code == 200
        with app.app_context():
            assert db.session.execute(text("SELECT pg_backend_pid()")).scalar() != pid


def test_a_busy_connection_is_not_pinged_and_an_idle_one_is(postgres_url, monkeypatch):
    from portal import database

    pinged = []
    answers = database._answers
    monkeypatch.setattr(database, "_answers", lambda raw: pinged.append(raw) or answers(raw))
    with portal_on(postgres_url) as (_, client):
        for _ in range(3):
            assert client.get("/consultation").status_code == 200
        assert pinged == []  # used a moment ago: no round trip before each page
        monkeypatch.setattr(database, "IDLE_PING_SECONDS", -1)  # as if idle for long
        assert client.get("/consultation").status_code == 200
        assert len(pinged) == 1


def test_the_idle_ping_leaves_an_autocommit_engine_in_autocommit(postgres_url, monkeypatch):
    from sqlalchemy import create_engine

    from portal import database

    monkeypatch.setattr(database, "IDLE_PING_SECONDS", -1)  # ping at every checkout
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(2):
            with engine.connect() as conn:
                assert conn.connection.dbapi_connection.autocommit is True
                conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def test_sqlite_in_a_missing_folder_answers_503_until_it_is_there(tmp_path, caplog):
    folder = tmp_path / "not-yet"
    app = create_app({**OUTAGE_CONFIG,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'portal.sqlite3'}"})
    client = app.test_client()
    message = assert_kind_503(client, caplog)
    assert "OperationalError" in message
    assert client.get("/healthz").status_code == 503
    folder.mkdir()
    with app.app_context():
        db.create_all()
    caplog.clear()
    assert client.get("/consultation").status_code == 200
    assert outage_lines(caplog) == []
    with app.app_context():
        db.engine.dispose()


def test_a_database_error_that_is_no_outage_is_still_a_500(tmp_path):
    app = create_app({**OUTAGE_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})
    insert = text(f"INSERT INTO {Setting.__tablename__} (key, value) VALUES ('twice', '')")

    @app.get("/twice")
    def twice():
        db.session.execute(insert)
        db.session.execute(insert)  # an IntegrityError: a bug to see, not an outage

    with app.app_context():
        db.create_all()
    response = app.test_client().get("/twice")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers
    with app.app_context():
        db.engine.dispose()
