"""``calendars sync`` and the rules around it: it fails closed (a calendar not read for
CALENDAR_STALE_MINUTES offers no times), says why in words, bounds each calendar's work
(a timeout, a size cut-off, 10,000 events) without holding up the others, refuses
private addresses, and a booking or move re-checks the busy ranges under the write lock."""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine
from sqlalchemy import select, text

from portal.booking import consultations
from portal.booking.availability import available_slots, free_therapists_at
from portal.booking.therapists import Therapist
from portal.calendars import connections, reading
from portal.calendars.errors import CalendarError
from portal.calendars.models import TherapistCalendar
from portal.calendars.sync import problems, sync_all
from portal.database import begin_write
from portal.extensions import db
from tests.calendar_servers import (  # noqa: F401 - fixtures
    ALL_DAY,
    ALL_DAY_BUSY,
    ENDLESS_CAP,
    MARCH,
    app_config,
    assert_removes_exactly,
    connect_caldav,
    connect_ics,
    covered,
    ctx,
    ics_server,
    ics_server_session,
    many_events,
    new_therapist,
    picker,
    radicale,
    radicale_calendar,
    vcalendar,
    vevent,
)
from tests.factories import make_request
from tests.test_booking import details


def calendar_row(tid: int) -> TherapistCalendar:
    db.session.rollback()
    return db.session.scalar(select(TherapistCalendar).where(
        TherapistCalendar.therapist_id == tid))


# -- fail closed ---------------------------------------------------------------------

@pytest.mark.parametrize("stale", [15, 5])  # 5: sooner than reused times are worked out again
def test_a_stale_calendar_offers_no_times_until_it_is_read_again(ctx, app, ics_server, stale):  # noqa: F811
    app.config["CALENDAR_STALE_MINUTES"] = stale
    with time_machine.travel(MARCH, tick=False) as traveller:
        tid = new_therapist()
        connect_ics(tid, ics_server.serve("/stale.ics", vcalendar(ALL_DAY)))
        assert picker(tid) == set(), "connected but never read: no times"
        sync_all()
        fresh = set(available_slots(str(tid), reuse=True))
        start = min(s for s in fresh if s > datetime.now(UTC) + timedelta(days=2))
        traveller.shift(timedelta(minutes=stale - 1))
        assert start in available_slots(str(tid), reuse=True)
        assert free_therapists_at(str(tid), start) == [tid]
        traveller.shift(timedelta(minutes=2))  # a minute past CALENDAR_STALE_MINUTES
        db.session.rollback()
        assert available_slots(str(tid), reuse=True) == {}
        assert available_slots(str(tid)) == {}
        assert free_therapists_at(str(tid), start) == []
        with pytest.raises(consultations.SlotTaken):
            begin_write()
            consultations.create_request(details(therapist_choice=str(tid), slot_start=start))
        db.session.rollback()
        [problem] = problems()
        assert problem.stale and problem.therapist_id == tid
        sync_all()  # read again: the times come back at once, reused pages included
        db.session.rollback()
        assert start in available_slots(str(tid), reuse=True)


def test_a_failing_calendar_keeps_its_ranges_until_it_goes_stale(ctx, ics_server):  # noqa: F811
    with time_machine.travel(MARCH, tick=False) as traveller:
        tid, control = new_therapist(), new_therapist()  # control: the same hours, no calendar
        path = "/flaky.ics"
        connect_ics(tid, ics_server.serve(path, vcalendar(ALL_DAY)))
        sync_all()
        ics_server.serve(path, "gone", status=404)
        traveller.shift(timedelta(minutes=5))
        report = sync_all()
        assert report.failed == [(tid, "not_found")]
        assert_removes_exactly(picker(control), picker(tid), ALL_DAY_BUSY)
        row = calendar_row(tid)
        assert row.last_error == "not_found"
        [problem] = problems()
        assert not problem.stale and "Not found" in problem.error
        traveller.shift(timedelta(minutes=11))
        assert picker(tid) == set()


# -- errors, in words ----------------------------------------------------------------

