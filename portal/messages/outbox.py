"""Delivery of the email outbox: claim what is due, send it, record what happened.

Any number of senders may run at once (``outbox work`` processes, the
in-process background sender of ``make run``). Each run claims a small batch of
due rows in one short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) by giving them a short lease
(``OUTBOX_LEASE_SECONDS``), which it renews before a send whenever less than
three quarters of it are left. A sender that dies (``kill -9``, a lost host) stops
renewing, so its other claimed rows are free again within one lease and go out
with the next sender's round: within 30 seconds with the defaults. Messages of
a batch go over one SMTP connection and each is marked sent in its own
transaction as soon as the server took it, so a crash resends at most that one
message (with the same Message-ID: SMTP and a database cannot commit together).
Marking checks that the row is still this run's; when it is not (its lease ran
out and another sender took it, or it was purged with its request) the
message went out anyway, and that is logged rather than raised.

Emails about one request leave in the order they were queued: a row is only
claimed when no earlier row of its request is still queued or being sent
(``superseded`` and ``failed`` rows no longer hold anything up). Two senders
therefore never overtake each other within a request, and a message that is
backing off holds back the later ones of its request (not anyone else's).

A failure counts the attempt and schedules the next one with exponential
back-off and jitter. Someone is waiting at the code page for a code email (or the
"already" note sent in its place), so those retry within seconds, never more than
``OUTBOX_CODE_MAX_BACKOFF_SECONDS`` apart, for as long as the request's hold lasts;
other mail keeps the slow schedule. After ``OUTBOX_MAX_ATTEMPTS`` (or a permanent 5xx
refusal) the row is ``failed`` and shows up for the admins; ``upkeep.retry_failed`` puts
failed rows back in the queue once the cause is fixed. Leases and abandonment always
follow the real clock; the ``now`` a caller passes only decides what is due.

Unlike domain functions, ``deliver_due`` commits: its marks must be durable
one by one. A sender's whole round (expired holds, due reminders, then this) is
``portal.messages.upkeep.work_once``. Log lines carry the row id, kind and outcome,
never an address or any content.
"""

from __future__ import annotations

import logging
import math
import os
import random
import secrets
import smtplib
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_mail import Message
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from portal.database import begin_write
from portal.extensions import db
from portal.messages.kinds import URGENT_KINDS, Channel
from portal.messages.models import OutboxEmail
from portal.messages.outbox_errors import describe_error, error_code
from portal.messages.outbox_states import UNSENT, OutboxState
from portal.messages.transport import MESSAGE_ERRORS, Transport, build_message, open_transport
from portal.models import to_db, utcnow

log = logging.getLogger("portal.messages.outbox")
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int | None = None  # rows still queued (see waiting_count), when asked for

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed

    def summary(self) -> str:
        done = f"Sent {self.sent}, will retry {self.retrying}, failed for good {self.failed}"
        if self.waiting is None:
            return f"{done}."
        return f"{done}; {self.waiting} waiting in the outbox."


@dataclass
class Claimed:
    id: int
    kind: str
    attempts: int
    message: Message | None
    build_error: Exception | None = None
    lost: bool = False  # another sender took it over: not ours to send


class Batch(list):
    """The rows one claim leased, in sending order; their lease ends together."""

    def __init__(self, items=(), leased_until: datetime | None = None) -> None:
        super().__init__(items)
        self.leased_until = leased_until  # naive UTC, as stored


def new_run_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


def deliver_due(now: datetime | None = None, *, include_waiting: bool = False) -> DeliveryReport:
    """Send every message due at ``now`` (with ``include_waiting``, also those backing off).

    SMTP trouble and unsendable messages are recorded on their rows, never
    raised; anything else (the database) is a portal fault and propagates.
    """
    now = now or datetime.now(UTC)
    run_id = new_run_id()
    batch_size = int(current_app.config["OUTBOX_BATCH_SIZE"])
    report = DeliveryReport()
    while batch := claim_batch(now, run_id, batch_size, include_waiting=include_waiting,
                               report=report):
        send_batch(batch, now, run_id, report)
    return report


def waiting_count() -> int:
    """Rows still queued: due later, or backing off. For what a command prints."""
    return db.session.scalar(
        select(db.func.count(OutboxEmail.id)).where(OutboxEmail.status == OutboxState.QUEUED)
    )


def _lease() -> timedelta:
    return timedelta(seconds=float(current_app.config["OUTBOX_LEASE_SECONDS"]))


