"""`flask --app portal check` and the operators' /healthz detail: a production
configuration passes, the defaults fail with one line per problem."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from flask_migrate import upgrade

from portal import config as defaults
from portal import create_app, readiness
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import to_db
from tests.conftest import BACKENDS, new_postgres_database
from tests.deploy import ROOT

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TOKEN = secrets.token_urlsafe(32)
PRODUCTION = {
    "SECRET_KEY": secrets.token_hex(32),
    "ENCRYPTION_KEYS": [base64.b64encode(secrets.token_bytes(32)).decode()],
    "PREFERRED_URL_SCHEME": "https",
    "TRUSTED_HOSTS": ["portal.example.com"],
    "PUBLIC_BASE_URL": "https://portal.example.com",
    "PROXY_FIX_X_FOR": 1,
    "PROXY_FIX_X_PROTO": 1,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": REDIS_URL,
    "MAIL_BACKEND": "smtp",
    "MAIL_SERVER": "smtp.example.com",
    "MAIL_PORT": 587,
    "MAIL_USE_TLS": True,
    "REQUIRE_MFA": True,
    "HEALTHZ_TOKEN": TOKEN,
    "SMS_BACKEND": "twilio",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
    "TWILIO_FROM": "+14155550100",
}
NOW = datetime(2026, 12, 3, 7, 30, tzinfo=UTC)  # 23:30 the day before in California


@contextmanager
def fresh_database(kind: str, tmp_path, label: str = "db"):
    """A new, empty database of this kind: its URL, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'{label}.sqlite3'}"
        return
    with new_postgres_database(os.environ["TEST_DATABASE_URL"]) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def production_app(request, tmp_path):
    """The app as it should run on the internet, on a migrated database."""
    with fresh_database(request.param, tmp_path) as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, **PRODUCTION})
        with app.app_context():
            upgrade()
        yield app
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def run_check(app, *args):
    result = app.test_cli_runner().invoke(args=["check", *args])
    ids = [line.split(" ", 1)[0] for line in result.stdout.splitlines()]
    return result, ids


def add_outbox_email(status: str, next_attempt_at: datetime, **fields) -> None:
    db.session.add(OutboxEmail(
        key=secrets.token_hex(8), kind="confirmation", recipient="client@example.com",
        subject="Your consultation", body_text="", message_id=f"<{secrets.token_hex(8)}@x>",
        status=status, next_attempt_at=to_db(next_attempt_at), created_at=to_db(NOW),
        **fields))


def test_a_production_configuration_passes(production_app):
    result, ids = run_check(production_app)
    assert result.exit_code == 0, result.output
    assert ids == []
    assert "0 errors, 0 warnings." in result.stderr


