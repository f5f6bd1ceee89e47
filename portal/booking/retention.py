"""Deleting requests: in bulk by age (retention), and one at a time by an admin.

A request goes with every trace of the person: its row, its notes (and any other
row whose foreign key cascades), and every email about it, queued ones included,
so nothing more is sent about a deleted request. The outbox's key to the request
cascades too, but its rows are deleted here by hand first, to learn their
Message-IDs (see the sink below); a test checks that every table pointing at a
request cascades. The audit trail keeps the
reference and ids only (see portal.audit), so it stays.

Retention also forgets the emails themselves once the window has passed: the
bodies, calendar files and recipient of every message done with (sent, failed or
superseded) before the cut-off, including those about requests still kept (an
open request's old confirmation). The delivery record (kind, subject, times)
stays; subjects never carry client details.

The development mail sink (``MAIL_BACKEND = "sink"``) keeps a copy of every sent
message as an .eml file named after its Message-ID: the functions here return the
Message-IDs of the emails they deleted or forgot, and the caller removes those
copies (``mail_transport.remove_sink_copies``) once it has committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, or_, select, update

from portal import audit
from portal.booking.refusals import Refused
from portal.booking.statuses import CLOSED_STATUSES
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import NEVER_SENT, OutboxState
from portal.models import ConsultationRequest, to_db
from portal.staff.models import User

CHUNK = 500
# What a forgotten email's recipient becomes (the column is NOT NULL).
FORGOTTEN = "forgotten"


class StillBooked(Refused):
    """An open request with a time still ahead: deleting it would cancel the
    consultation without telling anyone."""

    message = "Cancel the consultation first so the client and therapist are told."


@dataclass
class PurgeReport:
    deleted: int = 0
    forgotten: int = 0
    # Of every email deleted or forgotten: for removing the mail sink's copies.
    message_ids: list[str] = field(default_factory=list)


def _closed_long_ago(cutoff: datetime, now: datetime) -> ColumnElement[bool]:
    return and_(ConsultationRequest.status.in_(CLOSED_STATUSES),
                ConsultationRequest.created_at < cutoff)


# Each: (cut-off, now) -> the condition under which purge deletes a request. One more
# kind of request to purge is one more line here; open requests are never among them.
PURGEABLE: list[Callable[[datetime, datetime], ColumnElement[bool]]] = [
    _closed_long_ago,
]


def is_still_booked(consultation: ConsultationRequest, now: datetime | None = None) -> bool:
    return consultation.is_open and consultation.starts_after(now or datetime.now(UTC))


def delete_request(consultation: ConsultationRequest, *, actor: User | str) -> list[str]:
    """Delete one request with its notes and every email about it (queued ones
    included); audited with its reference only. Raises StillBooked. Adds and
    flushes; the caller commits, then removes the mail sink's copies of the
    returned Message-IDs."""
    if is_still_booked(consultation):
        raise StillBooked()
    audit.record("request_deleted", actor=actor, request_id=consultation.id,
                 reference=consultation.reference)
    message_ids = _delete_emails([consultation.id])
    db.session.delete(consultation)
    db.session.flush()
    return message_ids


def _delete_emails(request_ids: list[int]) -> list[str]:
    """Delete every outbox row about these requests; their Message-IDs."""
    about = OutboxEmail.request_id.in_(request_ids)
    message_ids = list(db.session.scalars(select(OutboxEmail.message_id).where(about)))
    db.session.execute(delete(OutboxEmail).where(about)
                       .execution_options(synchronize_session=False))
    return message_ids


def purge_old_requests(older_than_days: int, *, now: datetime | None = None) -> PurgeReport:
    """Delete the closed requests received more than ``older_than_days`` ago, with every
    trace of them, and forget the emails done with before then. Adds and flushes; the
    caller begins the write transaction (``begin_write()``), commits, and removes the
    mail sink's copies of ``message_ids``."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    now = now or datetime.now(UTC)
    cutoff = to_db(now - timedelta(days=older_than_days))
    due = select(ConsultationRequest.id).where(
        or_(*(condition(cutoff, now) for condition in PURGEABLE)))
    report = PurgeReport()
    # In chunks, so no statement carries a huge id list. It is still one transaction
    # (the caller commits once), so a run that fails half-way deletes nothing.
    while ids := list(db.session.scalars(due.limit(CHUNK))):
        # Notes (and every other table that points here) go by ON DELETE CASCADE;
        # foreign keys are on for every SQLite connection too.
        report.message_ids += _delete_emails(ids)
        db.session.execute(delete(ConsultationRequest).where(ConsultationRequest.id.in_(ids))
                           .execution_options(synchronize_session=False))
        report.deleted += len(ids)
    forgotten = forget_old_emails(cutoff)
    report.forgotten = len(forgotten)
    report.message_ids += forgotten
    audit.record("retention_purge", actor="system", older_than_days=older_than_days,
                 deleted=report.deleted, forgotten=report.forgotten)
    db.session.flush()
    return report


def forget_old_emails(cutoff: datetime) -> list[str]:
    """Blank the bodies, calendar file and recipient of every email done with before
    ``cutoff`` (naive UTC): sent ones by when they were sent, failed and superseded
    ones by when they were queued. Queued and sending ones are left alone. Their
    Message-IDs."""
    done_before = and_(
        or_(and_(OutboxEmail.status == OutboxState.SENT, OutboxEmail.sent_at < cutoff),
            and_(OutboxEmail.status.in_(NEVER_SENT),
                 OutboxEmail.created_at < cutoff)),
        OutboxEmail.recipient != FORGOTTEN,
    )
    rows = db.session.execute(select(OutboxEmail.id, OutboxEmail.message_id)
                              .where(done_before)).all()
    ids = [row.id for row in rows]
    for start in range(0, len(ids), CHUNK):
        db.session.execute(
            update(OutboxEmail).where(OutboxEmail.id.in_(ids[start:start + CHUNK]))
            .values(body_text=None, body_html=None, ics=None, recipient=FORGOTTEN)
            .execution_options(synchronize_session=False))
    return [row.message_id for row in rows]