def claim_batch(now: datetime, run_id: str, size: int, *, include_waiting: bool = False,
                report: DeliveryReport | None = None,
                channel: str = Channel.EMAIL) -> Batch:
    """Lease up to ``size`` rows due at ``now`` to this run; what is needed to send them.
    ``channel``: emails, or the calendar writes of portal.calendars.delivery; each keeps
    a request's rows in order on its own."""
    # A long run's `now` lies in the past: leases from it would be expired already.
    clock = utcnow()
    queued = OutboxEmail.status == OutboxState.QUEUED
    if not include_waiting:
        queued = and_(queued, OutboxEmail.next_attempt_at <= to_db(now))
    abandoned = and_(OutboxEmail.status == OutboxState.SENDING, OutboxEmail.claimed_until < clock)
    earlier = aliased(OutboxEmail)
    waits_its_turn = exists().where(earlier.request_id == OutboxEmail.request_id,
                                    earlier.channel == OutboxEmail.channel,
                                    earlier.id < OutboxEmail.id, earlier.status.in_(UNSENT))
    begin_write()
    given_up = _fail_exhausted(clock)
    if report is not None:
        report.failed += given_up
    ids = db.session.scalars(
        select(OutboxEmail.id)
        .where(or_(queued, abandoned), OutboxEmail.channel == channel)
        # A row this run already tried (and re-queued) waits for the next run.
        .where(or_(OutboxEmail.claimed_by.is_(None), OutboxEmail.claimed_by != run_id))
        # One request's mail in queue order. Under SKIP LOCKED an earlier row another
        # sender is claiming right now still reads as queued here, so this holds
        # between senders too.
        .where(~waits_its_turn)
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        db.session.commit()
        return Batch()
    # The attempt is counted at claim time, so a message that kills its sender
    # still runs out of attempts instead of being retried forever.
    db.session.execute(
        update(OutboxEmail).where(OutboxEmail.id.in_(ids))
        .values(status=OutboxState.SENDING, claimed_until=clock + _lease(), claimed_by=run_id,
                attempts=OutboxEmail.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    rows = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.id.in_(ids)).order_by(OutboxEmail.id)
    ).all()
    claimed = Batch((_claimed(row) for row in rows), leased_until=clock + _lease())
    db.session.commit()
    return claimed


def _fail_exhausted(clock: datetime) -> int:
    """Abandoned rows out of attempts become ``failed`` (inside the claim's transaction).

    Such a row most likely kills whoever sends it; claiming it again would
    repeat that forever, each time counting one more attempt.
    """
    max_attempts = int(current_app.config["OUTBOX_MAX_ATTEMPTS"])
    rows = db.session.execute(
        select(OutboxEmail.id, OutboxEmail.kind, OutboxEmail.attempts, OutboxEmail.channel)
        .where(OutboxEmail.status == OutboxState.SENDING, OutboxEmail.claimed_until < clock,
               OutboxEmail.attempts >= max_attempts)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return 0
    db.session.execute(
        update(OutboxEmail).where(OutboxEmail.id.in_([row.id for row in rows]))
        .values(status=OutboxState.FAILED, claimed_until=None,
                last_error="Gave up: every attempt ended without an answer from its sender")
        .execution_options(synchronize_session=False)
    )
    for row in rows:
        log.warning("outbox id=%s kind=%s outcome=failed attempt=%s error=abandoned",
                    row.id, row.kind, row.attempts)
    texts = [row.id for row in rows if row.channel == Channel.SMS]
    if texts:
        # A text given up on still reaches the client: by email, as any text that
        # fails for good (its state for staff, the fallback email).
        from portal.texts.delivery import fail_for_good

        for text_id in texts:
            fail_for_good(db.session.get(OutboxEmail, text_id), None)
    return len(rows)


def _claimed(row: OutboxEmail) -> Claimed:
    if row.channel != Channel.EMAIL:  # its writer reads the row itself
        return Claimed(row.id, row.kind, row.attempts, None)
    try:
        return Claimed(row.id, row.kind, row.attempts, build_message(row))
    except Exception as error:  # one unsendable row must not stop its batch
        return Claimed(row.id, row.kind, row.attempts, None, error)


def send_batch(batch: Batch, now: datetime, run_id: str, report: DeliveryReport) -> None:
    """Send a claimed batch over one connection; a connection failure fails the rest."""
    pending = list(batch)
    leased_until = getattr(batch, "leased_until", None)  # a plain list: renew at once
    try:
        with open_transport() as transport:
            while pending:
                if running_out(leased_until):
                    leased_until = renew_leases(pending, run_id)
                _send_one(transport, pending[0], now, run_id, report)
                pending.pop(0)
    except OSError as error:  # smtplib's errors, refused connections and timeouts
        record_failure(pending, error, now, run_id, report)


def _send_one(transport: Transport, item: Claimed, now: datetime, run_id: str,
              report: DeliveryReport) -> None:
    if item.message is None:
        record_failure([item], item.build_error, now, run_id, report, permanent=True)
        return
    if item.lost:
        log.info("outbox id=%s kind=%s outcome=skipped reason=lease-lost", item.id, item.kind)
        return
    try:
        transport.send(item.message, item.kind)
    except MESSAGE_ERRORS as error:
        record_failure([item], error, now, run_id, report, permanent=_is_permanent(error))
    except OSError:
        raise  # the connection is gone: send_batch retries this one and the rest later
    except Exception as error:  # a bad message (e.g. unencodable) fails alone, for good
        record_failure([item], error, now, run_id, report, permanent=True)
        transport.reset()
    else:
        mark_sent(item, run_id, report)


def running_out(leased_until: datetime | None) -> bool:
    """Less than three quarters of the lease left: renew before sending.

    So every send starts with at least 3/4 of a lease (15 s by default) ahead of
    it. A send that outlasts what is left loses the row to the next sender that
    claims, which sends it again (same Message-ID).
    """
    left = leased_until - utcnow() if leased_until else timedelta(0)
    return left < _lease() * 3 / 4


def renew_leases(items: list[Claimed], run_id: str) -> datetime:
    """Extend this run's lease on the rest of its batch; mark rows no longer ours as lost.

    Without it a slow batch outlives the lease taken at claim time, another
    sender takes the rest over, and both send them. Renewing only when half the
    lease is gone keeps it to one short transaction now and then per batch.
    Returns when the renewed lease ends.
    """
    ids = [item.id for item in items if not item.lost]
    clock = utcnow()
    begin_write()
    mine = and_(OutboxEmail.id.in_(ids), OutboxEmail.claimed_by == run_id,
                OutboxEmail.status == OutboxState.SENDING)
    db.session.execute(update(OutboxEmail).where(mine).values(claimed_until=clock + _lease())
                       .execution_options(synchronize_session=False))
    still_ours = set(db.session.scalars(select(OutboxEmail.id).where(mine)))
    db.session.commit()
    for item in items:
        item.lost = item.lost or item.id not in still_ours
    return clock + _lease()


def mark_sent(item: Claimed, run_id: str, report: DeliveryReport) -> None:
    """Record that the server took the message, if the row is still this run's.

    It may not be: the lease ran out during a very slow send and another sender
    took the row (it may send it again, with the same Message-ID), or the row
    was purged with its request. The message is out either way; the batch
    carries on, and the log says so.
    """
    begin_write()
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == run_id,
               OutboxEmail.status == OutboxState.SENDING)
        .values(status=OutboxState.SENT, sent_at=utcnow(), claimed_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        log.warning("outbox id=%s kind=%s outcome=sent-unrecorded attempt=%s "
                    "reason=no-longer-claimed", item.id, item.kind, item.attempts)
        return
    report.sent += 1
    log.info("outbox id=%s kind=%s outcome=sent attempt=%s", item.id, item.kind, item.attempts)


def record_failure(items: list[Claimed], error: Exception | None, now: datetime, run_id: str,
                    report: DeliveryReport, *, permanent: bool = False) -> None:
    if not items:
        return
    max_attempts = int(current_app.config["OUTBOX_MAX_ATTEMPTS"])
    description = describe_error(error)
    # Back-off from the later of `now` and the clock: a long run's `now` is stale.
    base = max(now, datetime.now(UTC))
    begin_write()
    for item in items:
        give_up = permanent or item.attempts >= max(max_attempts, _urgent_attempts(item.kind))
        values = {"status": OutboxState.FAILED} if give_up else {
            "status": OutboxState.QUEUED,
            "next_attempt_at": to_db(base + backoff(item.attempts, item.kind)),
        }
        result = db.session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == run_id,
                   OutboxEmail.status == OutboxState.SENDING)
            # claimed_by stays: it keeps this run from claiming the row again.
            .values(claimed_until=None, last_error=description[:500], **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            continue  # recorded already, or another sender owns it now
        if give_up:
            report.failed += 1
        else:
            report.retrying += 1
        log.warning("outbox id=%s kind=%s outcome=%s attempt=%s error=%s", item.id, item.kind,
                    OutboxState.FAILED if give_up else "retry", item.attempts, error_code(error))
    db.session.commit()


def backoff(attempts: int, kind: str | None = None) -> timedelta:
    """Exponential in the attempts so far, capped, with jitter so retries spread out:
    seconds for the mail a person is waiting for (``URGENT_KINDS``), minutes to hours
    for the rest."""
    config = current_app.config
    if kind in URGENT_KINDS:
        base = float(config["OUTBOX_CODE_BACKOFF_BASE_SECONDS"])
        cap = float(config["OUTBOX_CODE_MAX_BACKOFF_SECONDS"])
    else:
        base = float(config["OUTBOX_BACKOFF_BASE_SECONDS"])
        cap = MAX_BACKOFF.total_seconds()
    delay = min(base * 2 ** max(attempts - 1, 0), cap)
    return timedelta(seconds=delay / 2 + random.uniform(0, delay / 2))


def _urgent_attempts(kind: str) -> int:
    """Attempts an urgent message gets: enough to keep trying through the whole hold
    (after it the request, and its mail, are deleted anyway); 0 for other kinds."""
    if kind not in URGENT_KINDS:
        return 0
    config = current_app.config
    hold = float(config["VERIFY_HOLD_MINUTES"]) * 60
    # Each wait is at least half the cap once it is reached (the jitter).
    return math.ceil(hold / (float(config["OUTBOX_CODE_MAX_BACKOFF_SECONDS"]) / 2))


def _is_permanent(error: Exception) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    return getattr(error, "smtp_code", 0) >= 500