def test_the_defaults_fail_with_one_line_per_problem(tmp_path):
    # The defaults, but TESTING: without it the app refuses to start at all (no key);
    # and an encryption key, without which it refuses even then (tests/test_encryption.py).
    app = create_app({"TESTING": True, "ENCRYPTION_KEYS": PRODUCTION["ENCRYPTION_KEYS"],
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'd.sqlite3'}"})
    with app.app_context():
        db.create_all()  # not migrated: no alembic version
    result, ids = run_check(app)
    assert result.exit_code == 1
    assert ids == ["security.E001", "security.E002", "security.E004", "security.E005",
                   "security.E006", "security.E007", "security.E010", "mail.W001",
                   "sms.W001", "security.W001", "database.E002"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("security.E001 [error] SECRET_KEY is missing or weak")
    assert all(" Fix: " in line for line in lines)
    assert "mail.W001 [warning]" in result.stdout


def test_unsafe_settings_each_have_their_line(production_app):
    unsafe = {
        "SECRET_KEY": "change-me-change-me-change-me-change-me", "WTF_CSRF_ENABLED": False,
        "PUBLIC_BASE_URL": "https://elsewhere.example.com", "REQUIRE_MFA": False,
        "MAIL_USE_TLS": False, "HEALTHZ_TOKEN": "short",
    }
    production_app.config.update(unsafe)
    result, ids = run_check(production_app)
    assert result.exit_code == 1
    assert ids == ["security.E001", "security.E003", "security.E012", "security.E008",
                   "mail.E002", "security.E011"]
    production_app.config.update(RATELIMIT_ENABLED=False, MAIL_BACKEND="sink",
                                 PUBLIC_BASE_URL="https://[::1]/")
    assert {"security.E009", "mail.E001", "security.E007"} <= set(run_check(production_app)[1])


@pytest.mark.parametrize("setting, value, problem", [
    ("SESSION_COOKIE_HTTPONLY", False, "cookies.E001"),
    ("SESSION_COOKIE_SAMESITE", None, "cookies.E002"),
    ("SESSION_COOKIE_SAMESITE", "None", "cookies.E002"),
    ("WTF_CSRF_SSL_STRICT", False, "csrf.E001"),
    ("PROXY_FIX_X_HOST", 1, "proxy.E001"),
    ("PROXY_FIX_X_HOST", "2", "proxy.E001"),
    ("TRUSTED_HOSTS", ["portal.example.com", ".example.com"], "hosts.E001"),
    ("PASSWORD_HASH_METHOD", "scrypt", "passwords.E001"),
    ("PASSWORD_HASH_METHOD", "scrypt:16384:8:1", "passwords.E001"),
    ("PASSWORD_HASH_METHOD", "pbkdf2:sha256:1000", "passwords.E001"),
    ("PASSWORD_HASH_METHOD", "plain", "passwords.E001"),
    ("PASSWORD_MIN_LENGTH", 8, "passwords.E002"),
    ("LOGIN_MAX_FAILURES", 11, "passwords.E003"),
    ("LOGIN_MAX_FAILURES", 0, "passwords.E003"),
])
def test_loosened_cookie_proxy_and_password_settings_fail(production_app, setting, value,
                                                          problem):
    production_app.config[setting] = value
    result, ids = run_check(production_app)
    assert result.exit_code == 1 and ids == [problem], result.output


@pytest.mark.parametrize("setting, value", [
    ("SESSION_COOKIE_SAMESITE", "Strict"), ("PASSWORD_HASH_METHOD", "scrypt:262144:8:1"),
    ("PASSWORD_HASH_METHOD", "pbkdf2:sha256:600000"), ("PASSWORD_MIN_LENGTH", 15),
    ("LOGIN_MAX_FAILURES", 10),
])
def test_stricter_settings_pass(production_app, setting, value):
    production_app.config[setting] = value
    assert run_check(production_app)[1] == []


def test_an_all_digit_healthz_token_from_the_environment_works(tmp_path, monkeypatch):
    """from_prefixed_env reads FLASK_HEALTHZ_TOKEN as JSON: all digits, a number."""
    token = "".join(secrets.choice("123456789") for _ in range(40))
    monkeypatch.setenv("FLASK_HEALTHZ_TOKEN", token)
    config = {key: value for key, value in PRODUCTION.items() if key != "HEALTHZ_TOKEN"}
    with fresh_database("sqlite", tmp_path) as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, **config})
        with app.app_context():
            upgrade()
        assert app.config["HEALTHZ_TOKEN"] == token
        assert run_check(app)[1] == []
        response = app.test_client().get(
            "/healthz?detail=1", headers={"Authorization": f"Bearer {token}"},
            base_url="https://portal.example.com")
        assert response.status_code == 200, response.text
        assert response.get_json()["status"] == "ok"
        # Set as a number in a config file, the check measures it as written.
        app.config["HEALTHZ_TOKEN"] = int(token[:20])
        assert run_check(app)[1] == ["security.E011"]
        with app.app_context():
            db.engine.dispose()


def test_an_unreachable_rate_limit_storage_fails(production_app):
    production_app.config["RATELIMIT_STORAGE_URI"] = "redis://:hunter2@127.0.0.1:1/0"
    result, ids = run_check(production_app)
    assert result.exit_code == 1 and ids == ["security.E013"]
    assert "(redis) does not answer" in result.stdout and "hunter2" not in result.output


def test_a_database_behind_the_code_fails(production_app):
    with production_app.app_context():
        db.session.execute(db.text("UPDATE alembic_version SET version_num = '24365363c030'"))
        db.session.commit()
    result, ids = run_check(production_app)
    assert result.exit_code == 1 and ids == ["database.E002"]
    assert "it is at 24365363c030" in result.stdout
    assert "flask --app portal db upgrade" in result.stdout


@pytest.mark.parametrize("url", [
    "sqlite:///{tmp_path}/portal.sqlite3",  # a typo in the path: not created by the check
    "postgresql+psycopg://portal:hunter2-secret@127.0.0.1:1/portal",  # nothing listens
])
def test_an_unreachable_database_fails(tmp_path, url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url.format(tmp_path=tmp_path), **PRODUCTION})
    result, ids = run_check(app)
    assert result.exit_code == 1 and ids == ["database.E001"]
    assert "hunter2" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_due_email_waiting_is_a_warning_then_an_error(production_app):
    with time_machine.travel(NOW, tick=False), production_app.app_context():
        add_outbox_email("queued", NOW - timedelta(minutes=5))  # a sender's normal delay
        add_outbox_email("queued", NOW + timedelta(hours=3))  # waiting out its back-off
        add_outbox_email("sent", NOW - timedelta(days=3))
        db.session.commit()
        assert run_check(production_app)[1] == []
        add_outbox_email("queued", NOW - timedelta(minutes=12))
        db.session.commit()
        result, ids = run_check(production_app)
        assert result.exit_code == 0 and ids == ["outbox.W001"]
        assert "waited 12 minutes" in result.stdout
        assert run_check(production_app, "--strict")[0].exit_code == 1
        # A sender that claimed mail and died: due since its lease ran out.
        add_outbox_email("sending", NOW - timedelta(hours=5),
                         claimed_until=to_db(NOW - timedelta(minutes=61)), claimed_by="gone")
        add_outbox_email("failed", NOW - timedelta(days=2))
        db.session.commit()
        result, ids = run_check(production_app)
        assert result.exit_code == 1 and ids == ["outbox.E001", "outbox.W002"]
        assert "waited 61 minutes" in result.stdout


