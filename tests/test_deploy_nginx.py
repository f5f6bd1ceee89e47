"""The portal as deployed: the committed nginx site (TLS with a throw-away certificate)
in front of gunicorn started with the web unit's own command line, on PostgreSQL and
Redis, configured by the committed environment file, checked over HTTPS.

Needs nginx (Debian's), openssl, PostgreSQL (TEST_DATABASE_URL) and Redis
(TEST_REDIS_URL or redis://127.0.0.1:6379/15). Skips without them, unless CI or
REQUIRE_NGINX=1 is set, when it fails instead: `.ci/run` installs nginx.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.conftest import new_postgres_database
from tests.deploy import INSTALL_DIR, NGINX_SITE, ROOT, UNITS, read_env, read_unit, render

pytestmark = pytest.mark.slow

NGINX = Path("/usr/sbin/nginx")
HOST = "portal.test"
REQUIRED = os.environ.get("REQUIRE_NGINX") == "1" or bool(os.environ.get("CI"))
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
HSTS = "max-age=63072000; includeSubDomains"
LOGIN_LIMIT = 3


def need(ready: bool, why: str) -> None:
    if not ready:
        if REQUIRED:
            pytest.fail(f"{why} (CI or REQUIRE_NGINX=1 is set, so this is a failure)")
        pytest.skip(why)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(ready, what: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited: {log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what} did not start: {log.read_text()[-3000:]}")


@dataclass
class Site:
    work: Path
    certificate: Path
    https_port: int
    http_port: int
    socket_path: Path
    env: dict[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)


class SiteConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 that asks for (SNI) and checks the certificate of HOST."""

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=HOST)


class UnixConnection(http.client.HTTPConnection):
    """Straight to gunicorn's socket, past nginx."""

    def __init__(self, path: Path):
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str


def fetch(connection: http.client.HTTPConnection, method: str, path: str,
          headers: dict[str, str], body: bytes | None = None) -> Answer:
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read().decode())
    finally:
        connection.close()


def https(site: Site, method: str, path: str, *, source: str = "127.0.0.1",
          host: str | None = None, headers: dict[str, str] | None = None,
          body: bytes | None = None) -> Answer:
    context = ssl.create_default_context(cafile=str(site.certificate))
    connection = SiteConnection("127.0.0.1", site.https_port, context=context, timeout=10,
                                source_address=(source, 0))
    sent = {"Host": host or f"{HOST}:{site.https_port}", **(headers or {})}
    return fetch(connection, method, path, sent, body)


def flask(site: Site, *args: str, env: dict[str, str] | None = None):
    return subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "portal", *args],
                          cwd=ROOT, env=env or site.env, capture_output=True, text=True,
                          timeout=120, check=False)


def production_env(database_url: str) -> dict[str, str]:
    """deploy/portal.env with this test's secret, host, database and Redis."""
    template = read_env()
    ours = {
        "FLASK_SECRET_KEY": secrets.token_hex(32),
        "FLASK_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
        "FLASK_PUBLIC_BASE_URL": f"https://{HOST}",
        "FLASK_TRUSTED_HOSTS": json.dumps([HOST]),
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
        "FLASK_RATELIMIT_STORAGE_URI": REDIS_URL,
    }
    assert ours.keys() <= template.keys()  # only the values an administrator changes
    test_only = {
        # This run's counters never meet another's in the shared Redis.
        "FLASK_RATELIMIT_KEY_PREFIX": f"deploy-test-{secrets.token_hex(4)}",
        "FLASK_LOGIN_RATE_LIMIT": f"{LOGIN_LIMIT} per 5 minutes",
        # The suite's own instance folder, never the checkout's (which `make run` fills).
        "PORTAL_INSTANCE_PATH": os.environ["PORTAL_INSTANCE_PATH"],
    }
    outside = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PORTAL_"))}
    return {**outside, **template, **ours, **test_only}


