"""Several hosts at once: two gunicorn instances on different ports share one
PostgreSQL database and one Redis, three `outbox work` senders deliver to a real
SMTP server (aiosmtpd), and 200 simulated clients race through the whole request
flow for 40 bookable times: eligibility, a time, about you, check your answers
(where the request is stored, all at once), the emailed code,
the confirmation page.

    .venv/bin/python bench/several_hosts.py [--clients 200] [--postgres URL] [--redis URL]

Each client has its own cookie jar and its own loopback source address
(127.1.x.y), because the rate limiter keys on the client's address; its steps go
to the two instances in turn (sessions are signed cookies, nothing is sticky).
Everything listens on 127.0.0.1 only.

Prints bookings made against times available, double bookings (a query on the
database), emails queued against emails received (by Message-ID and by
recipient), whether the rate limit counts across both instances, and p50/p95
latency of each step. Exits 1 when an invariant fails; timings are printed only.
The whole run is bounded (--max-seconds, 300 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import lxml.html
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import BENCH_ENCRYPTION_KEY, free_port, throwaway_postgres  # noqa: E402
from portal import create_app  # noqa: E402
from portal.booking.availability import available_slots  # noqa: E402
from portal.booking.scheduling import PACIFIC  # noqa: E402
from portal.booking.statuses import HOLDS_SLOT_SQL  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.messages.models import OutboxEmail  # noqa: E402
from portal.models import ConsultationRequest  # noqa: E402
from tests.factories import make_therapist  # noqa: E402

BIN = ROOT / ".venv" / "bin"
TIMES = 40  # two therapists, ten hours each on their own day: 2 x 20 half hours
HORIZON_DAYS = 7  # so that each therapist's weekday comes round once in the window
MAX_TRIES = 12  # tries with a time before settling for "none of these times work"
WAIT_FOR_CODE = 60.0
REQUEST_TIMEOUT = 60.0
ELIGIBLE = {"ca_resident": "yes", "zip_code": "94110", "in_california": "yes", "adult": "yes"}
CODE = re.compile(r"^\s*(\d{6})\s*$", re.MULTILINE)
RATE_LIMIT_ADDRESS = "127.2.0.1"


def client_address(n: int) -> str:
    return f"127.1.{n // 250}.{n % 250 + 1}"


# -- the SMTP server ----------------------------------------------------------------

class Mailbox:
    """aiosmtpd handler: keeps every message taken (Message-ID, recipients) and wakes
    the clients waiting for mail to their address (on the clients' event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.lock = threading.Lock()
        self.received: list[tuple[str, list[str]]] = []
        self.by_recipient: dict[str, list] = defaultdict(list)
        self.waiters: dict[str, list[asyncio.Future]] = defaultdict(list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        recipients = [address.lower() for address in envelope.rcpt_tos]
        with self.lock:
            self.received.append((str(message["Message-ID"]), recipients))
        self.loop.call_soon_threadsafe(self._arrived, recipients, message, time.perf_counter())
        return "250 OK"

    def _arrived(self, recipients, message, at: float) -> None:
        for address in recipients:
            self.by_recipient[address].append((message, at))
            for waiter in self.waiters.pop(address, []):
                if not waiter.done():
                    waiter.set_result(None)

    async def first_message(self, address: str, timeout: float):
        """The first message to ``address`` and when it arrived (perf_counter)."""
        address = address.lower()
        deadline = time.perf_counter() + timeout
        while not self.by_recipient[address]:
            waiter = self.loop.create_future()
            self.waiters[address].append(waiter)
            await asyncio.wait_for(waiter, max(0.01, deadline - time.perf_counter()))
        return self.by_recipient[address][0]


# -- the processes ----------------------------------------------------------------

class Processes:
    """The servers this script starts, each in its own process group, stopped by id."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen, signal.Signals]] = []

    def start(self, name: str, argv: list[str], env: dict, stop_with=signal.SIGTERM) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.started.append((name, process, stop_with))

    def check_running(self) -> None:
        for name, process, _ in self.started:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def problems(self) -> tuple[Counter, list[str]]:
        """Lines in the servers' logs that say something went wrong, counted, and the
        last lines of each log that has any."""
        found, excerpts = Counter(), []
        for path in sorted(self.logs.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()
            before = sum(found.values())
            for line in lines:
                for sign in ("WORKER TIMEOUT", "Traceback", "[ERROR]", "[CRITICAL]"):
                    if sign in line:
                        found[f"{path.stem}: {sign}"] += 1
            if sum(found.values()) > before:
                excerpts.append(f"-- {path.stem} (last lines):\n" + "\n".join(lines[-12:]))
        return found, excerpts

    def stop(self, names: tuple[str, ...] | None = None, timeout: float = 15) -> None:
        chosen = [item for item in self.started if names is None or item[0].startswith(names)]
        for _, process, sig in chosen:
            if process.poll() is None:
                os.killpg(process.pid, sig)
        deadline = time.monotonic() + timeout
        for _, process, _ in chosen:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.started = [item for item in self.started if item not in chosen]


def portal_env(config: dict) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update({f"FLASK_{key}": str(value) for key, value in config.items()})
    return env


def wait_healthy(bases: list[str], processes: Processes, timeout: float = 60) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    for base in bases:
        while True:
            processes.check_running()
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base} did not answer /healthz in {timeout:.0f} s")
            time.sleep(0.3)


# -- seeding ----------------------------------------------------------------------

def seed(config: dict) -> int:
    """Two therapists, each with ten hours on one day (the third and fourth day from
    today in Pacific time: past the minimum notice). Returns the times bookable."""
    app = create_app(dict(config))
    with app.app_context():
        first = datetime.now(UTC).astimezone(PACIFIC).date() + timedelta(days=3)
        for day in (first, first + timedelta(days=1)):
            make_therapist(hours=[(day.weekday(), "08:00", "18:00")])
        db.session.commit()
        bookable = sum(len(ids) for ids in available_slots("any").values())
        db.session.remove()
        db.engine.dispose()
    return bookable


# -- one simulated client ------------------------------------------------------------

def form_fields(html: str, action: str, answers: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """What a person would send with the form posting to ``action``: the page's own
    inputs, filled from ``answers`` where given; other radio groups get their checked
    value, else "yes", else their first; checkboxes are ticked (the first of a
    group); hidden and other inputs keep their values (the honeypot stays empty).
    Returns the fields and the slot times offered (without "none")."""
    page = lxml.html.fromstring(html)
    form = next(f for f in page.forms if (f.get("action") or "").split("?")[0].endswith(action))
    fields: list[tuple[str, str]] = []
    radios: dict[str, list] = defaultdict(list)
    boxes: dict[str, list] = defaultdict(list)
    for element in form.xpath(".//input[@name] | .//select[@name] | .//textarea[@name]"):
        name, kind = element.get("name"), (element.get("type") or "text").lower()
        if element.tag == "input" and kind == "radio":
            radios[name].append(element)
        elif element.tag == "input" and kind == "checkbox":
            boxes[name].append(element)
        elif element.tag == "input" and kind in ("submit", "button", "image", "reset"):
            continue
        elif element.tag == "select":
            chosen = element.value or next(iter(element.value_options), "")
            fields.append((name, str(answers.get(name, chosen))))
        else:
            fields.append((name, str(answers.get(name, element.value or ""))))
    for name, group in radios.items():
        values = [r.get("value") for r in group]
        checked = next((r.get("value") for r in group if r.checked), None)
        wanted = answers.get(name)
        fields.append((name, wanted if wanted in values else checked
                       or ("yes" if "yes" in values else values[0])))
    for name, group in boxes.items():
        wanted = answers.get(name)
        ticked = [b.get("value") or "on" for b in group
                  if wanted is None or b.get("value") in wanted]
        fields.extend((name, value) for value in (ticked if wanted else ticked[:1]))
    times = [r.get("value") for r in radios.get("slot", []) if r.get("value") != "none"]
    return fields, times


@dataclass
class Outcome:
    email: str
    booked: str | None = None  # the slot value booked, "none", or None when it failed
    slot: str | None = None  # the time chosen last
    busy: int = 0  # 503 answers ("try again in a moment") to the check page's POST
    tries: int = 0
    confirmed: bool = False
    error: str | None = None


@dataclass
class Run:
    bases: list[str]
    mailbox: Mailbox
    clients: int
    tag: str
    timings: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    loaded: int = 0
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    all_loaded: asyncio.Event = field(default_factory=asyncio.Event)


class Client:
    def __init__(self, run: Run, n: int, http: aiohttp.ClientSession):
        self.run, self.n, self.http, self.step = run, n, http, 0
        self.outcome = run.outcomes[n] = Outcome(email=f"client{n}.{run.tag}@example.com")

    async def call(self, label: str, method: str, path: str, data=None):
        base = self.run.bases[(self.n + self.step) % len(self.run.bases)]
        self.step += 1
        self.outcome.error = f"stopped at {label} (instance {'AB'[self.run.bases.index(base)]})"
        started = time.perf_counter()
        async with self.http.request(method, base + path, data=data,
                                     allow_redirects=False) as answer:
            body = await answer.text()
        self.run.timings[label].append(time.perf_counter() - started)
        self.outcome.error = None
        return answer.status, answer.headers.get("Location", ""), body

    def expect(self, ok: bool, what: str) -> None:
        if not ok:
            raise RuntimeError(what)

    def answers(self) -> dict:
        letters = "".join(chr(97 + int(d)) for d in str(self.n))  # names are letters only
        return {**ELIGIBLE, "first_name": "Bench", "last_name": f"Client {letters}",
                "email": self.outcome.email, "phone": f"(415) 555-{1000 + self.n:04d}",
                "meeting": "phone", "therapist": "any", "website": ""}

    async def answer_page(self, path: str, answers: dict, onwards: str, page: str | None = None,
                   label: str | None = None) -> tuple[int, str]:
        """GET a journey page (unless ``page`` is given), POST its form filled from
        ``answers``; expects a redirect to ``onwards``. Returns the status and location."""
        if page is None:
            status, _, page = await self.call(f"GET {path}", "GET", path)
            self.expect(status == 200, f"GET {path}: {status}")
        fields, _ = form_fields(page, path, answers)
        status, location, _ = await self.call(label or f"POST {path}", "POST", path, fields)
        self.expect(status == 302 and urlsplit(location).path == onwards,
                    f"POST {path}: {status} {location}")
        return status, location

    async def walk(self) -> None:
        """The journey of DESIGN "The request flow" v3: eligibility, a time, about you,
        check your answers (where the request is stored: the race), the code."""
        await self.answer_page("/consultation", ELIGIBLE, "/consultation/time")
        status, _, page = await self.call("GET /consultation/time", "GET",
                                          "/consultation/time")
        self.expect(status == 200, f"GET time: {status}")
        await self.choose_time(page)
        await self.answer_page("/consultation/about", self.answers(), "/consultation/check")
        status, _, page = await self.call("GET /consultation/check", "GET",
                                          "/consultation/check")
        self.expect(status == 200, f"GET check: {status}")
        self.run.loaded += 1
        if self.run.loaded >= self.run.clients:
            self.run.all_loaded.set()
        await self.run.all_loaded.wait()  # everyone sends "check your answers" at once: the race
        posted_at = await self.send_request(page)
        await self.confirm_code(posted_at)

    async def choose_time(self, page: str, *, changing: bool = False) -> None:
        """The time page's POST: any of the times offered (with five clients to a time,
        many pick the same), or "none of these times work" after MAX_TRIES."""
        _, times = form_fields(page, "/consultation/time", {})
        slot = random.choice(times) if times and self.outcome.tries < MAX_TRIES else "none"
        self.outcome.slot = slot
        answers = {**self.answers(), "slot": slot, "waitlist": [],
                   **({"from": "check"} if changing else {})}
        onwards = "/consultation/check" if changing else "/consultation/about"
        await self.answer_page("/consultation/time", answers, onwards, page=page)

    async def send_request(self, page: str) -> float:
        while True:
            self.outcome.tries += 1
            label = ("POST check (no time)" if self.outcome.slot == "none"
                     else "POST check (a time)")
            fields, _ = form_fields(page, "/consultation/check", self.answers())
            status, location, _ = await self.call(label, "POST", "/consultation/check", fields)
            if status == 302 and location.endswith("/consultation/verify"):
                self.outcome.booked = self.outcome.slot
                return time.perf_counter()
            if status == 503 and self.outcome.busy < 3:
                # The database was too busy to answer in time (a machine under load): the
                # page asks to try again shortly, as a person would.
                self.outcome.busy += 1
                self.run.timings["POST check (503, sent again)"].append(
                    self.run.timings[label].pop())
                await asyncio.sleep(1)
                continue
            if status == 302 and urlsplit(location).path == "/consultation/time":
                # Too many unconfirmed holds (portal.booking.holds): what the page asks for,
                # "none of these times work", then back here.
                status, _, times = await self.call("GET /consultation/time", "GET",
                                                   location.split("#")[0])
                self.outcome.tries = MAX_TRIES
                await self.choose_time(times, changing=True)
                status, _, page = await self.call("GET /consultation/check", "GET",
                                                  "/consultation/check")
                continue
            self.expect(status == 302 and location.endswith("/consultation/check"),
                        f"check POST: {status} {location}")
            status, _, page = await self.call("GET /consultation/check", "GET",
                                              "/consultation/check")
            self.expect(status == 200 and self.outcome.slot != "none" and "just taken" in page,
                        f"check page after its POST: {status}")
            self.run.timings["POST check (time just taken)"].append(
                self.run.timings[label].pop())
            # The "Change" link of the time, another time, and straight back here.
            status, _, times = await self.call("GET /consultation/time", "GET",
                                               "/consultation/time?from=check")
            self.expect(status == 200, f"GET time again: {status}")
            await self.choose_time(times, changing=True)
            status, _, page = await self.call("GET /consultation/check", "GET",
                                              "/consultation/check")
            self.expect(status == 200, f"GET check again: {status}")

    async def confirm_code(self, posted_at: float) -> None:
        status, _, page = await self.call("GET /consultation/verify", "GET",
                                          "/consultation/verify")
        self.expect(status == 200, f"GET verify: {status}")
        self.outcome.error = "stopped waiting for the code email"
        message, arrived = await self.run.mailbox.first_message(self.outcome.email, WAIT_FOR_CODE)
        self.run.timings["code email at the SMTP server"].append(arrived - posted_at)
        code = CODE.search(message.get_body(("plain",)).get_content())
        self.expect(code is not None, "no code in the first email")
        fields, _ = form_fields(page, "/consultation/verify", {"code": code.group(1)})
        status, location, _ = await self.call("POST /consultation/verify", "POST",
                                              "/consultation/verify", fields)
        self.expect(status == 302 and "/consultation/confirmed/" in location,
                    f"verify POST: {status} {location}")
        status, _, page = await self.call("GET confirmation page", "GET",
                                          urlsplit(location).path)
        self.expect(status == 200, f"confirmation page: {status}")
        self.outcome.confirmed = True


async def one_client(run: Run, n: int) -> Outcome:
    # A new connection for each request: a kept-alive one the server closes after its
    # keep-alive just as the client reuses it fails the POST on it, for no fault of the portal.
    connector = aiohttp.TCPConnector(local_addr=(client_address(n), 0), limit=1,
                                     force_close=True)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1, on either port
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar,
                                     timeout=timeout) as http:
        client = Client(run, n, http)
        started = time.perf_counter()
        try:
            await client.walk()
            run.timings["whole flow, one client"].append(time.perf_counter() - started)
        except Exception as error:  # noqa: BLE001 - reported per client, counted as a failure
            step = client.outcome.error
            client.outcome.error = (f"{step}: " if step else "") + \
                f"{type(error).__name__}: {error}"[:120]
        finally:
            if not run.all_loaded.is_set() and client.outcome.error:
                run.loaded += 1  # a client that failed early must not hold the others back
                if run.loaded >= run.clients:
                    run.all_loaded.set()
        return client.outcome


async def shared_rate_limit(bases: list[str]) -> list[int]:
    """Eligible answers from one address to the two instances in turn, one more than
    CONSULTATION_RATE_LIMIT's per-minute count (3): the statuses of the POSTs."""
    connector = aiohttp.TCPConnector(local_addr=(RATE_LIMIT_ADDRESS, 0), limit=1)
    statuses = []
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for n in range(4):
            base = bases[n % 2]
            async with http.get(f"{base}/consultation") as answer:
                fields, _ = form_fields(await answer.text(), "/consultation", ELIGIBLE)
            async with http.post(f"{base}/consultation", data=fields,
                                 allow_redirects=False) as answer:
                statuses.append(answer.status)
    return statuses


# -- figures ------------------------------------------------------------------------

def percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return statistics.median(values), cuts[18]


def database_figures(config: dict) -> dict:
    app = create_app(dict(config))
    with app.app_context():
        holds = select(ConsultationRequest.therapist_id, ConsultationRequest.slot_start).where(
            text(HOLDS_SLOT_SQL)).group_by(ConsultationRequest.therapist_id,
                                            ConsultationRequest.slot_start)
        figures = {
            "bookings": db.session.scalar(select(func.count()).where(
                ConsultationRequest.status == "new",
                ConsultationRequest.slot_start.is_not(None))),
            "requests": db.session.scalar(select(func.count(ConsultationRequest.id))),
            "pending": db.session.scalar(select(func.count()).where(
                ConsultationRequest.status == "pending")),
            "double": db.session.scalar(select(func.count()).select_from(
                holds.having(func.count() > 1).subquery())),
            "outbox": db.session.execute(select(OutboxEmail.message_id, OutboxEmail.recipient,
                                                OutboxEmail.status)).all(),
        }
        db.session.remove()
        db.engine.dispose()
    return figures


def outbox_drained(config: dict, mailbox: Mailbox, timeout: float) -> float:
    """Waits until no row is left to send and the server has as many messages as
    rows; returns how long that took."""
    from sqlalchemy import create_engine

    engine = create_engine(config["SQLALCHEMY_DATABASE_URI"])
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            with engine.connect() as conn:
                left, total = conn.execute(text(
                    "SELECT count(*) FILTER (WHERE status <> 'sent'), count(*) "
                    "FROM outbox_email")).one()
            with mailbox.lock:
                received = len(mailbox.received)
            if left == 0 and received >= total:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    return time.perf_counter() - started


# -- the run ----------------------------------------------------------------------

async def race(bases: list[str], mailbox: Mailbox, clients: int, tag: str, limit: float):
    """Every client at once; those still going after ``limit`` seconds are stopped
    and count as failed, at the step they were in."""
    run = Run(bases, mailbox, clients, tag)
    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one_client(run, n)) for n in range(clients)]
    await asyncio.wait(tasks, timeout=limit)
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    return run, [o if isinstance(o, Outcome) else run.outcomes[n] for n, o in
                 enumerate(outcomes)], time.perf_counter() - started


