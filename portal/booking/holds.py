"""Times held by requests whose email is not confirmed yet, and how many one network
or one therapist may have at once.

A pending request holds its time for ``VERIFY_HOLD_MINUTES`` before anyone knows the
address is real. Without a cap, one visitor (an IPv6 /64 can look like millions of
addresses) could hold every time for half an hour, again and again. So at most
``UNVERIFIED_HOLDS_PER_NETWORK`` times are held by one network (portal.networks) and
``UNVERIFIED_HOLDS_PER_THERAPIST`` for one therapist; a confirmed request holds its
time for good and no longer counts. A request without a time holds nothing and is
never capped, so a person turned away here can still ask to be contacted.

The count and the insert that follows must not interleave with another request's:
on SQLite the write lock (``begin_write()``) already serialises them; on PostgreSQL a
transaction-level advisory lock does, taken only by requests that hold a time.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, text

from portal.booking.statuses import RequestStatus
from portal.extensions import db
from portal.models import ConsultationRequest, EmailVerification, to_db

# pg_advisory_xact_lock's key for "someone is about to hold a time" (any fixed number
# no other part of the portal uses).
HOLDS_LOCK = 7_021_001


class TooManyHolds(Exception):
    """This network, or every therapist free at that time, holds as many unconfirmed
    times as allowed. What the visitor is told never says which."""


def per_network() -> int:
    return int(current_app.config["UNVERIFIED_HOLDS_PER_NETWORK"])


def per_therapist() -> int:
    return int(current_app.config["UNVERIFIED_HOLDS_PER_THERAPIST"])


def lock() -> None:
    """Serialise counting and holding until the transaction ends (PostgreSQL)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": HOLDS_LOCK})


def _held(now: datetime):
    return (select(func.count(ConsultationRequest.id))
            .join(EmailVerification, EmailVerification.request_id == ConsultationRequest.id)
            .where(ConsultationRequest.status == RequestStatus.PENDING,
                   ConsultationRequest.slot_start.is_not(None),
                   EmailVerification.expires_at > to_db(now)))


def held_now(now: datetime) -> int:
    """Times held right now by unconfirmed requests (the dashboard's count)."""
    return db.session.scalar(_held(now))


def check_network(network_key: str | None, now: datetime) -> None:
    """Raise TooManyHolds when ``network_key``'s network holds its share already."""
    if network_key is None:
        return
    held = db.session.scalar(_held(now).where(EmailVerification.network_key == network_key))
    if held >= per_network():
        raise TooManyHolds()


def with_room(therapist_ids: list[int], now: datetime) -> list[int]:
    """Those of ``therapist_ids`` (in the same order) still below their share."""
    if not therapist_ids:
        return []
    rows = db.session.execute(
        _held(now).add_columns(ConsultationRequest.therapist_id)
        .where(ConsultationRequest.therapist_id.in_(therapist_ids))
        .group_by(ConsultationRequest.therapist_id)).all()
    held = {row.therapist_id: row[0] for row in rows}
    return [tid for tid in therapist_ids if held.get(tid, 0) < per_therapist()]
