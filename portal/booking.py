"""Booking consultations: free times, new requests, cancel, reschedule, reassign.

Domain functions take plain values and model objects, add and flush, raise a
named error, and never commit: the caller (a view or a back-office action)
commits once. The partial unique indexes on ``consultation_request`` are the
guarantee against double bookings and second open requests; the checks here
only turn the common cases into friendly errors before the database has to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from portal import audit, notifications
from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    OPEN_STATUSES,
    ConsultationRequest,
    Therapist,
    TimeOff,
    User,
    as_utc,
    to_db,
    utcnow,
)
from portal.residency import check_eligibility
from portal.scheduling import SLOT_LENGTH, Busy, HoursRange, free_slots, merge_free_slots


class BookingError(Exception):
    """Base of the errors a person can be told about."""


class SlotTaken(BookingError):
    """The chosen time is no longer free (taken, past the notice, or never offered)."""


class DuplicateRequest(BookingError):
    """The person already has an open request (same email or phone)."""


class NotEligible(BookingError):
    """Step 1's answers do not allow a consultation."""


class BookingClosed(BookingError):
    """The request is cancelled or finished, so its time cannot change."""


class UnknownTherapist(BookingError):
    """No active therapist has that id."""


@dataclass
class RequestDetails:
    """Everything a person gives in steps 1 and 2, already validated by the form."""

    first_name: str
    last_name: str
    email: str  # as the person wrote it, normalised by email-validator
    phone: str  # E.164
    preferred_contact: str
    state: str
    zip_code: str
    ca_resident: bool
    in_california: bool
    therapist_choice: str = "any"  # a therapist id or "any"
    slot_start: datetime | None = None  # aware; None = "contact me to schedule"
    interests: Sequence[str] = field(default_factory=list)
    message: str = ""
    submission_token: str | None = None


# -- free times ----------------------------------------------------------------

def bookable_therapists() -> list[Therapist]:
    return list(db.session.scalars(
        select(Therapist).where(Therapist.active.is_(True), Therapist.accepting_new.is_(True))
        .order_by(Therapist.name)
    ))


def _chosen_therapists(therapist_choice: object) -> list[Therapist]:
    therapists = bookable_therapists()
    if therapist_choice in (None, "", "any"):
        return therapists
    return [t for t in therapists if str(t.id) == str(therapist_choice)]


def _busy_by_therapist(ids: list[int], start: datetime, end: datetime,
                       exclude_request_id: int | None) -> dict[int, list[Busy]]:
    busy: dict[int, list[Busy]] = {tid: [] for tid in ids}
    bookings = select(ConsultationRequest.therapist_id, ConsultationRequest.slot_start,
                      ConsultationRequest.slot_end).where(
        ConsultationRequest.therapist_id.in_(ids), ConsultationRequest.status != "cancelled",
        ConsultationRequest.slot_start.is_not(None),
        ConsultationRequest.slot_start < to_db(end), ConsultationRequest.slot_end > to_db(start),
    )
    if exclude_request_id is not None:
        bookings = bookings.where(ConsultationRequest.id != exclude_request_id)
    time_off = select(TimeOff.therapist_id, TimeOff.starts_at, TimeOff.ends_at).where(
        TimeOff.therapist_id.in_(ids), TimeOff.starts_at < to_db(end),
        TimeOff.ends_at > to_db(start),
    )
    for rows in (db.session.execute(bookings), db.session.execute(time_off)):
        for therapist_id, begins, ends in rows:
            if begins <= ends:  # a reversed time-off range blocks nothing rather than crash
                busy[therapist_id].append(Busy(as_utc(begins), as_utc(ends)))
    return busy


def available_slots(therapist_choice: object, now: datetime | None = None, *,
                    exclude_request_id: int | None = None) -> dict[datetime, list[int]]:
    """Free start times (UTC, sorted) for a therapist id or "any", each with the
    ids of the therapists free then. ``exclude_request_id``: a booking being moved
    does not block its own time."""
    now = now or datetime.now(UTC)
    config = current_app.config
    notice = timedelta(hours=config["MIN_NOTICE_HOURS"])
    horizon = timedelta(days=config["BOOKING_HORIZON_DAYS"])
    therapists = _chosen_therapists(therapist_choice)
    ids = [t.id for t in therapists]
    busy = _busy_by_therapist(ids, now, now + horizon + SLOT_LENGTH, exclude_request_id)
    per_therapist = {
        t.id: free_slots([HoursRange(h.weekday, h.start, h.end) for h in t.hours], busy[t.id],
                         now=now, min_notice=notice, horizon=horizon)
        for t in therapists
    }
    return merge_free_slots(per_therapist)


