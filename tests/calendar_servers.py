"""Real calendar servers on loopback for the calendar tests, and the one copy of what
those tests share: Radicale (CalDAV, the ``radicale`` package, htpasswd users with
plain passwords, a throw-away storage folder); a plain-HTTP iCalendar file server
(``http.server``) that answers ETags and ``If-None-Match``, and can be told to stall,
redirect, answer an error or stream an endless chunked body; the calendar tests'
``app_config`` and ``ctx`` fixtures; calendar text builders, the test events, and
connecting a therapist to a calendar.

Register the fixtures in a test module by importing them: ``from tests.calendar_servers
import app_config, ctx, ics_server, ics_server_session, radicale  # noqa: F401``.
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
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import free_port

RADICALE_USER, RADICALE_PASSWORD = "maya", "radicale-app-password-1"
ENDLESS_CAP = 30 * 1024 * 1024


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
    endless: bool = False  # stream a chunked body without end (and no Content-Length)


@dataclass
class IcsServer:
    port: int
    files: dict[str, IcsFile] = field(default_factory=dict)
    requests: list[tuple[str, dict]] = field(default_factory=list)
    streamed: int = 0  # bytes of endless bodies written so far

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
            if served.endless:
                self.stream_forever(served)
                return
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

        do_PROPFIND = do_REPORT = do_GET  # noqa: N815 - what a CalDAV client asks first

        def stream_forever(self, served: IcsFile):
            """A 200 (207 to a CalDAV client) whose chunked body never ends: the body,
            then the same bytes again, until the reader hangs up (or, for a reader that
            never would, until ENDLESS_CAP bytes, so that the test ends and fails)."""
            self.protocol_version = "HTTP/1.1"  # chunked needs it
            self.close_connection = True
            self.send_response(200 if self.command == "GET" else 207)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = served.body or b"X-FILLER:" + b"x" * 60_000 + b"\r\n"
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                while server_state.streamed < ENDLESS_CAP:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    server_state.streamed += len(chunk)

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
    ics_server_session.streamed = 0
    return ics_server_session


# -- what every calendar test module shares ------------------------------------------

@pytest.fixture
def app_config():
    """Calendars on loopback allowed; a read gives up after 5 s (a test that needs a
    stalled server to time out sooner sets CALENDAR_TIMEOUT_SECONDS itself)."""
    return {"CALENDAR_ALLOW_PRIVATE_URLS": True, "CALENDAR_TIMEOUT_SECONDS": 5}


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


LA = ZoneInfo("America/Los_Angeles")
# Sunday, March 7, 2027, noon Pacific: the 21-day horizon crosses the March DST change.
MARCH = datetime(2027, 3, 7, 12, 0, tzinfo=LA)
# Saturday, October 30, 2027, noon Pacific: the horizon crosses the November change.
OCTOBER = datetime(2027, 10, 30, 12, 0, tzinfo=LA)


def la(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=LA)


def vcalendar(*events: str, extra: str = "") -> str:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + extra
            + "".join(events) + "END:VCALENDAR\r\n")


def vevent(uid: str, start: str, end: str, *lines: str) -> str:
    body = "".join(line + "\r\n" for line in lines)
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART{start}\r\n"
            f"DTEND{end}\r\nSUMMARY:Private appointment\r\n{body}END:VEVENT\r\n")


ALL_DAY = vevent("allday@example.com", ";VALUE=DATE:20270312", ";VALUE=DATE:20270313")
ALL_DAY_BUSY = [(la(12, 0), la(13, 0))]


def many_events(count: int, first: datetime, every_minutes: int = 60
                ) -> tuple[str, list[tuple[datetime, datetime]]]:
    """``count`` half-hour events, one every ``every_minutes`` from ``first``."""
    from datetime import timedelta

    events, busy = [], []
    for n in range(count):
        begins = first + timedelta(minutes=every_minutes * n)
        ends = begins + timedelta(minutes=30)
        events.append(vevent(f"e{n}@example.com", f":{begins:%Y%m%dT%H%M%SZ}",
                             f":{ends:%Y%m%dT%H%M%SZ}"))
        busy.append((begins, ends))
    return vcalendar(*events), busy


def new_therapist() -> int:
    from portal.extensions import db
    from tests.factories import make_therapist

    tid = make_therapist().id
    db.session.commit()
    return tid


def picker(therapist_id: int) -> set[datetime]:
    """The times the picker offers for the therapist now, worked out afresh."""
    from portal.booking.availability import available_slots
    from portal.extensions import db

    db.session.rollback()
    return set(available_slots(str(therapist_id)))


def covered(slots: set[datetime], ranges) -> set[datetime]:
    from portal.booking.scheduling import SLOT_LENGTH

    return {s for s in slots if any(b < s + SLOT_LENGTH and s < e for b, e in ranges)}


def assert_removes_exactly(before: set[datetime], after: set[datetime], busy) -> None:
    expected = covered(before, busy)
    assert expected, "the busy ranges must hit offered times, or the test proves nothing"
    assert before - after == expected
    assert after <= before


def connect_ics(therapist_id: int, url: str) -> None:
    from portal.booking.therapists import Therapist
    from portal.calendars import connections
    from portal.extensions import db

    connections.connect(db.session.get_one(Therapist, therapist_id), "ics", url)
    db.session.commit()


def connect_caldav(therapist_id: int, url: str, password: str = RADICALE_PASSWORD) -> None:
    from portal.booking.therapists import Therapist
    from portal.calendars import connections
    from portal.extensions import db

    connections.connect(db.session.get_one(Therapist, therapist_id), "caldav", url,
                        username=RADICALE_USER, password=password)
    db.session.commit()


def radicale_calendar(server: Radicale, name: str, events: list[str]):
    """A new Radicale calendar holding ``events``, one calendar object each."""
    calendar = server.new_calendar(name)
    for event in events:
        calendar.save_event(vcalendar(event))
    return calendar
