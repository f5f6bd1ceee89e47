"""Booking consultations: new requests, cancel, reschedule, reassign. Free times
come from portal.booking.availability (re-exported here for callers of ``booking.*``).

Domain functions take plain values and model objects, add and flush, raise a
named error, and never commit: the caller (a view or a back-office action)
commits once. The partial unique indexes on ``consultation_request`` are the
guarantee against double bookings and second open requests; the checks here
only turn the common cases into friendly errors before the database has to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import func, select, update

from portal import audit
from portal.booking import holds, verification, waitlist
from portal.booking.availability import (
    available_slots as available_slots,  # re-exported for callers of booking.*
)
from portal.booking.availability import (
    free_therapists_at,
    therapists_for_reschedule,
    upcoming_counts,
)
from portal.booking.residency import check_eligibility
from portal.booking.scheduling import SLOT_LENGTH, pick_therapist, rank_therapists
from portal.booking.statuses import OPEN_STATUSES, RequestStatus
from portal.booking.therapists import Therapist
from portal.booking.unique_rules import insert_fresh, refused_as
from portal.extensions import db
from portal.messages import notifications
from portal.models import (
    NAME_SEARCH_COLUMNS,
    ConsultationRequest,
    new_public_id,
    new_reference,
    normalise_name,
    normalise_search,
    to_db,
    utcnow,
)
from portal.staff.models import User


class BookingError(Exception):
    """Base of the errors a person can be told about."""


class SlotTaken(BookingError):
    """The chosen time is no longer free (taken, past the notice, or never offered)."""


class NotEligible(BookingError):
    """Step 1's answers do not allow a consultation."""


class BookingClosed(BookingError):
    """The request is cancelled or finished, so its time cannot change."""


class UnknownTherapist(BookingError):
    """No active therapist has that id."""


@dataclass
class RequestDetails:
    """Everything a person gives before the code, already validated by the forms;
    what "help us prepare" asks after it may come here too (a rebooking, tests)."""

    first_name: str
    last_name: str
    email: str  # as the person wrote it, normalised by email-validator
    phone: str  # E.164
    preferred_contact: str | None
    state: str
    zip_code: str
    ca_resident: bool
    in_california: bool
    therapist_choice: str = "any"  # a therapist id or "any"
    slot_start: datetime | None = None  # aware; None = "contact me to schedule"
    waitlist: bool = False  # "email me if an earlier time opens"; only without a time
    interests: Sequence[str] = field(default_factory=list)
    message: str = ""
    submission_token: str | None = None
    language: str = "en"  # the language the request was made in
    preferred_name: str | None = None  # what to call them, when not their first name
    ok_to_text: bool | None = None
    ok_to_voicemail: bool | None = None
    adult: bool | None = None
    payment: str | None = None  # a PAYMENT_METHODS key
    network_key: str | None = None  # where it came from, for portal.booking.holds
    meeting: str | None = None  # "phone" or "video" (portal.booking.answers.MEETINGS)


def search_text(value: str, column) -> str:
    """``value`` as its ``*_normalised`` column stores it: ``normalise_name``d for the
    name columns, ``normalise_search``d otherwise.

    casefold() can lengthen text ("\u0130" becomes two characters, "\u00df" becomes
    "ss"), so it is cut to the column's length: PostgreSQL refuses anything longer."""
    normalise = normalise_name if column.key in NAME_SEARCH_COLUMNS else normalise_search
    return normalise(value)[: column.type.length]


def find_by_public_id(public_id: str) -> ConsultationRequest | None:
    return db.session.scalar(
        select(ConsultationRequest).where(ConsultationRequest.public_id == public_id[:32])
    )


# -- new requests ----------------------------------------------------------------

def find_by_submission_token(token: str | None) -> ConsultationRequest | None:
    if not token:
        return None
    return db.session.scalar(
        select(ConsultationRequest).where(ConsultationRequest.submission_token == token)
    )


def _new_row(details: RequestDetails, therapist_id: int | None,
             now: datetime) -> ConsultationRequest:
    start = details.slot_start
    stamp = to_db(now)
    return ConsultationRequest(
        public_id=new_public_id(), reference=new_reference(),
        submission_token=details.submission_token, status=RequestStatus.PENDING,
        first_name=details.first_name, last_name=details.last_name,
        first_name_normalised=search_text(details.first_name,
                                          ConsultationRequest.first_name_normalised),
        last_name_normalised=search_text(details.last_name,
                                         ConsultationRequest.last_name_normalised),
        email=details.email,
        email_normalised=search_text(details.email, ConsultationRequest.email_normalised),
        phone=details.phone, preferred_contact=details.preferred_contact,
        meeting=details.meeting,
        interests=",".join(details.interests), message=details.message,
        preferred_name=details.preferred_name or None, ok_to_text=details.ok_to_text,
        ok_to_voicemail=details.ok_to_voicemail, adult=details.adult, payment=details.payment,
        language=details.language, state=details.state, zip_code=details.zip_code,
        ca_resident=details.ca_resident, in_california=details.in_california,
        therapist_id=therapist_id, therapist_choice=details.therapist_choice,
        waitlist=details.waitlist and start is None,
        slot_start=to_db(start), slot_end=to_db(start + SLOT_LENGTH) if start else None,
        consent_at=stamp, ack_not_emergency_at=stamp,
        privacy_notice_version=current_app.config["PRIVACY_NOTICE_VERSION"],
    )


