"""Real calendar servers on loopback for the calendar tests: Radicale (CalDAV, the
``radicale`` package, htpasswd users with plain passwords, a throw-away storage folder)
and a plain-HTTP iCalendar file server (``http.server``) that answers ETags and
``If-None-Match``, and can be told to stall, redirect or answer an error.

Register the fixtures in a test module with ``from tests.calendar_servers import
radicale, ics_server  # noqa: F401``.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import free_port

RADICALE_USER, RADICALE_PASSWORD = "maya", "radicale-app-password-1"


def wait_for_port(port: int, process: subprocess.Popen | None = None, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@dataclass
class Radicale:
    port: int
    base: str

    def client(self, user: str = RADICALE_USER, password: str = RADICALE_PASSWORD):
        import caldav
        return caldav.DAVClient(url=self.base, username=user, password=password, timeout=10)

    def new_calendar(self, name: str):
        """A fresh, empty calendar of the test user; its URL is ``str(calendar.url)``.
        The server lives for the whole run: each calendar gets a name of its own."""
        principal = self.client().principal()
        unique = f"{name}-{secrets.token_hex(4)}"
        return principal.make_calendar(name=unique, cal_id=unique)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory):
    folder = tmp_path_factory.mktemp("radicale")
    users = folder / "users"
    users.write_text(f"{RADICALE_USER}:{RADICALE_PASSWORD}\n")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{port}",
         "--storage-filesystem-folder", str(folder / "collections"),
         "--auth-type", "htpasswd", "--auth-htpasswd-filename", str(users),
         "--auth-htpasswd-encryption", "plain", "--auth-delay", "0",
         "--logging-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield Radicale(port, f"http://127.0.0.1:{port}/")
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class IcsFile:
    body: bytes
    status: int = 200
    delay: float = 0.0  # seconds before answering (a server that stalls)
    location: str | None = None  # answer a redirect there


@dataclass
class IcsServer:
    port: int
    files: dict[str, IcsFile] = field(default_factory=dict)
    requests: list[tuple[str, dict]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: str | bytes, **options) -> str:
        self.files[path] = IcsFile(body.encode() if isinstance(body, str) else body, **options)
        return self.url(path)


def _handler(server_state: IcsServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's hook name
            server_state.requests.append((self.path, dict(self.headers)))
            served = server_state.files.get(self.path)
            if served is None:
                self.send_error(404)
                return
            if served.delay:
                time.sleep(served.delay)
            if served.location:
                self.send_response(302)
                self.send_header("Location", served.location)
                self.end_headers()
                return
            etag = '"' + hashlib.sha256(served.body).hexdigest()[:16] + '"'
            if served.status == 200 and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(served.status)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(served.body)))
            self.send_header("ETag", etag)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(served.body)  # the portal may cut the answer off

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="session")
def ics_server_session():
    state = IcsServer(free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", state.port), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def ics_server(ics_server_session):
    ics_server_session.files.clear()
    ics_server_session.requests.clear()
    return ics_server_session