def upcoming_counts(therapist_ids: Sequence[int], now: datetime) -> dict[int, int]:
    rows = db.session.execute(
        select(ConsultationRequest.therapist_id, func.count()).where(
            ConsultationRequest.therapist_id.in_(list(therapist_ids)),
            ConsultationRequest.status.in_(OPEN_STATUSES),
            ConsultationRequest.slot_start >= to_db(now),
        ).group_by(ConsultationRequest.therapist_id)
    )
    return dict(rows.tuples().all())


def _ranked_candidates(ids: Sequence[int], now: datetime) -> list[int]:
    # Fewest upcoming consultations first; ties to the lowest id, as pick_therapist does.
    counts = upcoming_counts(ids, now)
    return sorted(ids, key=lambda tid: (counts.get(tid, 0), tid))


# -- constraint errors ---------------------------------------------------------

def _violated(error: IntegrityError) -> str:
    """Which unique rule fired: "slot", "person", "token" or "other".

    PostgreSQL names the index; SQLite names the columns instead."""
    diag = getattr(error.orig, "diag", None)
    text = f"{getattr(diag, 'constraint_name', '') or ''} {error.orig}".lower()
    if "uq_booking_therapist_slot" in text or "slot_start" in text:
        return "slot"
    if "uq_open_request" in text or "email_normalised" in text or ".phone" in text:
        return "person"
    if "submission_token" in text:
        return "token"
    return "other"


# -- new requests ----------------------------------------------------------------

def find_by_submission_token(token: str | None) -> ConsultationRequest | None:
    if not token:
        return None
    return db.session.scalar(
        select(ConsultationRequest).where(ConsultationRequest.submission_token == token)
    )


def open_request_for(email_normalised: str, phone: str) -> ConsultationRequest | None:
    return db.session.scalar(select(ConsultationRequest).where(
        ConsultationRequest.status.in_(OPEN_STATUSES),
        or_(ConsultationRequest.email_normalised == email_normalised,
            ConsultationRequest.phone == phone),
    ).limit(1))


def _new_row(details: RequestDetails, therapist_id: int | None,
             now: datetime) -> ConsultationRequest:
    start = details.slot_start
    stamp = to_db(now)
    return ConsultationRequest(
        submission_token=details.submission_token, status="new",
        first_name=details.first_name, last_name=details.last_name,
        first_name_normalised=details.first_name.strip().lower(),
        last_name_normalised=details.last_name.strip().lower(),
        email=details.email, email_normalised=details.email.strip().lower(),
        phone=details.phone, preferred_contact=details.preferred_contact,
        interests=",".join(details.interests), message=details.message,
        state=details.state, zip_code=details.zip_code,
        ca_resident=details.ca_resident, in_california=details.in_california,
        therapist_id=therapist_id, therapist_choice=details.therapist_choice,
        slot_start=to_db(start), slot_end=to_db(start + SLOT_LENGTH) if start else None,
        consent_at=stamp, ack_not_emergency_at=stamp,
        privacy_notice_version=current_app.config["PRIVACY_NOTICE_VERSION"],
    )