def test_a_wrong_password_is_said_so(ctx, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = new_therapist()
        calendar = radicale_calendar(radicale, f"wrong-{tid}", [ALL_DAY])
        connect_caldav(tid, str(calendar.url), password="not-the-password")
        report = sync_all()
        assert report.failed == [(tid, "unauthorized")]
        [problem] = problems()
        assert problem.error.startswith("Wrong user name or password")
        assert picker(tid) == set()


def test_a_stalled_server_times_out_and_the_others_are_still_read(ctx, app, ics_server):  # noqa: F811
    app.config["CALENDAR_TIMEOUT_SECONDS"] = 1
    with time_machine.travel(MARCH, tick=True):
        slow, quick = new_therapist(), new_therapist()
        before = picker(quick)
        connect_ics(slow, ics_server.serve("/slow.ics", vcalendar(ALL_DAY), delay=3))
        connect_ics(quick, ics_server.serve("/quick.ics", vcalendar(ALL_DAY)))
        report = sync_all()
        assert report.failed == [(slow, "timeout")] and report.read == 1
        assert "Timeout" in problems()[0].error
        assert_removes_exactly(before, picker(quick), ALL_DAY_BUSY)
        assert picker(slow) == set()


@pytest.fixture
def parsed(monkeypatch):
    """How many events each calendar text the sync parses holds."""
    counts: list[int] = []
    parse = reading._parse

    def counting(text):
        counts.append(text.count(b"BEGIN:VEVENT"))
        return parse(text)

    monkeypatch.setattr(reading, "_parse", counting)
    return counts


def test_ten_thousand_events_remove_exactly_their_times(ctx, app, ics_server, parsed):  # noqa: F811
    """Fourteen months of events, one an hour: only those that may fall in the weeks the
    picker shows (about 900) are parsed, in pieces, and their times are exact."""
    # The production bound (20 s): this test is about exact times, and a machine that
    # six people share can take seconds for what takes under one when it is quiet. The
    # bound itself has its own test, with a clock that runs fast.
    app.config["CALENDAR_TIMEOUT_SECONDS"] = 20
    with time_machine.travel(MARCH, tick=True):
        big, other = new_therapist(), new_therapist()
        before_big, before_other = picker(big), picker(other)
        body, busy = many_events(10_000, datetime(2026, 10, 1, tzinfo=UTC))
        connect_ics(big, ics_server.serve("/big.ics", body))
        connect_ics(other, ics_server.serve("/other.ics", vcalendar(ALL_DAY)))
        report = sync_all()
        assert report.read == 2 and not report.failed
        assert 0 < sum(parsed) - 1 < 1_100 and max(parsed) <= reading.PIECE
        assert calendar_row(big).event_count == 10_000
        assert_removes_exactly(before_big, picker(big), busy)
        assert before_big - picker(big) != covered(before_big, busy[:100])  # not just a few
        assert_removes_exactly(before_other, picker(other), ALL_DAY_BUSY)


def test_a_calendar_too_large_is_cut_off(ctx, app, ics_server):  # noqa: F811
    app.config["CALENDAR_MAX_BYTES"] = 50_000
    with time_machine.travel(MARCH, tick=True):
        tid = new_therapist()
        body, _ = many_events(1_000, datetime(2027, 3, 1, tzinfo=UTC))
        connect_ics(tid, ics_server.serve("/huge.ics", body))
        assert sync_all().failed == [(tid, "too_large")]
        assert problems()[0].error.startswith("Too large")


def test_too_many_events_are_refused_unparsed_and_the_others_are_read(  # noqa: F811
        ctx, app, ics_server, parsed):  # noqa: F811
    app.config["CALENDAR_MAX_EVENTS"] = 5_000
    with time_machine.travel(MARCH, tick=True):
        big, other = new_therapist(), new_therapist()
        before = picker(other)
        body, _ = many_events(10_000, datetime(2027, 3, 7, tzinfo=UTC), every_minutes=5)
        connect_ics(big, ics_server.serve("/many.ics", body))
        connect_ics(other, ics_server.serve("/few.ics", vcalendar(ALL_DAY)))
        report = sync_all()
        assert report.failed == [(big, "too_many_events")] and report.read == 1
        assert parsed == [1], "the big one is counted in its text, never parsed"
        [problem] = problems()
        assert problem.therapist_id == big and problem.error.startswith("Too many events:")
        assert picker(big) == set()
        assert_removes_exactly(before, picker(other), ALL_DAY_BUSY)


class SlowClock:
    """The calendar reader's clock, moving ``step`` seconds each time it is read: a
    machine on which parsing is slow, without waiting for one."""

    def __init__(self, step: float):
        self.step, self.offset = step, 0.0

    def monotonic(self) -> float:
        self.offset += self.step
        return time.monotonic() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


def test_a_calendar_too_big_to_read_in_time_stops_and_the_others_are_read(  # noqa: F811
        ctx, app, ics_server, parsed, monkeypatch):  # noqa: F811
    """10,000 events all in the coming weeks: the work stops between pieces once the
    read's CALENDAR_TIMEOUT_SECONDS are spent, says so in words, and the next calendar is
    read as usual."""
    app.config["CALENDAR_TIMEOUT_SECONDS"] = 2
    monkeypatch.setattr(reading, "time", SlowClock(0.4))
    with time_machine.travel(MARCH, tick=True):
        big, other = new_therapist(), new_therapist()
        before = picker(other)
        body, _ = many_events(10_000, datetime(2027, 3, 7, tzinfo=UTC), every_minutes=5)
        connect_ics(big, ics_server.serve("/busy.ics", body))
        connect_ics(other, ics_server.serve("/usual.ics", vcalendar(ALL_DAY)))
        report = sync_all()
        assert report.failed == [(big, "too_slow")] and report.read == 1
        assert len(parsed) - 1 < 10_000 / reading.PIECE, "stopped before the end"
        [problem] = problems()
        assert problem.error.startswith("Too many events to read in time")
        assert_removes_exactly(before, picker(other), ALL_DAY_BUSY)


@pytest.mark.parametrize("source", ["ics", "caldav"])
def test_an_endless_answer_without_a_length_is_cut_off(ctx, app, source, ics_server):  # noqa: F811
    """A server that streams a chunked body and never ends it (no Content-Length to
    refuse up front): the read stops at CALENDAR_MAX_BYTES, says so, and the other
    calendars are read."""
    app.config["CALENDAR_MAX_BYTES"] = 300_000
    with time_machine.travel(MARCH, tick=True):
        tid, other = new_therapist(), new_therapist()
        before = picker(other)
        url = ics_server.serve("/endless.ics", b"", endless=True)
        if source == "ics":
            connect_ics(tid, url)
        else:
            connect_caldav(tid, url)
        connect_ics(other, ics_server.serve("/fine.ics", vcalendar(ALL_DAY)))
        report = sync_all()
        assert report.failed == [(tid, "too_large")] and report.read == 1
        assert ics_server.streamed < ENDLESS_CAP, "the reader hung up, the server did not"
        assert problems()[0].error.startswith("Too large")
        assert_removes_exactly(before, picker(other), ALL_DAY_BUSY)


# -- addresses -----------------------------------------------------------------------

@pytest.mark.parametrize("url, code", [
    ("https://127.0.0.1/c.ics", "refused_address"),
    ("https://localhost/c.ics", "refused_address"),
    ("https://10.1.2.3/c.ics", "refused_address"),
    ("https://192.168.1.10/c.ics", "refused_address"),
    ("https://169.254.169.254/latest/meta-data", "refused_address"),
    ("https://[::1]/c.ics", "refused_address"),
    ("https://[::ffff:10.0.0.1]/c.ics", "refused_address"),
    ("http://93.184.215.14/c.ics", "not_https"),
    ("ftp://example.com/c.ics", "bad_address"),
    ("https://user:pw@93.184.215.14/c.ics", "bad_address"),
])
def test_private_and_plain_addresses_are_refused(ctx, app, url, code):  # noqa: F811
    app.config["CALENDAR_ALLOW_PRIVATE_URLS"] = False
    tid = new_therapist()
    with pytest.raises(CalendarError) as refused:
        connections.connect(db.session.get(Therapist, tid), "ics", url)
    assert refused.value.code == code
    db.session.rollback()
    assert calendar_row(tid) is None


def test_redirects_are_followed_only_to_allowed_addresses(ctx, ics_server):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid, other = new_therapist(), new_therapist()
        before = picker(other)
        ics_server.serve("/real.ics", vcalendar(ALL_DAY))
        connect_ics(other, ics_server.serve("/moved.ics", "", location="/real.ics"))
        connect_ics(tid, ics_server.serve("/away.ics", "", location="http://10.1.2.3/c.ics"))
        report = sync_all()
        assert report.failed == [(tid, "not_https")]
        assert_removes_exactly(before, picker(other), ALL_DAY_BUSY)


@pytest.fixture
def loopback_listener():
    """A TCP port on loopback that counts the connections made to it (and closes them)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1], accepted
    stop_listening(listener)


def stop_listening(listener: socket.socket) -> None:
    """Close a listening socket whose accept() another thread is blocked in (close alone
    leaves it listening until that accept returns)."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


@pytest.mark.parametrize("source", ["ics", "caldav"])
def test_a_name_that_changes_its_answer_is_not_followed_to_loopback(
        ctx, app, source, loopback_listener, monkeypatch):  # noqa: F811
    """DNS rebinding: the calendar's host name answers a public address to the address
    check and loopback to whoever else asks (a resolver that answers public first and
    loopback second, whatever the number of checks). The connection goes to the address
    that was checked, so nothing on loopback is ever reached.

    The resolver is replaced in the process (socket.getaddrinfo, which both the check and
    urllib3 call): a machine with loopback only has no other way to run a name server
    that changes its answers, and a real one would need the network."""
    port, accepted = loopback_listener
    app.config.update(CALENDAR_ALLOW_PRIVATE_URLS=False, CALENDAR_TIMEOUT_SECONDS=1)
    host = "calendar.rebinding.example"
    url = f"https://{host}:{port}/private/calendar.ics"
    tid = new_therapist()
    db.session.add(TherapistCalendar(therapist_id=tid, kind=source, url=url,
                                     username="maya" if source == "caldav" else None,
                                     password="app-password" if source == "caldav" else None))
    db.session.commit()
    answers: list[tuple[str, str]] = []
    resolve = socket.getaddrinfo

    def rebinding(name, *args, **kwargs):
        if name != host:
            return resolve(name, *args, **kwargs)  # an address already: as it is
        asking = sys._getframe(1).f_globals.get("__name__")  # noqa: SLF001
        answer = "93.184.215.14" if asking == "portal.calendars.addresses" else "127.0.0.1"
        answers.append((asking, answer))
        return resolve(answer, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    report = sync_all()
    assert accepted == [], "a connection reached loopback"
    assert answers and all(answer != "127.0.0.1" for _, answer in answers), answers
    assert report.failed and report.failed[0][0] == tid


@pytest.mark.parametrize("source", ["ics", "caldav"])
def test_a_redirect_hop_connects_to_the_address_its_check_saw(  # noqa: F811
        ctx, source, ics_server, monkeypatch):  # noqa: F811
    """Every hop of a redirect is pinned too. The next hop's name answers 127.0.0.1 (where
    the calendar is) to the address check, and 127.0.0.2 (a listener that counts) to
    whoever else asks: the connection must go to 127.0.0.1. Both are loopback (the
    setting allows it here), so the hop can be served; what is tested is which address
    the connection takes. Names are resolved in the process (see the test above)."""
    port = ics_server.port
    counted = socket.create_server(("127.0.0.2", port))
    accepted: list[int] = []

    def accept():
        while True:
            try:
                conn, _ = counted.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    host = "next-hop.portal-test.example"
    resolve = socket.getaddrinfo

    def rebinding(name, *args, **kwargs):
        if name != host:
            return resolve(name, *args, **kwargs)
        asking = sys._getframe(1).f_globals.get("__name__")  # noqa: SLF001
        checked = asking == "portal.calendars.addresses"
        return resolve("127.0.0.1" if checked else "127.0.0.2", *args, **kwargs)

    try:
        with time_machine.travel(MARCH, tick=True):
            tid = new_therapist()
            ics_server.serve("/there.ics", vcalendar(ALL_DAY))
            url = ics_server.serve("/here.ics", "",
                                   location=f"http://{host}:{port}/there.ics")
            if source == "ics":
                connect_ics(tid, url)
            else:
                connect_caldav(tid, url)
            monkeypatch.setattr(socket, "getaddrinfo", rebinding)
            report = sync_all()
            assert accepted == [], "the next hop's connection resolved the name again"
            assert [path for path, _ in ics_server.requests][-1] == "/there.ics"
            if source == "ics":
                assert report.read == 1 and not report.failed
    finally:
        stop_listening(counted)


# -- the re-check under the lock -----------------------------------------------------

def test_a_booking_or_a_move_rechecks_the_calendar_under_the_lock(ctx, ics_server):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        tid = new_therapist()
        path = "/recheck.ics"
        connect_ics(tid, ics_server.serve(path, vcalendar()))
        sync_all()
        shown = available_slots(str(tid), reuse=True)  # the page the visitor saw
        start = datetime(2027, 3, 12, 18, tzinfo=UTC)  # Friday 10:00 PST
        other = datetime(2027, 3, 11, 18, tzinfo=UTC)
        assert start in shown and other in shown
        moved = make_request(db.session.get(Therapist, tid), other, status="scheduled")
        db.session.commit()
        ics_server.serve(path, vcalendar(ALL_DAY))  # meanwhile, in their own calendar
        sync_all()
        begin_write()
        with pytest.raises(consultations.SlotTaken):
            consultations.create_request(details(therapist_choice=str(tid), slot_start=start))
        db.session.rollback()
        begin_write()
        consultation = db.session.get(type(moved), moved.id)
        with pytest.raises(consultations.SlotTaken):
            consultations.reschedule_booking(consultation, start, actor="client")
        db.session.rollback()
        assert db.session.scalar(text("SELECT count(*) FROM consultation_request")) == 1


def test_a_rule_that_repeats_every_minute_is_refused(ctx, ics_server):  # noqa: F811
    event = vevent("minutely@example.com", ":20270301T170000Z", ":20270301T170100Z",
                   "RRULE:FREQ=MINUTELY")
    with time_machine.travel(MARCH, tick=True):
        tid = new_therapist()
        connect_ics(tid, ics_server.serve("/minutely.ics", vcalendar(event)))
        assert sync_all().failed == [(tid, "too_many_events")]


def test_a_second_visit_with_calendars_reads_the_version_and_nothing_else(
        app, client, ics_server):  # noqa: F811
    """Connected calendars cost the time picker nothing per visit: their busy ranges are
    read when the free times are worked out, not on every page."""
    from tests.test_availability_version import shown_times, statements
    from tests.test_public_flow import pass_eligibility

    with app.app_context():
        tid = new_therapist()
        connect_ics(tid, ics_server.serve("/visits.ics", vcalendar(ALL_DAY)))
        sync_all()
    pass_eligibility(client)
    first = shown_times(client)
    assert first
    with statements(app) as sent:
        assert shown_times(client) == first
    assert [s for s in sent if "availability_version" in s], sent
    assert [s for s in sent if re.search(r"\b(calendar_busy|therapist_calendar)\b", s)] == []


def self_signed(folder, name: str) -> tuple[str, str]:
    """A certificate for ``name`` and its key, as PEM files in ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def test_over_https_the_pinned_connection_keeps_the_name_for_host_sni_and_certificate(
        tmp_path, monkeypatch):
    """Connecting to the checked address, not the name, must not lose the name: the
    server gets it in Host and SNI, and its certificate is checked against it (one made
    for another name is refused). Names are resolved in the process (see the rebinding
    test for why)."""
    import ssl
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from portal.calendars import transport

    cert_file, key_file = self_signed(tmp_path, "calendar.portal-test.example")
    seen: dict[str, str | None] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's hook name
            seen["host"] = self.headers["Host"]
            body = vcalendar().encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, _context: seen.__setitem__("sni", name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    resolve = socket.getaddrinfo
    names = ("calendar.portal-test.example", "other.portal-test.example")
    monkeypatch.setattr(socket, "getaddrinfo", lambda name, *args, **kwargs: resolve(
        "127.0.0.1" if name in names else name, *args, **kwargs))
    try:
        with transport.session(max_bytes=100_000, allow_private=True, deadline=None,
                               max_redirects=0) as session:
            session.verify = cert_file  # the test's certificate as the only authority
            port = server.server_port
            response = session.get(f"https://calendar.portal-test.example:{port}/c.ics",
                                   timeout=5)
            assert response.status_code == 200 and response.content.startswith(b"BEGIN")
            assert seen == {"host": f"calendar.portal-test.example:{port}",
                            "sni": "calendar.portal-test.example"}
            with pytest.raises(requests.exceptions.SSLError):
                session.get(f"https://other.portal-test.example:{port}/c.ics", timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_that_is_not_a_calendar_is_refused_even_when_no_event_is_parsed(  # noqa: F811
        ctx, ics_server):  # noqa: F811
    """Events that cannot touch the window are left out unparsed; what is around them is
    still checked: a page that only looks like a calendar in places is no calendar."""
    old = vevent("old@example.com", ":20200101T100000Z", ":20200101T110000Z")
    with time_machine.travel(MARCH, tick=True):
        tid = new_therapist()
        connect_ics(tid, ics_server.serve("/page.ics", "<html><body>\r\n" + old
                                          + "END:VCALENDAR\r\n</body></html>\r\n"))
        assert sync_all().failed == [(tid, "not_calendar")]
