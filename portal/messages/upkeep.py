"""The outbox's upkeep: a sender's round (release expired holds, queue due reminders,
then deliver what is due), putting failed messages back in the queue, and forgetting
the content of messages done with. Each step that runs on its own (a sender's round,
``outbox forget``) owns its transaction; ``retry_failed`` is a domain function in the
caller's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, or_, update

from portal.booking import verification
from portal.database import begin_write
from portal.extensions import db
from portal.messages import notifications, outbox
from portal.messages.models import OutboxEmail
from portal.messages.outbox import DeliveryReport
from portal.messages.outbox_errors import error_origin
from portal.messages.outbox_states import NEVER_SENT, OutboxState
from portal.models import to_db, utcnow

log = logging.getLogger("portal.messages.outbox")  # a sender's lines, as delivery's


def retry_failed(email_id: int | None = None) -> int:
    """Put every failed message (or only ``email_id``) back in the queue, due now with
    fresh attempts; how many.

    For after the cause is fixed (a long outage, a mailbox that exists again).
    Rows whose content was already forgotten stay failed: nothing is left to send.
    Like other domain functions it does not commit; the caller begins the write
    transaction (``begin_write()``) and commits.
    """
    retry = update(OutboxEmail).where(OutboxEmail.status == OutboxState.FAILED,
                                      OutboxEmail.body_text.is_not(None))
    if email_id is not None:
        retry = retry.where(OutboxEmail.id == email_id)
    result = db.session.execute(
        retry.values(status=OutboxState.QUEUED, attempts=0, next_attempt_at=utcnow(),
                     claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def forget_sent_bodies(now: datetime | None = None) -> int:
    """Drop the content of messages done with long enough ago; the delivery record stays.

    Sent rows count from when they were sent; failed and superseded ones (never
    sent, or not any more) from when they were queued.
    """
    now = now or datetime.now(UTC)
    cutoff = to_db(now - timedelta(days=int(current_app.config["OUTBOX_KEEP_BODIES_DAYS"])))
    begin_write()
    result = db.session.execute(
        update(OutboxEmail)
        .where(or_(and_(OutboxEmail.status == OutboxState.SENT, OutboxEmail.sent_at < cutoff),
                   and_(OutboxEmail.status.in_(NEVER_SENT),
                        OutboxEmail.created_at < cutoff)),
               OutboxEmail.body_text.is_not(None))
        .values(body_text=None, body_html=None, ics=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


def queue_reminders(now: datetime | None = None) -> int:
    """Queue the reminders due at ``now`` in a write transaction of their own, and commit;
    how many were new."""
    begin_write()
    count = notifications.queue_due_reminders(now)
    db.session.commit()
    return count


def release_expired_holds(now: datetime | None = None) -> int:
    """Delete the pending requests whose email was not confirmed in time (their codes
    and emails go with them), in a write transaction of its own; how many."""
    begin_write()
    count = verification.release_expired(now)
    db.session.commit()
    return count


def work_once(now: datetime | None = None) -> tuple[int, DeliveryReport]:
    """One round of a sender: release expired holds (so no code email for a dropped
    request goes out), queue due reminders, then deliver what is due.

    Delivery runs even when the first two failed: a problem there must not hold
    back every other email.
    """
    try:
        release_expired_holds(now)
    except Exception as error:
        db.session.rollback()
        log.error("outbox releasing expired holds failed: %s at %s", type(error).__name__,
                  error_origin(error))
    try:
        reminders = queue_reminders(now)
    except Exception as error:
        db.session.rollback()
        reminders = 0
        log.error("outbox reminders failed: %s at %s", type(error).__name__,
                  error_origin(error))
    return reminders, outbox.deliver_due(now)
