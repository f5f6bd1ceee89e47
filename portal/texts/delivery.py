"""Sending the outbox's ``sms`` rows (see portal.texts.outgoing): claimed, leased,
marked and retried exactly as emails are (portal.messages.outbox), by the same senders
(``outbox work``, ``outbox send``, ``make run``'s background thread).

Just before each send the row is judged again: a request whose consent was withdrawn,
or a number that said STOP, gets nothing (the row is ``superseded``); during quiet
hours the row waits for 8 AM Pacific without losing an attempt, unless its moment
will have passed by then. A sender killed after the provider took a text resends at
most that one (the provider and the database cannot commit together). A text that
fails for good (refused, out of attempts, or reported undelivered) is shown to
staff and its content goes to the client by email instead (``fail_for_good``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import select, update

from portal.database import begin_write
from portal.extensions import db
from portal.messages import outbox
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import OutboxState
from portal.models import ConsultationRequest, as_utc, to_db, utcnow
from portal.texts import backends, compose, consent, numbers
from portal.texts.models import TextMessage
from portal.texts.outgoing import CHANNEL
from portal.texts.states import TextState

log = logging.getLogger("portal.texts")


def work(now: datetime | None = None) -> outbox.DeliveryReport:
    """A sender's round for texts: queue the reminders due, then send what is due.
    Sending runs even when queuing failed (as for email)."""
    from portal.messages.outbox_errors import error_origin
    from portal.texts import outgoing

    try:
        begin_write()
        outgoing.queue_due_reminders(now)
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        log.error("text reminders failed: %s at %s", type(error).__name__, error_origin(error))
    return deliver_due(now)


def deliver_due(now: datetime | None = None) -> outbox.DeliveryReport:
    """Send every text due at ``now``."""
    now = now or datetime.now(UTC)
    run_id = outbox.new_run_id()
    size = int(current_app.config["OUTBOX_BATCH_SIZE"])
    report = outbox.DeliveryReport()
    sender = None
    while batch := outbox.claim_batch(now, run_id, size, report=report, channel=CHANNEL):
        leased_until = batch.leased_until
        for n, item in enumerate(batch):
            if outbox.running_out(leased_until):  # noqa: SLF001 - as calendars do
                leased_until = outbox.renew_leases(batch[n:], run_id)  # noqa: SLF001
            if item.lost:
                continue
            sender = sender or backends.backend()
            send_one(sender, item, now, run_id, report)
    return report


def send_one(sender, item: outbox.Claimed, now: datetime, run_id: str,
             report: outbox.DeliveryReport) -> None:
    row = db.session.get(OutboxEmail, item.id)
    if row is None:  # deleted with its request since the claim: nothing to send
        db.session.rollback()
        log.info("outbox id=%s kind=%s outcome=skipped reason=deleted", item.id, item.kind)
        return
    text = db.session.scalar(select(TextMessage).where(TextMessage.outbox_id == item.id))
    consultation = db.session.get(ConsultationRequest, row.request_id) if row.request_id \
        else None
    given = consent.consent_of(consultation) if consultation is not None else None
    reason = _reason_not_to_send(consultation, given, text, now)
    if reason == "quiet":
        _defer(item, run_id, compose.next_allowed(now))
        return
    if reason:
        _drop(item, run_id, reason)
        return
    number, body = given.phone, row.body_text
    db.session.rollback()  # nothing held while the provider is asked
    try:
        sid = sender.send(number, body, _status_url())
    except backends.SendFailed as error:
        _failed(item, error, now, run_id, report, number)
        return
    begin_write()
    db.session.execute(update(TextMessage).where(TextMessage.outbox_id == item.id)
                       .values(provider_id=sid, state=TextState.SENT, updated_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    outbox.mark_sent(item, run_id, report)  # noqa: SLF001 - the outbox's own step


def _reason_not_to_send(consultation, given, text, now: datetime) -> str | None:
    if consultation is None or given is None or not given.active \
            or consultation.ok_to_text is not True:
        return "no consent"
    if consent.opted_out(given.phone):
        return "the number replied STOP"
    expires = as_utc(text.expires_at) if text is not None else None
    if expires is not None and now >= expires:
        return "its moment passed"
    if compose.is_quiet(now):
        if expires is not None and compose.next_allowed(now) >= expires:
            return "its moment passed during quiet hours"
        return "quiet"
    return None


def _status_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/sms/status"


def _defer(item: outbox.Claimed, run_id: str, until: datetime) -> None:
    """Back in the queue until ``until`` (8 AM), the attempt the claim counted undone."""
    db.session.rollback()
    begin_write()
    db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == run_id,
               OutboxEmail.status == OutboxState.SENDING)
        .values(status=OutboxState.QUEUED, next_attempt_at=to_db(until), claimed_until=None,
                attempts=OutboxEmail.attempts - 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    log.info("outbox id=%s kind=%s outcome=waiting reason=quiet-hours", item.id, item.kind)


def _drop(item: outbox.Claimed, run_id: str, reason: str) -> None:
    db.session.rollback()
    begin_write()
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.id == item.id, OutboxEmail.claimed_by == run_id,
               OutboxEmail.status == OutboxState.SENDING)
        .values(status=OutboxState.SUPERSEDED, claimed_until=None, last_error=f"Not sent: {reason}")
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        db.session.execute(update(TextMessage).where(TextMessage.outbox_id == item.id)
                           .values(state=TextState.DROPPED, updated_at=utcnow())
                           .execution_options(synchronize_session=False))
    db.session.commit()
    log.info("outbox id=%s kind=%s outcome=dropped reason=%s", item.id, item.kind,
             reason.replace(" ", "-"))


def _failed(item: outbox.Claimed, error: backends.SendFailed, now: datetime, run_id: str,
            report: outbox.DeliveryReport, number: str) -> None:
    outbox.record_failure([item], error, now, run_id, report,  # noqa: SLF001
                           permanent=error.permanent)
    begin_write()
    if error.code == backends.UNSUBSCRIBED:
        consent.stop(number, source="carrier", action="unsubscribed")
    row = db.session.get(OutboxEmail, item.id)
    if row is not None and row.status == OutboxState.FAILED:
        fail_for_good(row, str(error.code) if error.code else None)
    db.session.commit()


def fail_for_good(row: OutboxEmail, code: str | None) -> None:
    """A text that will never arrive: its state says so (for staff) and the client gets
    its content by email. In the caller's transaction."""
    text = db.session.scalar(select(TextMessage).where(TextMessage.outbox_id == row.id))
    if text is None or text.fallback_queued:
        return
    text.state = TextState.FAILED if text.state in (TextState.QUEUED, TextState.SENT) \
        else text.state
    text.error_code = code or text.error_code
    text.updated_at = utcnow()
    text.fallback_queued = True
    consultation = db.session.get(ConsultationRequest, row.request_id)
    given = consent.consent_of(consultation) if consultation is not None else None
    if consultation is None or given is None or row.body_text is None:
        return
    from portal.messages import notifications

    notifications.queue_client_email(
        consultation, f"text-fallback:{row.id}", "text_fallback", text=row.body_text,
        last_digits=numbers.last_digits(given.phone))
