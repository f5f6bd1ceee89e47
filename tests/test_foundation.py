"""The application factory, configuration, headers, error pages and health check."""

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import create_app
from portal.booking.therapists import Therapist
from portal.extensions import db
from tests.checkout import makefile_copy
from tests.conftest import BASE_TEST_CONFIG


def test_refuses_to_start_without_secret_key(monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with pytest.raises(RuntimeError, match="FLASK_SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "change-me"})
    with pytest.raises(RuntimeError, match="fewer than 32 characters"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "short-key"})


@pytest.mark.parametrize("key", [
    "0123456789abcdef0123456789abcde",  # 31 characters: the check would call it weak
    "x" * 64,  # long enough, but hardly a secret
    "change-me-change-me-change-me-change-me",
])
def test_refuses_every_key_the_check_calls_weak(key):
    # One rule: the app never starts with a key `flask --app portal check` fails.
    with pytest.raises(RuntimeError, match="security.E001"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": key})


def test_starts_with_a_real_key():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "SECRET_KEY": "0123456789abcdef0123456789abcdef",
                      "ENCRYPTION_KEYS": BASE_TEST_CONFIG["ENCRYPTION_KEYS"]})
    assert not app.testing
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("FLASK_PRACTICE_NAME", "Test Practice")
    monkeypatch.setenv("FLASK_MAIL_PORT", "2525")
    config = {k: v for k, v in BASE_TEST_CONFIG.items() if k != "MAIL_PORT"}
    app = create_app({**config, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["PRACTICE_NAME"] == "Test Practice"
    assert app.config["MAIL_PORT"] == 2525


def test_https_makes_the_session_cookie_secure():
    app = create_app({**BASE_TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "PREFERRED_URL_SCHEME": "https"})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_personal_data_never_reaches_logs_by_configuration(app):
    assert app.config["SQLALCHEMY_ECHO"] is False
    assert app.config["MAIL_DEBUG"] is False
    with app.app_context():
        assert db.engine.hide_parameters is True


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_reports_an_unreachable_database(tmp_path):
    app = create_app({**BASE_TEST_CONFIG,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_home_page_shows_practice_and_crisis_line(client, app):
    with app.app_context():
        db.session.add(Therapist(name="Ada Example", email="ada@example.com",
                                 licence_type="LMFT", licence_number="12345"))
        db.session.commit()
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    assert 'href="tel:988"' in page and 'href="sms:988"' in page and 'href="tel:911"' in page
    assert 'href="#main"' in page and '<main id="main"' in page
    assert 'name="viewport"' in page
    assert "Ada Example" in page and "LMFT" in page and "12345" in page


@pytest.mark.parametrize("path", ["/", "/healthz", "/does-not-exist"])
def test_security_headers(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    for directive in ["default-src 'self'", "script-src 'self'", "object-src 'none'",
                      "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"]:
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in headers


def test_hsts_over_https(client):
    response = client.get("/", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_static_files_are_cacheable_and_local(client):
    with client.get("/static/css/portal.css") as response:
        assert response.status_code == 200
        assert response.headers.get("Cache-Control") != "no-store"
    page = client.get("/").get_data(as_text=True)
    assert "https://" not in page.split("<body")[0]  # no third-party assets in <head>


def test_not_found_page_in_site_look(client):
    response = client.get("/nope")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)
    assert "tel:988" in response.get_data(as_text=True)


def test_wrong_method_page_keeps_allow_and_says_what_happened(client):
    response = client.get("/admin/logout")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    page = response.get_data(as_text=True)
    assert "Page not found" not in page
    assert "<title>That can’t be done from this page" in page.replace("&#39;", "’")


def test_favicon_is_served_and_linked_on_every_page(client):
    with client.get("/favicon.ico") as response:
        assert response.status_code == 200
        assert response.mimetype in {"image/vnd.microsoft.icon", "image/x-icon"}
        assert response.data[:4] == b"\x00\x00\x01\x00"  # an icon file
        assert response.headers.get("Cache-Control") != "no-store"
    for url in ("/", "/consultation", "/privacy", "/nope"):
        icon = re.search(r'<link rel="icon" href="([^"]+)"', client.get(url).text).group(1)
        with client.get(icon) as response:
            assert response.status_code == 200 and response.mimetype == "image/svg+xml"


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 100}])
def test_oversized_body_gets_413_page(client):
    response = client.post("/consultation", data={"x": "a" * 1000})
    assert response.status_code == 413
    assert "too much" in response.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"TRUSTED_HOSTS": ["portal.example.com"]}])
def test_forged_host_is_refused(client):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/", headers={"Host": "portal.example.com"}).status_code == 200


@pytest.mark.parametrize("app_config", [{"PROPAGATE_EXCEPTIONS": False}])
def test_unexpected_error_shows_500_page_without_traceback(app, client):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "something went wrong" in body
    assert "Traceback" not in body and "secret internals" not in body


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_app):
    with sqlite_app.app_context():
        conn = db.session.connection()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_data_round_trip(app):
    with app.app_context():
        db.session.add(Therapist(name="T", email="t@example.com", licence_type="LCSW",
                                 licence_number="1"))
        db.session.commit()
    with app.app_context():
        assert db.session.scalar(select(Therapist.name)) == "T"


def test_smtp_guard_refuses_connections_outside_the_fixture():
    import smtplib

    with pytest.raises(AssertionError, match="unexpected SMTP connection"):
        smtplib.SMTP("127.0.0.1", 2525, timeout=1)


def test_engine_is_disposed_in_a_forked_child(app):
    import os

    from sqlalchemy import text

    with app.app_context():
        db.session.execute(text("SELECT 1"))
        db.session.remove()
        assert db.engine.pool.checkedin() >= 1
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child reports how many pooled connections it inherited
            os.write(write_end, str(db.engine.pool.checkedin()).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read_end, 10) == b"0"
        os.close(read_end)
        os.close(write_end)


def test_make_writes_the_generated_secret_key_for_the_owner_only(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    makefile_copy(tmp_path)
    subprocess.run(["make", "-s", "instance/config.py"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    written = tmp_path / "instance" / "config.py"
    assert written.read_text().startswith("SECRET_KEY = ")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


@pytest.mark.parametrize("preset, expected", [
    (None, "http://127.0.0.1:5123"),  # links follow the port the demo serves on
    ("https://demo.example", "https://demo.example"),  # a value already set wins
])
def test_make_run_points_email_links_at_the_port_it_serves(tmp_path, preset, expected):
    """Every flask command `make run` runs sees PUBLIC_BASE_URL on the demo's own port
    (here a stand-in for flask that prints what it was given)."""
    root = Path(__file__).resolve().parent.parent
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    makefile_copy(tmp_path)
    for name in ("setup.cfg", "setup.py", "pyproject.toml"):  # the install stamp's inputs
        shutil.copy2(root / name, tmp_path / name)
    (tmp_path / "instance" / "config.py").write_text("SECRET_KEY = 'x' * 64\n")
    printer = (f"{root / '.venv' / 'bin' / 'python'} -c "
               "'import os; print(\"BASE\", os.environ[\"FLASK_PUBLIC_BASE_URL\"])'")
    env = {"PATH": "/usr/bin:/bin", **({"FLASK_PUBLIC_BASE_URL": preset} if preset else {})}
    done = subprocess.run(["make", "-s", "-o", ".venv/.installed", "run", "PORT=5123",
                           f"FLASK={printer}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    given = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("BASE ")]
    assert given == [expected] * 3, done.stdout  # db upgrade, seed-demo, run