def start_gunicorn(site: Site) -> None:
    command = read_unit(UNITS / "portal-web.service")["Service"]["ExecStart"]
    argv = shlex.split(command.replace(INSTALL_DIR, str(ROOT)))
    # systemd hands the unit its socket; here gunicorn binds the same kind itself.
    argv[-1:-1] = ["--bind", f"unix:{site.socket_path}"]
    log = site.work / "gunicorn.log"
    with log.open("w") as out:  # the child keeps its own copy
        process = subprocess.Popen(argv, cwd=ROOT, env=site.env, stdout=out,
                                   stderr=subprocess.STDOUT)
    site.processes.append(process)

    def healthy() -> bool:
        answer = fetch(UnixConnection(site.socket_path), "GET", "/healthz", {"Host": HOST})
        return answer.status == 200
    wait_until(healthy, "gunicorn", process, log)


def start_nginx(site: Site, key: Path) -> None:
    work = site.work
    # nginx's workers (nobody) read the static files: a copy in the world-readable work
    # folder, since a checkout may sit in a folder only its owner can enter (mktemp's).
    static = work / "static"
    shutil.copytree(ROOT / "static", static)
    for path in [static, *static.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (work / "portal.conf").write_text(render(
        NGINX_SITE,
        SERVER_NAME=HOST,
        HTTPS_LISTEN=f"127.0.0.1:{site.https_port}",
        HTTP_LISTEN=f"127.0.0.1:{site.http_port}",
        UPSTREAM=f"unix:{site.socket_path}",
        STATIC_ROOT=str(static),
        LOG_DIR=str(work),
        TLS_CERTIFICATE=str(site.certificate),
        TLS_CERTIFICATE_KEY=str(key),
    ))
    temp = " ".join(f"{kind}_temp_path {work}/{kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # Like Debian's nginx.conf: an http-wide access log in the combined format, which
    # the site must override (it would hold query strings).
    (work / "nginx.conf").write_text(f"""
        worker_processes 1;
        pid {work}/nginx.pid;
        error_log {work}/nginx.error.log;
        events {{ worker_connections 64; }}
        http {{
            include /etc/nginx/mime.types;
            {temp}
            access_log {work}/nginx.access.log combined;
            include {work}/portal.conf;
        }}
    """)
    base = [str(NGINX), "-p", str(work), "-c", str(work / "nginx.conf"),
            "-e", str(work / "nginx.error.log")]
    checked = subprocess.run([*base, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    log = work / "nginx.out"
    with log.open("w") as out:
        process = subprocess.Popen([*base, "-g", "daemon off;"], stdout=out,
                                   stderr=subprocess.STDOUT)
    site.processes.append(process)

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", site.https_port), timeout=1):
            return True
    wait_until(listening, "nginx", process, log)


@pytest.fixture(scope="module")
def site():
    need(NGINX.exists(), f"nginx is not installed ({NGINX}; apt-get install nginx-light)")
    need(shutil.which("openssl") is not None, "openssl is not installed")
    need(bool(os.environ.get("TEST_DATABASE_URL")), "TEST_DATABASE_URL is not set")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        reachable = True
    except redis.exceptions.ConnectionError:
        reachable = False
    need(reachable, f"Redis is not reachable at {REDIS_URL}")
    # Its own database: `db upgrade` builds it from nothing, as on a new server (the
    # suite's shared one already holds tables).
    with new_postgres_database(os.environ["TEST_DATABASE_URL"]) as database_url:
        yield from _site(database_url)


def _site(database_url: str):
    # Short and world-traversable: a unix socket path has a length limit, and nginx's
    # workers (nobody) reach gunicorn's socket through it.
    work = Path(tempfile.mkdtemp(prefix="portal-deploy-"))
    work.chmod(0o755)
    certificate, key = work / "cert.pem", work / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}",
                    "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True, timeout=60)
    built = Site(work=work, certificate=certificate, https_port=free_port(),
                 http_port=free_port(), socket_path=work / "web.sock",
                 env=production_env(database_url))
    try:
        upgraded = flask(built, "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        start_gunicorn(built)
        start_nginx(built, key)
        yield built
    finally:
        for process in reversed(built.processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)


def set_cookies(answer: Answer) -> list[str]:
    return answer.headers.get_all("Set-Cookie") or []


def test_pages_and_static_files_carry_one_hsts_header(site):
    page = https(site, "GET", "/consultation")
    assert page.status == 200 and "988" in page.text
    assert page.headers.get_all("Strict-Transport-Security") == [HSTS]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    css = https(site, "GET", "/static/css/portal.css")
    assert css.status == 200
    assert css.headers.get_all("Strict-Transport-Security") == [HSTS]
    # Served by nginx (the portal sends no max-age and a CSP on every answer).
    assert css.headers["Cache-Control"] == "max-age=3600"
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in css.headers


def test_plain_http_goes_to_https(site):
    answer = fetch(http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=10),
                   "GET", "/consultation?from=ad", {"Host": HOST})
    assert answer.status == 301
    assert answer.headers["Location"] == f"https://{HOST}/consultation?from=ad"


def test_the_session_cookie_is_secure_httponly_and_samesite(site):
    cookies = set_cookies(https(site, "GET", "/admin/login"))
    assert cookies, "the sign-in page sets the session cookie (its CSRF token)"
    for cookie in cookies:
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly"} <= attributes, cookie
        assert re.search(r";\s*SameSite=Lax", cookie, re.IGNORECASE), cookie


def test_the_rate_limit_counts_each_client_address_apart(site):
    form = https(site, "GET", "/admin/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text) or \
        re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    cookie = set_cookies(form)[0].split(";")[0]

    def sign_in(source: str, **headers: str) -> int:
        body = (f"csrf_token={token.group(1)}&email=nobody-{secrets.token_hex(4)}"
                "%40example.com&password=not-the-password").encode()
        answer = https(site, "POST", "/admin/login", source=source, body=body, headers={
            # nginx passes the Host without the port ($host), as a browser on 443 sends it.
            "Cookie": cookie, "Referer": f"https://{HOST}/admin/login",
            "Content-Type": "application/x-www-form-urlencoded", **headers})
        assert answer.status in (200, 429), answer.text
        return answer.status

    assert [sign_in("127.0.0.1") for _ in range(LOGIN_LIMIT)] == [200] * LOGIN_LIMIT
    assert sign_in("127.0.0.1") == 429
    # An address the client makes up is not the one counted: nginx sends its own.
    assert sign_in("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"}) == 429
    # Another address, through the same nginx, has its own count.
    assert sign_in("127.0.0.2") == 200


def test_a_forged_host_is_refused_by_nginx_and_by_the_portal(site):
    # nginx's catch-all server closes the connection without an answer (444).
    with pytest.raises(http.client.RemoteDisconnected):
        https(site, "GET", "/consultation", host="evil.example")
    with pytest.raises(http.client.RemoteDisconnected):
        fetch(http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=10),
              "GET", "/", {"Host": "evil.example"})
    # Past nginx, the portal's TRUSTED_HOSTS refuses it too.
    assert fetch(UnixConnection(site.socket_path), "GET", "/consultation",
                 {"Host": "evil.example"}).status == 400
    assert fetch(UnixConnection(site.socket_path), "GET", "/consultation",
                 {"Host": HOST}).status == 200


def test_scheme_headers_the_client_sends_never_reach_the_portal(site):
    # gunicorn trusts its unix socket's peer for these; nginx sends its own or none.
    for header, value in [("X-Forwarded-Proto", "http"), ("X-Forwarded-Ssl", "off"),
                          ("X-Forwarded-Protocol", "plain"), ("Forwarded", "proto=http")]:
        answer = https(site, "GET", "/admin/login", headers={header: value})
        assert answer.status == 200, f"{header}: {answer.status}"
        assert all("secure" in cookie.lower() for cookie in set_cookies(answer)), header


def test_a_body_over_the_limit_is_refused_by_nginx(site):
    answer = https(site, "POST", "/consultation", body=b"a=" + b"x" * 200_000,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 413
    assert "<center>nginx</center>" in answer.text  # never reached gunicorn


def test_the_access_log_holds_no_query_string_and_no_secret_from_a_path(site):
    sentinel = f"Sentinel{secrets.token_hex(6)}"
    email = f"z{secrets.token_hex(2)}@ex.co"  # too short to look like a token
    short_secret = secrets.token_hex(6)
    secret_paths = {
        f"/admin/requests?q={sentinel}%40example.com": "/admin/requests",
        f"/manage/{sentinel}.{secrets.token_urlsafe(24)}/cancel?why=x": "/manage/:token/cancel",
        f"/manage/{sentinel}.{secrets.token_urlsafe(24)}": "/manage/:token",
        f"/consultation/confirmed/{sentinel}{secrets.token_urlsafe(16)}":
            "/consultation/confirmed/:id",
        f"/admin/password/set/{sentinel}.{secrets.token_urlsafe(20)}":
            "/admin/password/set/:token",
        # The short link in texts: shorter than the tokens the last rule catches.
        f"/t/1a-{short_secret}": "/t/:token",
        # A token-like segment on a page added later is masked too.
        f"/waitlist/{sentinel}{secrets.token_urlsafe(16)}/rebook": "/waitlist/:token/rebook",
        # An address pasted into the location bar, plain or percent-encoded.
        f"/admin/requests/{email}/notes": "/admin/requests/:email/notes",
        f"/{email.replace('@', '%40')}": "/:email",
    }
    for path in secret_paths:
        https(site, "GET", path)
    with pytest.raises(http.client.RemoteDisconnected):
        https(site, "GET", f"/manage/{sentinel}?q={sentinel}", host="evil.example")

    time.sleep(0.2)
    lines = (site.work / "portal.access.log").read_text().splitlines()
    logged = " ".join(lines)
    for shown in secret_paths.values():
        assert f"GET {shown} HTTP/1.1" in logged
    assert "127.0.0.1 [" in logged  # who asked, for abuse; never what they typed
    for path in site.work.glob("*.log"):
        text = path.read_text()
        assert sentinel.lower() not in text.lower(), f"{path.name}: {text[-2000:]}"
        assert email.split("@")[0] not in text, f"{path.name}: {text[-2000:]}"
        assert short_secret not in text, f"{path.name}: {text[-2000:]}"
        assert "?" not in text or path.name == "nginx.error.log", path.name
    # The http-wide combined log (with query strings) never sees this site.
    combined = site.work / "nginx.access.log"
    assert not combined.exists() or combined.read_text() == ""


def test_flask_check_passes_on_this_configuration_and_fails_on_the_defaults(site):
    passed = flask(site, "check")
    assert passed.returncode == 0, passed.stdout + passed.stderr

    outside = {k: v for k, v in site.env.items() if not k.startswith(("FLASK_", "PORTAL_"))}
    outside["PORTAL_INSTANCE_PATH"] = site.env["PORTAL_INSTANCE_PATH"]
    # The defaults (an empty key, as in deploy/portal.env, wins over any instance/config.py).
    keyless = flask(site, "check", env={**outside, "FLASK_SECRET_KEY": ""})
    assert keyless.returncode != 0
    assert "SECRET_KEY" in keyless.stdout + keyless.stderr
    # Without the encryption key (empty, as in deploy/portal.env) it fails too.
    no_encryption_key = flask(site, "check", env={**site.env, "FLASK_ENCRYPTION_KEYS": ""})
    assert no_encryption_key.returncode != 0
    assert "ENCRYPTION_KEYS" in no_encryption_key.stdout + no_encryption_key.stderr
    # The defaults with keys, on the migrated database: one line per unsafe setting.
    defaults = {**outside, "FLASK_SECRET_KEY": site.env["FLASK_SECRET_KEY"],
                "FLASK_ENCRYPTION_KEYS": site.env["FLASK_ENCRYPTION_KEYS"],
                "FLASK_SQLALCHEMY_DATABASE_URI": site.env["FLASK_SQLALCHEMY_DATABASE_URI"]}
    failed = flask(site, "check", env=defaults)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    lines = {line.split(" ", 1)[0]: line for line in failed.stdout.splitlines()}
    expected = {"security.E004": "PREFERRED_URL_SCHEME", "security.E005": "TRUSTED_HOSTS",
                "security.E006": "PUBLIC_BASE_URL", "security.E007": "PUBLIC_BASE_URL",
                "security.E010": "RATELIMIT_STORAGE_URI", "mail.W001": "MAIL_USE_TLS"}
    for problem, setting in expected.items():
        assert setting in lines.get(problem, ""), said
    # The database is this site's, migrated: the failures are the settings alone.
    assert not any(problem.startswith("database.") for problem in lines), said
