"""Moving a consultation request from one status to another, with what each move means.

- cancelled: the booking is cancelled as on the public page (time freed,
  client and therapist told);
- not a fit, while a future time is still held: that booking is cancelled
  first, so client and therapist are told, then the status is "not a fit";
- completed / no-show: only once the consultation's time has begun;
- out of cancelled / not a fit: the request takes its time (and its place as
  the person's one open request) back, unless someone else holds it now.

Like the booking functions, these add and flush, raise a named error and never
commit; call ``begin_write()`` before loading the request.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from portal import audit, booking
from portal.extensions import db
from portal.models import (
    RELEASED_STATUSES,
    STATUSES,
    ConsultationRequest,
    RequestNote,
    User,
)
from portal.refusals import Refused


class StatusChangeRefused(Refused):
    """A status change that cannot be made; ``message`` says why, for staff."""

    message = "That status change can't be made."


class NotHappenedYet(StatusChangeRefused):
    message = "That consultation hasn't happened yet."


class TimeTaken(StatusChangeRefused):
    message = "That time is now taken — choose a new time with Reschedule."


class PersonHasOpenRequest(StatusChangeRefused):
    message = "This person has another open request."


def change_status(consultation: ConsultationRequest, new_status: str, *,
                  actor: User | str, note: str | None = None,
                  now: datetime | None = None) -> None:
    """Give ``consultation`` the status ``new_status`` (a key of STATUSES), with an
    optional internal note. Raises a StatusChangeRefused subclass."""
    if new_status not in STATUSES:
        raise ValueError(f"unknown status {new_status!r}")
    now = now or datetime.now(UTC)
    previous = consultation.status
    upcoming = consultation.starts_after(now)
    if new_status == previous:
        pass
    elif new_status == "cancelled":
        booking.cancel_booking(consultation, by="practice", actor=actor)
    elif new_status in ("completed", "no_show") and upcoming:
        raise NotHappenedYet()
    else:
        if new_status == "not_a_fit" and upcoming and previous not in RELEASED_STATUSES:
            booking.cancel_booking(consultation, by="practice", actor=actor)
        _set_status(consultation, new_status, actor=actor, previous=previous)
    if note and note.strip():
        add_note(consultation, note, actor=actor)


def _set_status(consultation: ConsultationRequest, new_status: str, *,
                actor: User | str, previous: str) -> None:
    reclaims = consultation.status in RELEASED_STATUSES and new_status not in RELEASED_STATUSES
    try:
        # A savepoint: a refused change leaves the rest of the transaction usable.
        with db.session.begin_nested():
            consultation.status = new_status
            if reclaims:
                consultation.cancelled_at = None
            db.session.flush()
    except IntegrityError as error:
        db.session.refresh(consultation)
        raise _refusal_for(booking.violated_rule(error)) from None
    audit.record("status_changed", actor=actor, request_id=consultation.id,
                 previous_status=previous, status=new_status)


def _refusal_for(rule: str) -> StatusChangeRefused:
    """What to tell staff when the unique rule ``rule`` refused taking the request back."""
    if rule == "slot":
        return TimeTaken()
    if rule in ("email", "phone"):
        return PersonHasOpenRequest()
    return StatusChangeRefused()


def add_note(consultation: ConsultationRequest, body: str, *, actor: User | str) -> RequestNote:
    note = RequestNote(request_id=consultation.id, body=body.strip(),
                       author_id=actor.id if isinstance(actor, User) else None)
    db.session.add(note)
    audit.record("note_added", actor=actor, request_id=consultation.id)
    return note
