"""A PostgreSQL connection that dies or stops answering, seen through a loopback relay
the test controls, with real requests to a real server (werkzeug's, threaded):

- cut after the page's last query, the session's closing rollback fails after the
  response is made: the page already decided stands (200, a redirect), with one log
  line, never the server's bare 500; a write that committed is never reported failed;
- a database that accepts connections and never answers is a kind 503 within the
  connect timeout, not a worker tied up; a statement that runs too long is cut off by
  the statement timeout and is the same 503.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import logging
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from portal import create_app
from portal.database import engine_options
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.conftest import LiveServer, clear_database, free_port
from tests.factories import make_therapist
from tests.test_database_outage import OUTAGE_CONFIG, relayed
from tests.test_public_flow import ELIGIBLE, FORM_TOKEN, SLOT_VALUE

# Far above the configured timeouts: only a hang reaches it, and then the test fails
# instead of waiting for ever. Never a measure of speed.
HANG = 60


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Real HTTP requests with cookies, redirects not followed."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirects())

    def request(self, path: str, data: dict | None = None) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        try:
            with self.opener.open(self.base_url + path, data=body, timeout=HANG) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace"), dict(error.headers)


@contextlib.contextmanager
def served(app):
    server = LiveServer(app)
    server.start()
    try:
        yield Browser(server.url)
    finally:
        server.stop()


def cut(relay) -> None:
    """Every connection through the relay dies; new ones are taken as before."""
    relay.stop()
    relay.start()


@pytest.fixture
def relayed_app(postgres_url):
    relay, url = relayed(postgres_url)
    app = create_app({**OUTAGE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        make_therapist("Maya Alvarez")
        db.session.commit()
    armed = threading.Event()

    @app.teardown_request
    def cut_when_armed(exc):  # runs before the session is removed (app context teardown)
        if armed.is_set():
            armed.clear()
            cut(relay)

    app.extensions["test_cut"] = armed
    app.extensions["test_relay"] = relay
    yield app
    relay.stop()
    relay.start()
    clear_database(app)
    relay.stop()


def counts(app) -> tuple[int, int]:
    with app.app_context():
        requests = db.session.scalar(select(func.count()).select_from(ConsultationRequest))
        emails = db.session.scalar(select(func.count()).select_from(OutboxEmail))
        db.session.remove()
        return requests, emails


def lost_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "while closing the session" in r.getMessage()]


def test_a_connection_dying_after_the_last_query_leaves_the_page_alone(relayed_app, caplog):
    armed = relayed_app.extensions["test_cut"]
    with served(relayed_app) as browser:
        armed.set()
        status, page, _ = browser.request("/consultation")
        assert status == 200 and "Do you live in California?" in page
        [line] = lost_lines(caplog)
        assert line.levelno == logging.WARNING and "\n" not in line.getMessage()
        caplog.clear()
        # The pool replaces the dead connection unseen.
        assert browser.request("/consultation")[0] == 200
        assert lost_lines(caplog) == []


def check_answers(browser: Browser) -> dict:
    """Steps 1 to 3 answered, one page at a time; the check page's answers, as it offers
    them (the POST that stores the request)."""
    assert browser.request("/consultation", ELIGIBLE)[0] == 302
    status, page, _ = browser.request("/consultation/time?therapist=any")
    assert status == 200
    slot = SLOT_VALUE.findall(page)[0]
    assert browser.request("/consultation/time", {"therapist": "any", "slot": slot})[:3:2][0] \
        == 302
    about = {"first_name": "Casey", "last_name": "Rivera", "email": "casey@example.com",
             "phone": "(415) 555-0123", "meeting": "phone"}
    assert browser.request("/consultation/about", about)[0] == 302
    status, page, _ = browser.request("/consultation/check")
    assert status == 200
    return {"consent_privacy": "y", "ack_not_emergency": "y", "website": "",
            "form_token": FORM_TOKEN.search(page).group(1)}


def test_a_stored_request_is_never_reported_failed(relayed_app, caplog):
    """The check POST commits the pending request and its code email, then the
    connection dies: the visitor goes on to "check your email", as for any booking."""
    armed = relayed_app.extensions["test_cut"]
    with served(relayed_app) as browser:
        data = check_answers(browser)
        armed.set()
        status, _, headers = browser.request("/consultation/check", data)
        assert (status, headers.get("Location")) == (302, "/consultation/verify")
        assert counts(relayed_app) == (1, 1)  # the pending request and its code email
        assert browser.request("/consultation/verify")[0] == 200


def test_a_connection_lost_right_after_the_commit_still_says_stored(relayed_app):
    """The database goes away the moment the check POST's COMMIT returns, before the
    page reads anything more: the visitor still goes on to "check your email"."""
    relay_cut = relayed_app.extensions["test_cut"]
    relay = relayed_app.extensions["test_relay"]
    armed = threading.Event()

    def note_insert(session, flush_context):
        if any(isinstance(row, ConsultationRequest) for row in session.new):
            session.info["stores_request"] = True

    def cut_after_commit(session):
        if session.in_nested_transaction():
            return  # a savepoint released, not the COMMIT
        if armed.is_set() and session.info.pop("stores_request", False):
            armed.clear()
            relay.stop()  # down, until the answer is back

    event.listen(Session, "after_flush", note_insert)
    event.listen(Session, "after_commit", cut_after_commit)
    try:
        with served(relayed_app) as browser:
            data = check_answers(browser)
            armed.set()
            status, _, headers = browser.request("/consultation/check", data)
    finally:
        event.remove(Session, "after_commit", cut_after_commit)
        event.remove(Session, "after_flush", note_insert)
    assert not armed.is_set()  # it went away, right after the request was stored
    relay.start()
    assert not relay_cut.is_set()
    assert (status, headers.get("Location")) == (302, "/consultation/verify")
    assert counts(relayed_app) == (1, 1)


def test_a_write_that_committed_is_not_undone_by_a_connection_lost_after_it(relayed_app):
    """The connection dies right after COMMIT: whatever the page says next, never the
    bare 500, and the row is there."""
    relay_cut = relayed_app.extensions["test_cut"]

    @relayed_app.post("/commit-then-lose")
    def commit_then_lose():
        db.session.execute(text("INSERT INTO setting (key, value) VALUES ('k', 'v')"))
        db.session.commit()
        db.session.execute(text("SELECT 1"))  # a fresh transaction: closing it fails
        relay_cut.set()
        return "stored", 201

    with served(relayed_app) as browser:
        assert browser.request("/commit-then-lose", {})[:2] == (201, "stored")
    with relayed_app.app_context():
        assert db.session.scalar(text("SELECT value FROM setting WHERE key = 'k'")) == "v"
        db.session.remove()


class Blackhole:
    """Accepts TCP connections and never answers: a database host that hangs."""

    def __init__(self):
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.held: list[socket.socket] = []
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        self.listener.settimeout(0.05)
        while self.running:
            with contextlib.suppress(TimeoutError):
                self.held.append(self.listener.accept()[0])

    def close(self):
        self.running = False
        self.thread.join(5)
        self.listener.close()
        for sock in self.held:
            sock.close()


def test_a_database_that_never_answers_is_a_503_within_the_connect_timeout(caplog):
    hole = Blackhole()
    app = create_app({**OUTAGE_CONFIG, "DATABASE_CONNECT_TIMEOUT": 2,
                      "SQLALCHEMY_DATABASE_URI":
                          f"postgresql+psycopg://postgres@127.0.0.1:{hole.port}/portal"})
    try:
        with served(app) as browser:
            status, page, headers = browser.request("/consultation")
        assert status == 503 and "Retry-After" in headers
        assert "We'll be back in a moment" in page.replace("&#39;", "'")
        assert hole.held  # it was reached, and never answered
        assert any(r.getMessage().startswith("database unavailable, answered 503")
                   for r in caplog.records)
    finally:
        hole.close()
        with app.app_context():
            db.engine.dispose()


def test_a_statement_that_runs_too_long_is_a_503(postgres_url, caplog):
    app = create_app({**OUTAGE_CONFIG, "DATABASE_STATEMENT_TIMEOUT": 1,
                      "SQLALCHEMY_DATABASE_URI": postgres_url})

    @app.get("/slow")
    def slow():
        db.session.execute(text("SELECT pg_sleep(30)"))
        return "not reached"

    try:
        with served(app) as browser:
            status, _, headers = browser.request("/slow")
        assert status == 503 and headers["Retry-After"]
        [line] = [r for r in caplog.records if "answered 503" in r.getMessage()]
        assert "57014" in line.getMessage()  # query_canceled: the statement timeout
        with app.app_context():
            assert db.session.scalar(text("SHOW statement_timeout")) == "1s"
    finally:
        with app.app_context():
            db.engine.dispose()


def test_the_timeouts_reach_postgresql_only_and_keep_the_defaults_shared():
    from portal import config as defaults

    shared = dict(defaults.SQLALCHEMY_ENGINE_OPTIONS)
    config = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://h/p",
              "SQLALCHEMY_ENGINE_OPTIONS": defaults.SQLALCHEMY_ENGINE_OPTIONS,
              "DATABASE_CONNECT_TIMEOUT": 5, "DATABASE_STATEMENT_TIMEOUT": 5}
    options = engine_options(config)
    assert options["connect_args"] == {"connect_timeout": 5,
                                       "options": "-c statement_timeout=5000"}
    # PostgreSQL's connections are checked without a round trip (portal.database).
    assert options["pool_pre_ping"] is False and shared == defaults.SQLALCHEMY_ENGINE_OPTIONS
    assert "connect_args" not in engine_options(
        {**config, "SQLALCHEMY_DATABASE_URI": "sqlite:///x.db"})
    assert engine_options({**config, "DATABASE_CONNECT_TIMEOUT": 0,
                           "DATABASE_STATEMENT_TIMEOUT": 0})["connect_args"] == {}


def test_every_app_closes_its_sessions_harmlessly(tmp_path):
    app = create_app({**OUTAGE_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})
    names = [getattr(func, "__name__", "") for func in app.teardown_appcontext_funcs]
    assert "remove_session" in names and "_teardown_session" not in names