def test_json_output_for_monitoring(production_app):
    production_app.config["REQUIRE_MFA"] = False
    result = production_app.test_cli_runner().invoke(args=["check", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["problems"] == [{
        "id": "security.E008", "level": "error",
        "message": "REQUIRE_MFA is off: staff sign in with a password alone.",
        "fix": "set REQUIRE_MFA = True (staff set up an authenticator at their next sign-in).",
    }]


def test_no_secret_is_ever_printed(production_app):
    production_app.config.update(SECRET_KEY="k" * 40, HEALTHZ_TOKEN="t0ken" * 3)
    result = production_app.test_cli_runner().invoke(args=["check", "--json"])
    assert "kkkk" not in result.output and "t0ken" not in result.output


# -- /healthz ------------------------------------------------------------------

def test_public_healthz_stays_minimal(production_app):
    response = production_app.test_client().get(
        "/healthz", base_url="https://portal.example.com")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize("query", ["?detail=0", "?detail=", "?detail=no", "?other=1"])
@pytest.mark.parametrize("with_token", [False, True])
def test_healthz_only_detail_1_asks_for_the_detail(production_app, query, with_token):
    headers = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
    response = production_app.test_client().get(
        f"/healthz{query}", headers=headers, base_url="https://portal.example.com")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize("authorization", [
    None, "", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer ",
])
def test_healthz_detail_needs_the_token(production_app, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    # Loopback is no proof: behind nginx every request comes from 127.0.0.1.
    response = production_app.test_client().get(
        "/healthz?detail=1", headers=headers, base_url="https://portal.example.com",
        environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 401
    assert response.get_json() == {"status": "unauthorized"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_healthz_detail_is_off_without_a_configured_token(production_app):
    production_app.config["HEALTHZ_TOKEN"] = None
    response = production_app.test_client().get(
        "/healthz?detail=1", headers={"Authorization": "Bearer "},
        base_url="https://portal.example.com")
    assert response.status_code == 401


def test_healthz_detail_shows_the_checks_to_an_operator(production_app):
    client = production_app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = client.get("/healthz?detail=1", headers=auth,
                          base_url="https://portal.example.com")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok",
                                   "problems": []}
    assert response.headers["Cache-Control"] == "no-store"
    production_app.config["PROXY_FIX_X_FOR"] = 0
    assert client.get("/healthz?detail=1", headers=auth,
                      base_url="https://portal.example.com").get_json()["status"] == "warning"
    production_app.config["RATELIMIT_STORAGE_URI"] = "memory://"
    response = client.get("/healthz?detail=1", headers=auth,
                          base_url="https://portal.example.com")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error" and body["database"] == "ok"
    assert [problem["id"] for problem in body["problems"]] == ["security.E010", "security.W001"]


def test_without_a_key_the_command_line_says_so_in_one_line(tmp_path):
    env = {**os.environ, "FLASK_SECRET_KEY": '""', "FLASK_DEBUG": "0",
           "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "check"],
                            env=env, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: security.E001 [error] SECRET_KEY is missing or weak (fewer than 32 characters "
        "or fewer than 10 different ones). Fix: set FLASK_SECRET_KEY to the output of "
        "`python -c 'import secrets; print(secrets.token_hex(32))'`, the same for every "
        "worker and host."]


def test_the_example_instance_configuration_passes_once_a_key_is_set():
    example = {}
    exec((ROOT / "instance" / "config.example.py").read_text(), example)  # noqa: S102
    settings = {key: value for key, value in example.items() if key.isupper()}
    # No placeholder key to forget: copied as is, the app refuses to start.
    assert "SECRET_KEY" not in settings
    config = {**{key: getattr(defaults, key) for key in dir(defaults) if key.isupper()},
              **settings, "SECRET_KEY": secrets.token_hex(32),
              # As the factory derives it.
              "SESSION_COOKIE_SECURE": settings["PREFERRED_URL_SCHEME"] == "https"}
    problems = readiness.check_configuration(config, debug=False, testing=False)
    # The storage's answer depends on this machine's Redis; every setting is right.
    assert [problem.id for problem in problems if problem.id != "security.E013"] == []


def test_calendars_on_private_networks_are_not_for_the_internet():
    config = {**PRODUCTION, "SESSION_COOKIE_SECURE": True}
    allowed = {**config, "CALENDAR_ALLOW_PRIVATE_URLS": True}
    before = {p.id for p in readiness.check_configuration(config, debug=False, testing=False)}
    after = {p.id for p in readiness.check_configuration(allowed, debug=False, testing=False)}
    assert after - before == {"security.E020"}
