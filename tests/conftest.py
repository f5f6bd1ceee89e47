"""Shared fixtures: the app on every configured database, the test client and CLI
runner, a real SMTP server on loopback, and a live server for the browser.

SQLite always; PostgreSQL too when TEST_DATABASE_URL is set (each run in its
own throw-away database). Browser tests skip when Chromium is missing, unless
REQUIRE_BROWSER=1, when they fail.

Tests marked ``clock`` compare dates with "now": each runs once at every instant
in ``CLOCK_INSTANTS`` (the clock travels there and ticks on), so that every run
of the suite checks the hours when the Pacific and the UTC dates differ and both
DST changes. ``PORTAL_TEST_NOW=2027-03-14T09:59:00Z`` runs them at that one
instant instead, to reproduce a failure.

No app made here reads the checkout's ``instance/`` folder (where ``make run`` keeps
its secret key, its SQLite file and its mail): every test gets an empty instance
folder of its own through ``PORTAL_INSTANCE_PATH``, which subprocesses inherit. A test
that needs the real folder passes ``instance_path=`` to ``create_app`` and says why.
"""

from __future__ import annotations

import os
import secrets
import smtplib
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import text
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import db
from tests.backoffice import make_cast, sign_in
from tests.factories import make_therapist
from tests.smtp import SmtpSink

CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])

BASE_TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-for-the-suite-only",
    "ENCRYPTION_KEYS": ["dGVzdC1lbmNyeXB0aW9uLWtleS1mb3ItdGhlLXN1aXQ="],
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "FORM_MIN_SECONDS": 0,
    # Cheaper than production's N=2^17 so the suite stays fast; test_auth checks the default.
    "PASSWORD_HASH_METHOD": "scrypt:16384:8:1",
    "MAIL_BACKEND": "smtp",
    "MAIL_SERVER": "127.0.0.1",
    "MAIL_PORT": 9,  # the guard refuses anything but the SMTP fixture's port
    "MAIL_DEFAULT_SENDER": "Consultations <consultations@example.com>",
    "PUBLIC_BASE_URL": "https://portal.example.com",
    "PRACTICE_NOTIFY_EMAIL": "intake@example.com",
    "OUTBOX_BACKGROUND": False,
    # Tests about the second factor turn it on (tests/test_mfa.py); the rest sign in
    # with a password alone.
    "REQUIRE_MFA": False,
}


# Instants where a date taken in UTC instead of Pacific time (or the other way round)
# shows: the two dates differ from 16:00 PST / 17:00 PDT to midnight, Sunday night
# in Pacific time is already Monday in UTC, and each DST change skips or repeats an hour.
CLOCK_INSTANTS = {
    "0730Z-is-2330PT-the-day-before": "2026-12-03T07:30:00+00:00",
    "2359PT-sunday-winter": "2027-01-03T23:59:00-08:00",
    "0001PT-monday-summer": "2027-07-05T00:01:00-07:00",
    "0159PST-before-spring-forward": "2027-03-14T01:59:00-08:00",
    "0301PDT-after-spring-forward": "2027-03-14T03:01:00-07:00",
    "0159PDT-before-fall-back": "2027-11-07T01:59:00-07:00",
    "0101PST-after-fall-back": "2027-11-07T01:01:00-08:00",
}


# Before any test module is imported: an app made at import time, or by a
# subprocess, never sees the checkout's instance/ either.
os.environ["PORTAL_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="portal-test-instance-")


@pytest.fixture(autouse=True)
def own_instance_folder(tmp_path_factory, monkeypatch):
    """An empty instance folder for this test's apps and subprocesses."""
    folder = tmp_path_factory.mktemp("instance")
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(folder))
    return folder


def clock_instants() -> dict[str, str]:
    """The instants ``clock`` tests run at: PORTAL_TEST_NOW alone when it is set."""
    chosen = os.environ.get("PORTAL_TEST_NOW", "").strip()
    if chosen:
        return {f"now={chosen}": chosen}
    return CLOCK_INSTANTS


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("clock") is not None:
        instants = clock_instants()
        metafunc.parametrize("clock", list(instants.values()), ids=list(instants),
                             indirect=True)


def pytest_terminal_summary(terminalreporter):
    """One line per instant: how many date-sensitive (``clock``) tests passed there."""
    counts: dict[str, list[int]] = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.when != "call" and outcome == "passed":
                continue
            if "clock" not in getattr(report, "keywords", {}):
                continue
            for name in clock_instants():
                if name in report.nodeid:
                    counts.setdefault(name, [0, 0])[outcome != "passed"] += 1
    if counts:
        terminalreporter.write_sep("-", "date-sensitive tests at frozen instants")
        for name, (passed, failed) in counts.items():
            terminalreporter.write_line(f"{name} ({clock_instants()[name]}): "
                                        f"{passed} passed, {failed} failed")