def report(args, bookable, run, outcomes, wall, drain, limit_statuses, figures, mailbox) -> int:
    failures = []
    booked = [o for o in outcomes if o.booked not in (None, "none")]
    confirmed = [o for o in outcomes if o.confirmed]
    errors = Counter(o.error[:100] for o in outcomes if o.error)
    print(f"clients {args.clients}, times available {bookable}; wall time of the race "
          f"{wall:.1f} s; outbox drained {drain:.1f} s after it")
    print(f"clients confirmed {len(confirmed)}/{args.clients} "
          f"({len(booked)} with a time, {sum(o.booked == 'none' for o in confirmed)} with "
          f"\"none of these times work\"); check-page POSTs {sum(o.tries for o in outcomes)} "
          f"(max {max(o.tries for o in outcomes)} by one client)")
    for error, count in errors.most_common(5):
        print(f"  client error x{count}: {error}")
    print(f"bookings made {figures['bookings']} (times available {bookable}); "
          f"double bookings {figures['double']}; pending left {figures['pending']}")
    if args.clients > bookable and figures["bookings"] != bookable:
        failures.append("bookings made != times available")
    if figures["double"]:
        failures.append("double bookings")
    if len(confirmed) != args.clients or figures["pending"]:
        failures.append("clients that did not reach the confirmation page")
    if len({o.booked for o in booked}) != len(booked):
        failures.append("two clients were told the same time was theirs")

    queued = Counter(row.message_id for row in figures["outbox"])
    with mailbox.lock:
        received = Counter(message_id for message_id, _ in mailbox.received)
        to = Counter(address for _, recipients in mailbox.received for address in recipients)
    expected_to = Counter(row.recipient.lower() for row in figures["outbox"])
    unsent = sum(row.status != "sent" for row in figures["outbox"])
    lost = sum((queued - received).values())
    duplicated = sum((received - queued).values())
    print(f"emails queued {sum(queued.values())}, received {sum(received.values())} "
          f"(distinct Message-IDs {len(received)}); lost {lost}, duplicated or unknown "
          f"{duplicated}, rows not sent {unsent}; recipients whose count differs "
          f"{sum(1 for a in expected_to.keys() | to.keys() if expected_to[a] != to[a])}")
    if lost or duplicated or unsent or expected_to != to:
        failures.append("emails lost or delivered more than once")

    shared = limit_statuses == [302, 302, 302, 429]
    print(f"rate limit (3 eligible answers a minute per address) across instances A, B, A, B: "
          f"{' '.join(map(str, limit_statuses))} -> "
          f"{'shared through Redis' if shared else 'NOT shared'}")
    if not shared:
        failures.append("rate limit not shared across instances")

    print("latency per step (ms)                 n    p50     p95")
    for label, values in run.timings.items():
        p50, p95 = percentiles(values)
        print(f"  {label:<34} {len(values):>4} {p50 * 1000:>7.0f} {p95 * 1000:>7.0f}")
    for failure in failures:
        print(f"INVARIANT FAILED: {failure}")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL",
                                                          "redis://127.0.0.1:6379/14"))
    parser.add_argument("--max-seconds", type=int, default=300)
    args = parser.parse_args()

    def out_of_time(*_):
        raise TimeoutError(f"the run took more than {args.max_seconds} s")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(args.max_seconds)
    began = time.monotonic()
    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    with tempfile.TemporaryDirectory() as logs, throwaway_postgres(args.postgres) as url:
        processes = Processes(Path(logs))
        loop = asyncio.new_event_loop()
        mailbox = Mailbox(loop)
        smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
        ports = [free_port(), free_port()]
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        config = {
            "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": f"bench-{secrets.token_hex(16)}",
            "ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
            "RATELIMIT_STORAGE_URI": args.redis, "MAIL_BACKEND": "smtp",
            "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp.port, "FORM_MIN_SECONDS": 0,
            "PUBLIC_BASE_URL": bases[0], "BOOKING_HORIZON_DAYS": HORIZON_DAYS,
            "OUTBOX_POLL_SECONDS": 1,
            # Every client races at once for 40 times: the cap on unconfirmed holds per
            # therapist (portal.booking.holds) would send most to "none of these times work"
            # before anyone could take a time. Races are what this measures.
            "UNVERIFIED_HOLDS_PER_THERAPIST": 10 * TIMES,
        }
        env = portal_env(config)
        smtp_started = False
        try:
            if args.redis.startswith("redis://"):
                redis.Redis.from_url(args.redis).flushdb()
            subprocess.run([str(BIN / "flask"), "--app", "portal", "db", "upgrade"], env=env,
                           cwd=ROOT, check=True, capture_output=True)
            bookable = seed(config)
            if bookable != TIMES:
                raise RuntimeError(f"seeded {bookable} bookable times, not {TIMES}")
            smtp.start()
            smtp_started = True
            for name, port in zip("AB", ports, strict=True):
                processes.start(f"web-{name}", [
                    str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                    "--threads", "4", "--graceful-timeout", "10", "--no-control-socket",
                    *(["--access-logfile", "-"] if os.environ.get("BENCH_ACCESS_LOG") else []),
                    "portal:create_app()"], env)
            for n in range(3):
                processes.start(f"outbox-{n}", [str(BIN / "flask"), "--app", "portal",
                                                "outbox", "work"], env, signal.SIGINT)
            wait_healthy(bases, processes)
            limit_statuses = loop.run_until_complete(shared_rate_limit(bases))
            # What is left, less time to drain the outbox (45 s) and stop the servers.
            remaining = max(10.0, args.max_seconds - (time.monotonic() - began) - 90)
            run, outcomes, wall = loop.run_until_complete(
                race(bases, mailbox, args.clients, secrets.token_hex(3), remaining))
            drain = outbox_drained(config, mailbox, timeout=45)
            processes.check_running()
            processes.stop(("outbox",))  # nothing more can be sent: count now
            figures = database_figures(config)
            processes.stop()
            problems, excerpts = processes.problems()
            print("server logs: " + (", ".join(f"{sign} x{count}" for sign, count in
                                               sorted(problems.items())) or "no errors"))
            for excerpt in excerpts:
                print(excerpt)
            return report(args, bookable, run, outcomes, wall, drain, limit_statuses, figures,
                          mailbox)
        except Exception:
            for name, _, _ in processes.started:
                print(f"-- {name} log (last lines):\n{processes.tail(name)}", file=sys.stderr)
            raise
        finally:
            signal.alarm(0)
            processes.stop()
            if smtp_started:
                smtp.stop()
            loop.close()


if __name__ == "__main__":
    sys.exit(main())