def _insert(details: RequestDetails, therapist_id: int | None,
            now: datetime) -> ConsultationRequest | str:
    """The stored row, or the name of the unique rule that refused it."""
    row = _new_row(details, therapist_id, now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError as error:
        return _violated(error)
    return row


def _candidates(details: RequestDetails, now: datetime) -> list[int | None]:
    """Therapists to try, best first; [None] or [id] when no time is booked."""
    if details.slot_start is None:
        if details.therapist_choice == "any":
            return [None]  # the intake coordinator assigns someone
        if not _chosen_therapists(details.therapist_choice):
            raise UnknownTherapist(details.therapist_choice)
        return [int(details.therapist_choice)]
    free = available_slots(details.therapist_choice, now).get(
        details.slot_start.astimezone(UTC), [])
    if not free:
        raise SlotTaken(details.slot_start)
    return list(_ranked_candidates(free, now))


def create_request(details: RequestDetails, *, now: datetime | None = None) -> ConsultationRequest:
    """Store a request (and its booking) and queue the confirmation email.

    A form already submitted returns the request it created. Raises NotEligible,
    DuplicateRequest, SlotTaken or UnknownTherapist; the caller rolls back then.
    """
    now = now or datetime.now(UTC)
    begin_write()
    if not check_eligibility(details.state, details.zip_code, details.ca_resident,
                             details.in_california).eligible:
        raise NotEligible()
    existing = find_by_submission_token(details.submission_token)
    if existing is not None:
        return existing
    if open_request_for(details.email.strip().lower(), details.phone) is not None:
        raise DuplicateRequest()
    for therapist_id in _candidates(details, now):
        outcome = _insert(details, therapist_id, now)
        if isinstance(outcome, ConsultationRequest):
            audit.record("request_created", actor="client", request_id=outcome.id,
                         therapist_id=therapist_id, booked=outcome.slot_start is not None)
            notifications.queue_request_received(outcome)
            return outcome
        if outcome == "person":
            raise DuplicateRequest()
        if outcome == "token":  # a double click raced us: the first submit won
            return find_by_submission_token(details.submission_token)
        if outcome != "slot":
            raise RuntimeError("unexpected unique-constraint failure")
    # Every therapist free at that time was taken by someone else meanwhile.
    raise SlotTaken(details.slot_start)


# -- changes to an existing booking ------------------------------------------------

def _actor_label(actor: User | str | None) -> User | str:
    return actor if actor is not None else "system"


def cancel_booking(consultation: ConsultationRequest, *, by: str,
                   actor: User | str | None) -> bool:
    """Cancel the request and free its time. ``by`` is "client" or "practice".

    Returns False (and queues nothing) when it was already cancelled, so a
    double click sends one notice."""
    if by not in ("client", "practice"):
        raise ValueError(f"by must be 'client' or 'practice', not {by!r}")
    if consultation.status == "cancelled":
        return False
    previous = consultation.status
    consultation.status = "cancelled"
    consultation.cancelled_at = utcnow()
    db.session.flush()
    audit.record("booking_cancelled", actor=_actor_label(actor), request_id=consultation.id,
                 by=by, previous_status=previous)
    notifications.queue_cancelled(consultation, by=by)
    return True


def _therapist_for_new_time(consultation: ConsultationRequest, start: datetime,
                            therapist_id: int | None, any_therapist: bool, now: datetime) -> int:
    current = consultation.therapist_id
    wanted = therapist_id if therapist_id is not None else current
    choice = "any" if any_therapist or wanted is None else wanted
    free = available_slots(choice, now, exclude_request_id=consultation.id).get(start, [])
    if not free:
        raise SlotTaken(start)
    if wanted in free:
        return wanted
    if wanted is not None and not any_therapist:
        raise SlotTaken(start)
    return _ranked_candidates(free, now)[0]


def reschedule_booking(consultation: ConsultationRequest, new_start: datetime, *,
                       actor: User | str | None, therapist_id: int | None = None,
                       any_therapist: bool = False, now: datetime | None = None) -> None:
    """Move an open request to ``new_start`` (aware), with the same therapist unless
    ``therapist_id`` is given. With ``any_therapist`` (or when the request has no
    therapist yet) the current one is kept if free, else the free one with the fewest
    upcoming consultations gets it. Raises SlotTaken or BookingClosed.

    Call ``begin_write()`` before loading ``consultation`` so the check holds."""
    if not consultation.is_open:
        raise BookingClosed(consultation.status)
    now = now or datetime.now(UTC)
    start = new_start.astimezone(UTC)
    previous_start, previous_therapist = consultation.starts_at, consultation.therapist_id
    if previous_start == start and therapist_id in (None, previous_therapist):
        return
    chosen = _therapist_for_new_time(consultation, start, therapist_id, any_therapist, now)
    try:
        with db.session.begin_nested():
            # The relationship, not just the id: the notices read consultation.therapist.
            consultation.therapist = db.session.get(Therapist, chosen)
            consultation.slot_start = to_db(start)
            consultation.slot_end = to_db(start + SLOT_LENGTH)
            db.session.flush()
    except IntegrityError as error:
        db.session.refresh(consultation)
        if _violated(error) == "slot":
            raise SlotTaken(start) from None
        raise
    consultation.booking_sequence = (consultation.booking_sequence or 0) + 1
    db.session.flush()
    audit.record("booking_rescheduled", actor=_actor_label(actor), request_id=consultation.id,
                 previous_start=previous_start, new_start=start,
                 previous_therapist_id=previous_therapist, therapist_id=chosen)
    notifications.queue_rescheduled(
        consultation, previous_start=previous_start,
        previous_therapist_id=previous_therapist if previous_therapist != chosen else None,
    )


def reassign_therapist(consultation: ConsultationRequest, therapist_id: int, *,
                       actor: User | str | None) -> None:
    """Give the request to another active therapist, keeping its time. Only the
    database constraint is checked (the practice may book outside weekly hours).
    Raises UnknownTherapist, SlotTaken or BookingClosed."""
    if not consultation.is_open:
        raise BookingClosed(consultation.status)
    therapist = db.session.get(Therapist, therapist_id)
    if therapist is None or not therapist.active:
        raise UnknownTherapist(therapist_id)
    previous = consultation.therapist_id
    if previous == therapist.id:
        return
    try:
        with db.session.begin_nested():
            consultation.therapist = therapist
            db.session.flush()
    except IntegrityError as error:
        db.session.refresh(consultation)
        if _violated(error) == "slot":
            raise SlotTaken(consultation.starts_at) from None
        raise
    audit.record("therapist_reassigned", actor=_actor_label(actor), request_id=consultation.id,
                 previous_therapist_id=previous, therapist_id=therapist.id)
    notifications.queue_reassigned(consultation, previous_therapist_id=previous)
