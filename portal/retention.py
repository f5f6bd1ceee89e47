"""Deleting requests: in bulk by age (retention), and one at a time by an admin.

Retention deletes requests older than a cut-off whose consultation is over,
with their notes and emails; one audit line per run says how many went. The
trail itself keeps no client details, so it stays.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select

from portal import audit
from portal.extensions import db
from portal.models import ConsultationRequest, OutboxEmail, User, to_db
from portal.refusals import Refused

CHUNK = 500


class StillBooked(Refused):
    """An open request with a time still ahead: deleting it would cancel the
    consultation without telling anyone."""

    message = "Cancel the consultation first so the client and therapist are told."


def is_still_booked(consultation: ConsultationRequest, now: datetime | None = None) -> bool:
    return consultation.is_open and consultation.starts_after(now or datetime.now(UTC))


def delete_request(consultation: ConsultationRequest, *, actor: User | str) -> None:
    """Delete one request with its notes; audited. Emails already queued about it
    still go out (their request_id becomes NULL). Raises StillBooked. Adds and
    flushes; the caller commits."""
    if is_still_booked(consultation):
        raise StillBooked()
    audit.record("request_deleted", actor=actor, request_id=consultation.id,
                 reference=consultation.reference)
    db.session.delete(consultation)
    db.session.flush()


def purge_old_requests(older_than_days: int, *, now: datetime | None = None) -> int:
    """Delete requests received more than ``older_than_days`` ago whose time (if any)
    has passed. Adds and flushes; the caller begins the write transaction
    (``begin_write()``) and commits. Returns how many went."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    now = now or datetime.now(UTC)
    cutoff = to_db(now - timedelta(days=older_than_days))
    due = select(ConsultationRequest.id).where(
        ConsultationRequest.created_at < cutoff,
        or_(ConsultationRequest.slot_end.is_(None), ConsultationRequest.slot_end < to_db(now)),
    )
    deleted = 0
    # In chunks, so no statement carries a huge id list. It is still one transaction
    # (the caller commits once), so a run that fails half-way deletes nothing.
    while ids := list(db.session.scalars(due.limit(CHUNK))):
        # Notes go by ON DELETE CASCADE (foreign keys are on for every SQLite
        # connection too); emails by hand, as their key is SET NULL for one-off deletes.
        db.session.execute(delete(OutboxEmail).where(OutboxEmail.request_id.in_(ids)))
        db.session.execute(delete(ConsultationRequest).where(ConsultationRequest.id.in_(ids)))
        deleted += len(ids)
    audit.record("retention_purge", actor="system", older_than_days=older_than_days,
                 deleted=deleted)
    db.session.flush()
    return deleted