@pytest.fixture(autouse=True)
def clock(request):
    """For a ``clock`` test, the instant it runs at (the clock travels there first,
    before any other fixture reads it, and ticks on); None for other tests."""
    instant = getattr(request, "param", None)
    if instant is None:
        yield None
        return
    when = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    if when.tzinfo is None:
        pytest.fail(f"PORTAL_TEST_NOW={instant!r} needs an offset, like Z or -08:00")
    with time_machine.travel(when, tick=True):
        yield when


# -- databases ---------------------------------------------------------------

@contextmanager
def new_postgres_database(base: str) -> Iterator[str]:
    """An empty PostgreSQL database beside ``base`` (a URL), dropped afterwards."""
    import psycopg

    plain = base.replace("postgresql+psycopg://", "postgresql://")
    name = f"portal_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL database for this run, dropped at the end. Tests share
    it (each leaves it empty of rows, its tables stay): one that needs a database of
    its own, migrated from nothing, takes ``new_postgres_database``."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set")
    with new_postgres_database(base) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def make_app(database_url: str, instance_path: str | None = None, **overrides):
    config = {**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, **overrides}
    app = create_app(config, instance_path=instance_path)
    with app.app_context():
        db.create_all()
    return app


def clear_database(app) -> None:
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app_config():
    """Per-test config overrides; a test module may override this fixture."""
    return {}


@pytest.fixture
def app(database_url, app_config):
    app = make_app(database_url, **app_config)
    yield app
    clear_database(app)


@pytest.fixture
def sqlite_app(tmp_path):
    """The app on a SQLite file whatever TEST_DATABASE_URL says: for checks of
    SQLite's own behaviour (locks, PRAGMAs), run once rather than skipped."""
    app = make_app(f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    yield app
    clear_database(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def cast(app):
    """An admin, two therapists with users, and their requests (see tests/backoffice.py)."""
    return make_cast(app)


@pytest.fixture
def admin(client, cast):
    """The test client, signed in as the admin."""
    sign_in(client, cast.admin_email)
    return client


@pytest.fixture
def therapist_id(app):
    """One therapist who works 09:00-17:00 every day; their id."""
    with app.app_context():
        therapist = make_therapist("Maya Alvarez", licence_type="LMFT", licence_number="118204")
        db.session.commit()
        return therapist.id


# -- mail --------------------------------------------------------------------

_allowed_smtp_ports: set[int] = set()


@pytest.fixture(autouse=True)
def refuse_unexpected_smtp(monkeypatch):
    """Any SMTP connection outside the SMTP fixture fails the test."""
    real_connect = smtplib.SMTP.connect

    def guarded_connect(self, host="localhost", port=0, source_address=None):
        if int(port) not in _allowed_smtp_ports:
            raise AssertionError(f"unexpected SMTP connection to {host}:{port}")
        return real_connect(self, host, port, source_address)

    monkeypatch.setattr(smtplib.SMTP, "connect", guarded_connect)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def smtp_sink():
    sink = SmtpSink(port=free_port())
    sink.start()
    _allowed_smtp_ports.add(sink.port)
    yield sink
    sink.stop()
    _allowed_smtp_ports.discard(sink.port)


@pytest.fixture
def smtp_server(smtp_sink):
    """The real SMTP server, emptied for this test and back to accepting mail."""
    smtp_sink.reset()
    yield smtp_sink
    smtp_sink.reset()


@pytest.fixture
def mail_config(smtp_server):
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_server.port}


@pytest.fixture
def mail_app_config(mail_config, request):
    """An ``app_config`` for modules that send mail: the SMTP fixture's address
    (Flask-Mail reads it at start-up), plus a test's own through
    ``@pytest.mark.parametrize("app_config", [{...}], indirect=True)``.
    A module opts in with ``app_config = mail_app_config``."""
    return {**mail_config, **getattr(request, "param", {})}


# -- browser -----------------------------------------------------------------

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM.exists():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but Chromium is missing at {CHROMIUM}")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"],
    }


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="session")
def live_app(tmp_path_factory):
    from portal import demo

    folder = tmp_path_factory.mktemp("live")
    # Session-wide, so an instance folder of its own rather than the first test's.
    app = make_app(f"sqlite:///{folder / 'portal.sqlite3'}", str(folder / "instance"),
                   WTF_CSRF_ENABLED=True, TESTING=False, DEBUG=False)
    with app.app_context():
        demo.seed_therapists()
        db.session.commit()
    return app


@pytest.fixture(scope="session")
def live_server(live_app):
    server = LiveServer(live_app)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_url(live_server):
    return live_server.url


@pytest.fixture(scope="session")
def screenshot_dir():
    path = ARTIFACTS / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