def _insert(details: RequestDetails, therapist_id: int | None,
            now: datetime) -> ConsultationRequest | str:
    """The stored row, or the name of the unique rule that refused it."""
    return insert_fresh(lambda: _new_row(details, therapist_id, now))


def _bookable_therapist_id(choice: object) -> int | None:
    """``choice`` as the id of a bookable therapist (written exactly as its id), else None."""
    text = str(choice)
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) >= 2**31:
        return None  # not an id the (32-bit) column could hold
    therapist = db.session.get(Therapist, int(text))
    if therapist is None or not therapist.bookable or str(therapist.id) != text:
        return None
    return therapist.id


def _candidates(details: RequestDetails, now: datetime) -> list[int | None]:
    """Therapists to try, best first; [None] or [id] when no time is booked."""
    if details.slot_start is None:
        if details.therapist_choice == "any":
            return [None]  # the intake coordinator assigns someone
        therapist_id = _bookable_therapist_id(details.therapist_choice)
        if therapist_id is None:
            raise UnknownTherapist(details.therapist_choice)
        return [therapist_id]
    free = free_therapists_at(details.therapist_choice, details.slot_start, now)
    if not free:
        raise SlotTaken(details.slot_start)
    return rank_therapists(free, upcoming_counts(free, now))


def create_request(details: RequestDetails, *, now: datetime | None = None) -> ConsultationRequest:
    """Store a ``pending`` request holding its time, and email its address a code (or,
    when that address has an open request already, a note saying so: see
    portal.booking.verification). Nothing is confirmed or told to staff until the code comes back.

    A form already submitted returns the request it created, whatever its status.
    Raises NotEligible, SlotTaken, UnknownTherapist or holds.TooManyHolds; the caller
    rolls back then.
    The caller starts the transaction (``begin_write()``), so that on SQLite the
    checks here and the insert hold the write lock together.
    """
    now = now or datetime.now(UTC)
    if not check_eligibility(details.state, details.zip_code, details.ca_resident,
                             details.in_california).eligible:
        raise NotEligible()
    existing = find_by_submission_token(details.submission_token)
    if existing is not None:
        return existing
    candidates = _candidates(details, now)
    if details.slot_start is not None:  # it will hold a time until confirmed
        candidates = _with_room_to_hold(candidates, details.network_key, now)
    for therapist_id in candidates:
        outcome = _insert(details, therapist_id, now)
        if isinstance(outcome, ConsultationRequest):
            verification.start(outcome, now=now, network_key=details.network_key)
            return outcome
        if outcome == "token":  # a double click raced us: the first submit won
            return find_by_submission_token(details.submission_token)
        if outcome != "slot":
            raise RuntimeError("unexpected unique-constraint failure")
    # Every therapist free at that time was taken by someone else meanwhile.
    raise SlotTaken(details.slot_start)


def _with_room_to_hold(candidates: list[int | None], network_key: str | None,
                       now: datetime) -> list[int]:
    """The candidates that may take one more unconfirmed hold, from this network.
    Raises holds.TooManyHolds when none may (whichever cap it was)."""
    holds.lock()
    holds.check_network(network_key, now)
    room = holds.with_room([tid for tid in candidates if tid is not None], now)
    if not room:
        raise holds.TooManyHolds()
    return room


# -- changes to an existing booking ------------------------------------------------

def cancel_booking(consultation: ConsultationRequest, *, by: str,
                   actor: User | str | None) -> bool:
    """Cancel an open request and free its time. ``by`` is "client" or "practice".

    Returns False (and queues nothing) when the request is not open: already
    cancelled (a double click sends one notice), or over, not a fit or waiting for
    its email confirmation, where there is nothing to cancel (the back office's
    status table, portal.booking.request_status, says so to staff)."""
    notifications.check_cancelled_by(by)
    if not consultation.is_open:
        return False
    previous = consultation.status
    consultation.status = RequestStatus.CANCELLED
    consultation.cancelled_at = utcnow()
    # A newer SEQUENCE makes calendars take the cancellation over the booking, and
    # keeps a later cancellation (after a reopen) a new event with its own emails.
    consultation.booking_sequence = (consultation.booking_sequence or 0) + 1
    db.session.flush()
    audit.record("booking_cancelled", actor=actor, request_id=consultation.id,
                 by=by, previous_status=previous)
    notifications.queue_cancelled(consultation, by=by)
    waitlist.time_freed(consultation.therapist_id, consultation.starts_at)
    return True


