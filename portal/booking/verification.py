"""Checking that a person owns the email address they gave, before their request counts.

A valid details form stores a ``pending`` request: it holds its time for
``VERIFY_HOLD_MINUTES`` and an email goes to the address given. Normally that
email carries a 6-digit code; the right code makes the request ``new`` and queues
the confirmation and the therapist's notice. When the address already has an open
request, the email instead says so (with that request's manage link) and the
pending request can never be verified: it runs out like an abandoned one. So the
web answer is the same either way, and only the owner of the address learns
whether it had a request (California's CMIA makes that fact confidential).

Five wrong codes, or the hold running out, delete the pending request and
everything about it (its code, its emails, by cascade); only an anonymous daily
count remains; the mail sink's copies of its emails go once that commits, as when
staff delete a request. Codes are kept as an HMAC keyed with the app's secret.

Like the booking functions, these add and flush, raise a named error and never
commit; the caller begins the write transaction (``begin_write()``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal import audit
from portal.booking import intake, waitlist
from portal.booking.scheduling import PACIFIC
from portal.booking.statuses import OPEN_STATUSES, RequestStatus
from portal.database import KeepsChanges
from portal.extensions import db
from portal.messages import notifications
from portal.messages.models import OutboxEmail
from portal.messages.transport import remove_sink_copies_after_commit
from portal.models import ConsultationRequest, EmailVerification, as_utc, to_db

CODE_DIGITS = 6
MAX_WRONG_TRIES = 5
MAX_SENDS = 4  # the first email and three new codes


class VerificationError(Exception):
    """Base of what the verify page tells a person. Those that inherit KeepsChanges
    are committed before the page says so: the wrong try counts, the dropped request
    stays dropped."""


class WrongCode(KeepsChanges, VerificationError):
    def __init__(self, tries_left: int) -> None:
        super().__init__(tries_left)
        self.tries_left = tries_left


class TooManyTries(KeepsChanges, VerificationError):
    """The fifth wrong code: the pending request is gone."""


class Expired(KeepsChanges, VerificationError):
    """No pending request any more (the hold ran out, or it was dropped)."""


class NoMoreCodes(VerificationError):
    """Every new code allowed has been sent."""


class AlreadyHasRequest(KeepsChanges, VerificationError):
    """The code was right, but the address got an open request meanwhile (another tab):
    this one is dropped and the owner, who has just proved it is theirs, is told by
    email where their request is."""


def hold() -> timedelta:
    return timedelta(minutes=int(current_app.config["VERIFY_HOLD_MINUTES"]))


def new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(consultation: ConsultationRequest, code: str) -> str:
    """The stored form of ``code`` for this request: an HMAC, so a copy of the
    database does not give the codes away by trying all million of them."""
    key = current_app.config["SECRET_KEY"].encode()
    message = f"{consultation.public_id}:{code}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def normalise_code(text: object) -> str:
    """What a person typed, as the code it means: digits only, spaces and dashes
    (as some phones paste them) left out. Non-ASCII digits never match."""
    if not isinstance(text, str):
        return ""
    return "".join(ch for ch in text if ch not in " -\u00a0\t")


def existing_open_request(email_normalised: str) -> ConsultationRequest | None:
    return db.session.scalar(select(ConsultationRequest).where(
        ConsultationRequest.status.in_(OPEN_STATUSES),
        ConsultationRequest.email_normalised == email_normalised,
    ).limit(1))


def start(consultation: ConsultationRequest, *, now: datetime,
          network_key: str | None = None) -> EmailVerification:
    """Begin checking the address of a just-stored pending request: a code email, or
    the "you already have a request" email when the address has an open one.
    ``network_key``: where it came from (portal.booking.holds counts a network's holds)."""
    duplicate_of = existing_open_request(consultation.email_normalised)
    verification = EmailVerification(
        request_id=consultation.id, wrong_tries=0, sends=1,
        expires_at=to_db(now + hold()), already_booked=duplicate_of is not None,
        duplicate_of=duplicate_of, network_key=network_key,
    )
    consultation.verification = verification
    _send(consultation, verification)
    db.session.flush()
    return verification


def resend(consultation: ConsultationRequest, *, now: datetime) -> None:
    """A new code (the old one stops working), or the same "already" email again.
    Raises Expired or NoMoreCodes."""
    verification = _live(consultation, now)
    if verification.sends >= MAX_SENDS:
        raise NoMoreCodes()
    verification.sends += 1
    _send(consultation, verification)
    db.session.flush()


def confirm(consultation: ConsultationRequest, code: str, *, now: datetime) -> None:
    """Make the request ``new`` if ``code`` is its code, and queue the confirmation and
    the therapist's notice. Raises Expired, WrongCode, TooManyTries or AlreadyHasRequest."""
    verification = _live(consultation, now)
    typed = normalise_code(code)
    right = (not verification.already_booked and typed.isascii() and typed.isdigit()
             and hmac.compare_digest(hash_code(consultation, typed), verification.code_hash))
    if not right:
        verification.wrong_tries += 1
        if verification.wrong_tries >= MAX_WRONG_TRIES:
            drop(consultation, now=now)
            raise TooManyTries()
        db.session.flush()
        raise WrongCode(MAX_WRONG_TRIES - verification.wrong_tries)
    try:
        with db.session.begin_nested():
            consultation.status = RequestStatus.NEW
            # "Received" is when the practice could first see it.
            consultation.created_at = to_db(now)
            db.session.delete(verification)
            db.session.flush()
    except IntegrityError:  # the one-open-request-per-email rule: another tab won
        db.session.refresh(consultation)
        existing = existing_open_request(consultation.email_normalised)
        if existing is not None:
            notifications.queue_already_booked(existing, key=f"verified:{consultation.public_id}")
        drop(consultation, now=now)
        raise AlreadyHasRequest() from None
    audit.record("request_created", actor="client", request_id=consultation.id,
                 therapist_id=consultation.therapist_id,
                 booked=consultation.slot_start is not None)
    notifications.queue_request_received(consultation)


def drop(consultation: ConsultationRequest, *, now: datetime) -> None:
    """Delete a pending request with everything about it; count it anonymously."""
    _forget_sink_copies([consultation.id])
    db.session.delete(consultation)
    intake.record_unverified(now.astimezone(PACIFIC).date())
    db.session.flush()


def release_expired(now: datetime | None = None) -> int:
    """Delete pending requests whose hold has run out (their times come free); how many.
    The caller begins the write transaction and commits."""
    now = now or datetime.now(UTC)
    expired = select(EmailVerification.request_id).where(
        EmailVerification.expires_at <= to_db(now))
    held = db.session.execute(select(
        ConsultationRequest.id, ConsultationRequest.therapist_id, ConsultationRequest.slot_start
    ).where(ConsultationRequest.status == RequestStatus.PENDING,
            ConsultationRequest.id.in_(expired))).all()
    ids = [row.id for row in held]
    if ids:
        _forget_sink_copies(ids)
        # Codes and emails go by ON DELETE CASCADE.
        db.session.execute(delete(ConsultationRequest).where(ConsultationRequest.id.in_(ids)))
        intake.record_unverified(now.astimezone(PACIFIC).date(), len(ids))
        db.session.flush()
        for row in held:  # the times they held are free again
            waitlist.time_freed(row.therapist_id, row.slot_start, now)
    db.session.flush()
    return len(ids)


def _forget_sink_copies(request_ids: list[int]) -> None:
    """The mail sink's copies of these requests' emails go when the deletion commits."""
    message_ids = db.session.scalars(select(OutboxEmail.message_id).where(
        OutboxEmail.request_id.in_(request_ids)))
    remove_sink_copies_after_commit(db.session(), message_ids)


def find_pending(public_id: object, *, lock: bool = False) -> ConsultationRequest | None:
    """The pending request with ``public_id``. ``lock``: for a change, locked until the
    transaction ends (on PostgreSQL two tries at once must not both count as the
    fourth; SQLite's write lock, ``begin_write()``, already serialises them)."""
    if not isinstance(public_id, str) or not public_id:
        return None
    query = select(ConsultationRequest).where(
        ConsultationRequest.public_id == public_id[:32],
        ConsultationRequest.status == RequestStatus.PENDING)
    return db.session.scalar(query.with_for_update() if lock else query)


def expires_at(consultation: ConsultationRequest) -> datetime | None:
    verification = consultation.verification
    return as_utc(verification.expires_at) if verification is not None else None


def _live(consultation: ConsultationRequest, now: datetime) -> EmailVerification:
    verification = consultation.verification
    if not consultation.is_pending or verification is None:
        raise Expired()
    if as_utc(verification.expires_at) <= now:
        drop(consultation, now=now)
        raise Expired()
    return verification


def _send(consultation: ConsultationRequest, verification: EmailVerification) -> None:
    """Queue this round's email: a code, or the "already" note. A fresh random code is
    drawn either way, so the stored hash never tells which."""
    code = new_code()
    verification.code_hash = hash_code(consultation, code)
    key = f"verify:{consultation.public_id}:{verification.sends}"
    if not verification.already_booked:
        notifications.queue_verification_code(consultation, code, key=key,
                                              expires_at=as_utc(verification.expires_at))
    elif verification.duplicate_of is not None:  # unless staff deleted it meanwhile
        notifications.queue_already_booked(verification.duplicate_of, key=key)
