"""Delivery of the email outbox: claim what is due, send it, record what happened.

Any number of senders may run at once (``outbox work`` processes, the
in-process background sender of ``make run``). Each run claims a batch of
due rows in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) by giving them a lease; a lease left behind by
a dead sender expires and the rows are claimed again. Messages of a batch go
over one SMTP connection and each is marked sent in its own transaction as
soon as the server took it, so a crash resends at most that one message (with
the same Message-ID). A failure counts the attempt and schedules the next one
with exponential back-off and jitter; after ``OUTBOX_MAX_ATTEMPTS`` (or a
permanent 5xx refusal) the row is ``failed`` and shows up for the admins.

Unlike domain functions, ``deliver_due`` commits: its marks must be durable
one by one. Log lines carry the row id, kind and outcome, never an address or
any content.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import smtplib
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from flask_mail import BadHeaderError, Message
from sqlalchemy import and_, or_, select, update

from portal import notifications
from portal.database import begin_write
from portal.extensions import db
from portal.mail_transport import MESSAGE_ERRORS, build_message, open_transport
from portal.models import OutboxEmail, to_db, utcnow

log = logging.getLogger("portal.outbox")
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0  # rows still queued after this run (due later, or backing off)

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed

    def summary(self) -> str:
        return (f"Sent {self.sent}, will retry {self.retrying}, failed for good {self.failed}; "
                f"{self.waiting} waiting in the outbox.")


@dataclass
class Claimed:
    id: int
    kind: str
    attempts: int
    message: Message | None
    build_error: Exception | None = None


def new_run_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def deliver_due(now: datetime | None = None, *, include_waiting: bool = False,
                limit: int | None = None) -> DeliveryReport:
    """Send every due message (with ``include_waiting``, also those backing off).

    SMTP trouble is recorded on the rows, never raised; anything else (the
    database, a template) is a portal fault and propagates.
    """
    now = now or datetime.now(UTC)
    run_id = new_run_id()
    batch_size = int(current_app.config["OUTBOX_BATCH_SIZE"])
    report = DeliveryReport()
    while limit is None or report.attempted < limit:
        size = batch_size if limit is None else min(batch_size, limit - report.attempted)
        batch = claim_batch(now, run_id, size, include_waiting=include_waiting)
        if not batch:
            break
        send_batch(batch, now, run_id, report)
    report.waiting = db.session.scalar(
        select(db.func.count(OutboxEmail.id)).where(OutboxEmail.status == "queued")
    )
    db.session.commit()
    return report


def claim_batch(now: datetime, run_id: str, size: int, *,
                include_waiting: bool = False) -> list[Claimed]:
    """Lease up to ``size`` due rows to this run and return what is needed to send them."""
    stamp = to_db(now)
    queued = OutboxEmail.status == "queued"
    if not include_waiting:
        queued = and_(queued, OutboxEmail.next_attempt_at <= stamp)
    abandoned = and_(OutboxEmail.status == "sending", OutboxEmail.claimed_until < stamp)
    begin_write()
    ids = db.session.scalars(
        select(OutboxEmail.id)
        .where(or_(queued, abandoned))
        # A row this run already tried (and re-queued) waits for the next run.
        .where(or_(OutboxEmail.claimed_by.is_(None), OutboxEmail.claimed_by != run_id))
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        db.session.rollback()
        return []
    lease = timedelta(seconds=int(current_app.config["OUTBOX_LEASE_SECONDS"]))
    # The attempt is counted at claim time, so a message that kills its sender
    # still runs out of attempts instead of being retried forever.
    db.session.execute(
        update(OutboxEmail).where(OutboxEmail.id.in_(ids))
        .values(status="sending", claimed_until=stamp + lease, claimed_by=run_id,
                attempts=OutboxEmail.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    rows = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.id.in_(ids)).order_by(OutboxEmail.id)
    ).all()
    claimed = [_claimed(row) for row in rows]
    db.session.commit()
    return claimed


def _claimed(row: OutboxEmail) -> Claimed:
    try:
        return Claimed(row.id, row.kind, row.attempts, build_message(row))
    except (ValueError, TypeError, BadHeaderError) as error:
        return Claimed(row.id, row.kind, row.attempts, None, error)


def send_batch(batch: list[Claimed], now: datetime, run_id: str,
               report: DeliveryReport) -> None:
    """Send a claimed batch over one connection; a connection failure fails the rest."""
    pending = list(batch)
    try:
        with open_transport() as transport:
            while pending:
                item = pending[0]
                if item.message is None:
                    _record_failure([item], item.build_error, now, run_id, report,
                                    permanent=True)
                else:
                    try:
                        transport.send(item.message, item.kind)
                    except MESSAGE_ERRORS as error:
                        _record_failure([item], error, now, run_id, report,
                                        permanent=_is_permanent(error))
                    else:
                        _mark_sent(item, run_id, report)
                pending.pop(0)
    except OSError as error:  # smtplib's errors, refused connections and timeouts
        _record_failure(pending, error, now, run_id, report)


def _mark_sent(item: Claimed, run_id: str, report: DeliveryReport) -> None:
    begin_write()
    db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == run_id)
        .values(status="sent", sent_at=utcnow(), claimed_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    report.sent += 1
    log.info("outbox id=%s kind=%s outcome=sent attempt=%s", item.id, item.kind, item.attempts)


def _record_failure(items: list[Claimed], error: Exception | None, now: datetime, run_id: str,
                    report: DeliveryReport, *, permanent: bool = False) -> None:
    if not items:
        return
    max_attempts = int(current_app.config["OUTBOX_MAX_ATTEMPTS"])
    description = describe_error(error)
    begin_write()
    for item in items:
        give_up = permanent or item.attempts >= max_attempts
        values = {"status": "failed"} if give_up else {
            "status": "queued", "next_attempt_at": to_db(now + backoff(item.attempts)),
        }
        db.session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == run_id,
                   OutboxEmail.status == "sending")
            # claimed_by stays: it keeps this run from claiming the row again.
            .values(claimed_until=None, last_error=description[:500], **values)
            .execution_options(synchronize_session=False)
        )
        if give_up:
            report.failed += 1
        else:
            report.retrying += 1
        log.warning("outbox id=%s kind=%s outcome=%s attempt=%s error=%s", item.id, item.kind,
                    "failed" if give_up else "retry", item.attempts, error_code(error))
    db.session.commit()


def backoff(attempts: int) -> timedelta:
    """Exponential in the attempts so far, capped, with jitter so retries spread out."""
    base = float(current_app.config["OUTBOX_BACKOFF_BASE_SECONDS"])
    delay = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


def _is_permanent(error: Exception) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    return getattr(error, "smtp_code", 0) >= 500


def error_code(error: Exception | None) -> str:
    """What a log line may say about an error: its type and SMTP code, no server text."""
    if error is None:
        return "unknown"
    code = getattr(error, "smtp_code", None)
    return f"{type(error).__name__}" + (f" {code}" if code else "")


def describe_error(error: Exception | None) -> str:
    """What the admins see on the row."""
    if error is None:
        return "unknown error"
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error.decode("utf-8", "replace") if isinstance(
            error.smtp_error, bytes) else str(error.smtp_error)
        return f"{type(error).__name__}: {error.smtp_code} {text}"
    return f"{type(error).__name__}: {error}"


def forget_sent_bodies(now: datetime | None = None) -> int:
    """Drop the content of messages sent long enough ago; the delivery record stays."""
    now = now or datetime.now(UTC)
    cutoff = to_db(now - timedelta(days=int(current_app.config["OUTBOX_KEEP_BODIES_DAYS"])))
    begin_write()
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.status == "sent", OutboxEmail.sent_at < cutoff,
               OutboxEmail.body_text.is_not(None))
        .values(body_text=None, body_html=None, ics=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def work_once(now: datetime | None = None) -> tuple[int, DeliveryReport]:
    """One round of a sender: queue due reminders, then deliver what is due."""
    begin_write()
    reminders = notifications.queue_due_reminders(now)
    db.session.commit()
    return reminders, deliver_due(now)


# -- the in-process sender for `make run` --------------------------------------

class BackgroundSender:
    """A daemon thread doing ``work_once`` every ``OUTBOX_POLL_SECONDS``."""

    FORGET_EVERY_SECONDS = 600

    def __init__(self, app: Flask):
        self.app = app
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.stopping.clear()
                self.thread = threading.Thread(target=self._run, name="outbox-sender",
                                               daemon=True)
                self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self) -> None:
        poll = float(self.app.config["OUTBOX_POLL_SECONDS"])
        forgot_at = 0.0
        while not self.stopping.is_set():
            try:
                with self.app.app_context():
                    work_once()
                    if time.monotonic() - forgot_at > self.FORGET_EVERY_SECONDS:
                        forget_sent_bodies()
                        forgot_at = time.monotonic()
            except Exception as error:  # keep the thread alive; the next round retries
                log.error("outbox background sender round failed: %s", type(error).__name__)
            self.stopping.wait(poll)


def start_background_sender(app: Flask, *, lazy: bool = True) -> BackgroundSender:
    """Attach a background sender to ``app``; started by the first request when ``lazy``.

    Starting lazily keeps CLI commands (``db upgrade``, ``seed-demo``) from
    sending, and starts the thread inside each server process after any fork.
    """
    sender = BackgroundSender(app)
    app.extensions["outbox_sender"] = sender
    if lazy:
        app.before_request(sender.start)
    else:
        sender.start()
    return sender
