"""Retention: requests older than a cut-off whose consultation is over are deleted,
with their notes and emails. One audit line per run says how many went; the
trail itself keeps no client details, so it stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select

from portal import audit
from portal.extensions import db
from portal.models import ConsultationRequest, OutboxEmail, RequestNote, to_db

CHUNK = 500


def purge_old_requests(older_than_days: int, *, now: datetime | None = None) -> int:
    """Delete requests received more than ``older_than_days`` ago whose time (if any)
    has passed. Adds and flushes; the caller commits. Returns how many went."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    now = now or datetime.now(UTC)
    cutoff = to_db(now - timedelta(days=older_than_days))
    due = select(ConsultationRequest.id).where(
        ConsultationRequest.created_at < cutoff,
        or_(ConsultationRequest.slot_end.is_(None), ConsultationRequest.slot_end < to_db(now)),
    )
    deleted = 0
    # In chunks, so a first run over years of data holds no huge lock or id list.
    while ids := list(db.session.scalars(due.limit(CHUNK))):
        # Explicit deletes rather than ON DELETE CASCADE, which SQLite honours only
        # when foreign keys are switched on for the connection.
        db.session.execute(delete(RequestNote).where(RequestNote.request_id.in_(ids)))
        db.session.execute(delete(OutboxEmail).where(OutboxEmail.request_id.in_(ids)))
        db.session.execute(delete(ConsultationRequest).where(ConsultationRequest.id.in_(ids)))
        deleted += len(ids)
    audit.record("retention_purge", actor="system", older_than_days=older_than_days,
                 deleted=deleted)
    db.session.flush()
    return deleted