def _therapist_for_new_time(consultation: ConsultationRequest, start: datetime,
                            therapist_id: int | None, any_therapist: bool, now: datetime, *,
                            therapists: Sequence[Therapist] | None = None,
                            free_times: dict[datetime, list[int]] | None = None) -> int:
    current = consultation.therapist_id
    wanted = therapist_id if therapist_id is not None else current
    choice = "any" if any_therapist or wanted is None else wanted
    if free_times is not None:
        free = free_times.get(start, [])
    else:
        free = free_therapists_at(choice, start, now, exclude_request_id=consultation.id,
                                  therapists=therapists)
    if not free:
        raise SlotTaken(start)
    if wanted in free:
        return wanted
    if wanted is not None and not any_therapist:
        raise SlotTaken(start)
    return pick_therapist(free, upcoming_counts(free, now))


def _move(consultation: ConsultationRequest, start: datetime, therapist_id: int) -> None:
    """Give the request its new time, only while it is still open.

    The status is checked by the UPDATE itself, so a cancel committed by someone
    else a moment ago wins even when ``consultation`` was loaded before it."""
    with refused_as(consultation, lambda rule: SlotTaken(start) if rule == "slot" else None):
        moved = db.session.execute(
            update(ConsultationRequest)
            .where(ConsultationRequest.id == consultation.id,
                   ConsultationRequest.status.in_(OPEN_STATUSES))
            # The reminder belonged to the old time; the new time earns its own.
            .values(therapist_id=therapist_id, slot_start=to_db(start),
                    slot_end=to_db(start + SLOT_LENGTH), updated_at=utcnow(),
                    reminder_queued_at=None,
                    booking_sequence=func.coalesce(ConsultationRequest.booking_sequence, 0)
                    + 1)
            .execution_options(synchronize_session=False)
        )
    # Reload the row (and, lazily, the therapist the notices read).
    db.session.refresh(consultation)
    if moved.rowcount != 1:
        raise BookingClosed(consultation.status)


def reschedule_booking(consultation: ConsultationRequest, new_start: datetime, *,
                       actor: User | str | None, therapist_id: int | None = None,
                       any_therapist: bool = False, now: datetime | None = None,
                       therapists: Sequence[Therapist] | None = None,
                       free_times: dict[datetime, list[int]] | None = None) -> None:
    """Move an open request to ``new_start`` (aware), with the same therapist unless
    ``therapist_id`` is given. With ``any_therapist`` (or when the request has no
    therapist yet) the current one is kept if free, else the free one with the fewest
    upcoming consultations gets it. Raises SlotTaken or BookingClosed, also when the
    request was cancelled after ``consultation`` was loaded.

    ``therapists``: therapists_for_reschedule(consultation), when the caller has them
    already (the client's own therapist stays among them while active, even once they
    take no new clients).
    ``free_times``: when the caller has just computed ``available_slots`` for this
    request's choice (its therapist, or "any") with ``exclude_request_id`` set to it,
    in this same write transaction; otherwise only the new time is checked."""
    if not consultation.is_open:
        raise BookingClosed(consultation.status)
    now = now or datetime.now(UTC)
    start = new_start.astimezone(UTC)
    if therapists is None:
        therapists = therapists_for_reschedule(consultation)
    previous_start, previous_therapist = consultation.starts_at, consultation.therapist_id
    if previous_start == start and therapist_id in (None, previous_therapist):
        return
    chosen = _therapist_for_new_time(consultation, start, therapist_id, any_therapist, now,
                                     therapists=therapists, free_times=free_times)
    _move(consultation, start, chosen)
    audit.record("booking_rescheduled", actor=actor, request_id=consultation.id,
                 previous_start=previous_start, new_start=start,
                 previous_therapist_id=previous_therapist, therapist_id=chosen)
    notifications.queue_rescheduled(consultation, previous_start=previous_start,
                                    previous_therapist_id=previous_therapist)
    waitlist.time_freed(previous_therapist, previous_start, now)


def book_open_request(consultation: ConsultationRequest, start: datetime, *,
                      actor: User | str | None, now: datetime | None = None) -> None:
    """Give an open request that has no time yet the time ``start`` (a waitlist offer
    taken), with its therapist, or any free one when the client chose "any"; booked
    and told (confirmation with the calendar file, therapist notice) as a new booking,
    and off the waitlist. Raises SlotTaken or BookingClosed."""
    if not consultation.is_open or consultation.slot_start is not None:
        raise BookingClosed(consultation.status)
    now = now or datetime.now(UTC)
    start = start.astimezone(UTC)
    any_therapist = consultation.therapist_choice == "any" or consultation.therapist_id is None
    chosen = _therapist_for_new_time(consultation, start, None, any_therapist, now,
                                     therapists=therapists_for_reschedule(consultation))
    _move(consultation, start, chosen)
    consultation.waitlist = False
    audit.record("waitlist_booked", actor=actor, request_id=consultation.id, new_start=start,
                 therapist_id=chosen)
    notifications.queue_booked(consultation)


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
    with refused_as(consultation, lambda rule: SlotTaken(consultation.starts_at)
                    if rule == "slot" else None):
        consultation.therapist = therapist
        db.session.flush()
    audit.record("therapist_reassigned", actor=actor, request_id=consultation.id,
                 previous_therapist_id=previous, therapist_id=therapist.id)
    notifications.queue_reassigned(consultation, previous_therapist_id=previous)
    waitlist.time_freed(previous, consultation.starts_at)
