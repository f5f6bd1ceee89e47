"""The status of a consultation request: every move staff can make, in one table.

``TRANSITIONS`` maps (current status, target status) to a :class:`Move` (what it
does and which emails it sends) or a :class:`Refusal` (why not). The back office's
status select, its "Cancel this consultation" button and :func:`change_status`
all read it; nothing else changes a request's status on the staff side (the
client's own cancel, from the manage page, is ``consultations.cancel_booking`` on an
open request, the same thing as the "cancel" move here).

In words:

- open (new, contacted, scheduled) move freely among themselves;
- cancelled: the booking is cancelled as on the public page (time freed, client
  and therapist told); refused once the consultation is over or not a fit;
- not a fit, while a future time is still held: that booking is cancelled first,
  so client and therapist are told, then the status is "not a fit";
- completed / no-show: only once the consultation's time exists and has begun;
- out of cancelled / not a fit ("reopen"): the request takes its time (and its
  place as the person's one open request) back, with a "your consultation is back
  on" email and a fresh reminder, unless the time has passed, someone else holds
  it now, or the person has another open request;
- pending (waiting for the client to confirm their email address): staff never
  act on it, and no staff move leads to it.

Like the booking functions, these add and flush, raise a named error and never
commit; call ``begin_write()`` before loading the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from portal import audit
from portal.booking import consultations
from portal.booking.refusals import Refused
from portal.booking.statuses import (
    ALL_STATUSES,
    RELEASED_STATUSES,
    STAFF_STATUSES,
    STATUS_LABELS,
    RequestStatus,
)
from portal.booking.unique_rules import refused_as
from portal.extensions import db
from portal.messages import notifications
from portal.messages.kinds import KINDS, MessageKind
from portal.models import ConsultationRequest, RequestNote
from portal.staff.models import User

S = RequestStatus  # short, for the table below


# -- why a move is refused ------------------------------------------------------

class StatusChangeRefused(Refused):
    """A status change that cannot be made; ``message`` says why, for staff."""

    message = "That status change can't be made."


class WaitingForEmail(StatusChangeRefused):
    message = ("This request is waiting for the client to confirm their email address, "
               "so it can't be changed yet.")


class NotAStaffStatus(StatusChangeRefused):
    message = "Only the client's email confirmation can give a request that status."


class NotHappenedYet(StatusChangeRefused):
    message = "That consultation hasn't happened yet."


class NoTimeBooked(StatusChangeRefused):
    message = ("This request has no consultation time, so it can't be marked completed "
               "or no-show. Book a time first.")


class NeverHeld(StatusChangeRefused):
    message = ("This consultation was canceled, so it didn't take place and can't be "
               "marked completed or no-show.")


class AlreadyOver(StatusChangeRefused):
    message = ("This consultation has already taken place or was missed, so there is "
               "nothing to cancel.")


class AlreadyClosed(StatusChangeRefused):
    message = "This request is closed as not a fit, so there is nothing to cancel."


class TimePassed(StatusChangeRefused):
    message = ("This consultation's time has passed, so the request can't be reopened. "
               "The client can ask for a new consultation.")


class TimeTaken(StatusChangeRefused):
    message = ("That time is now taken by another booking, so this request can't have it "
               "back.")


class PersonHasOpenRequest(StatusChangeRefused):
    message = "This person has another open request."


# -- the table --------------------------------------------------------------------

CANCEL_EMAILS = (KINDS["cancelled_client"], KINDS["cancelled_therapist"])
REOPEN_EMAILS = (KINDS["reopened_client"], KINDS["reopened_therapist"])


@dataclass(frozen=True)
class Move:
    """An allowed move. ``effect`` names what it does (see ``_EFFECTS``); ``emails``
    are the message kinds (portal.messages.kinds, each with its audience) it queues,
    when ``emails_when`` holds. A therapist's go to the intake address when nobody is
    assigned."""

    effect: str
    emails: tuple[MessageKind, ...] = ()
    emails_when: str = "always"


@dataclass(frozen=True)
class Refusal:
    error: type[StatusChangeRefused]


KEEP = Move("keep")  # the same status: only the note (if any) is saved
SET = Move("set")
MARK_OVER = Move("mark_over")  # refused before its time, without one, or if it was cancelled
CANCEL = Move("cancel", CANCEL_EMAILS)
DECLINE = Move("decline", CANCEL_EMAILS, emails_when="its time is still ahead")
REOPEN = Move("reopen", REOPEN_EMAILS, emails_when="the client was told of a cancellation")
WAITING = Refusal(WaitingForEmail)

# Rows: the current status. Columns: the target, in STAFF_STATUSES order.
_GRID: dict[RequestStatus, tuple[Move | Refusal, ...]] = {
    #             new      contacted scheduled completed  no_show    cancelled  not_a_fit
    S.NEW:       (KEEP,    SET,      SET,      MARK_OVER, MARK_OVER, CANCEL,    DECLINE),
    S.CONTACTED: (SET,     KEEP,     SET,      MARK_OVER, MARK_OVER, CANCEL,    DECLINE),
    S.SCHEDULED: (SET,     SET,      KEEP,     MARK_OVER, MARK_OVER, CANCEL,    DECLINE),
    S.COMPLETED: (SET,     SET,      SET,      KEEP,      SET,       Refusal(AlreadyOver), SET),
    S.NO_SHOW:   (SET,     SET,      SET,      SET,       KEEP,      Refusal(AlreadyOver), SET),
    S.CANCELLED: (REOPEN,  REOPEN,   REOPEN,   Refusal(NeverHeld), Refusal(NeverHeld), KEEP,
                  SET),
    S.NOT_A_FIT: (REOPEN,  REOPEN,   REOPEN,   MARK_OVER, MARK_OVER, Refusal(AlreadyClosed),
                  KEEP),
    S.PENDING:   (WAITING,) * len(STAFF_STATUSES),
}

TRANSITIONS: dict[tuple[RequestStatus, RequestStatus], Move | Refusal] = {
    **{(current, target): rule for current, row in _GRID.items()
       for target, rule in zip(STAFF_STATUSES, row, strict=True)},
    **{(current, S.PENDING): WAITING if current == S.PENDING else Refusal(NotAStaffStatus)
       for current in ALL_STATUSES},
}


# -- reading the table ----------------------------------------------------------

def refusal(consultation: ConsultationRequest, target: str,
            now: datetime | None = None) -> StatusChangeRefused | None:
    """Why ``consultation`` can't move to ``target`` now, as far as the table and the
    clock tell; None when it may try (the database may still refuse a reopen)."""
    if target not in ALL_STATUSES:
        raise ValueError(f"unknown status {target!r}")
    rule = TRANSITIONS.get((consultation.status, target))
    if rule is None:
        return StatusChangeRefused()
    if isinstance(rule, Refusal):
        return rule.error()
    now = now or datetime.now(UTC)
    if rule.effect == "mark_over":
        if consultation.starts_at is None:
            return NoTimeBooked()
        if consultation.status in RELEASED_STATUSES and consultation.cancelled_at is not None:
            return NeverHeld()
        if consultation.starts_after(now):
            return NotHappenedYet()
    if rule.effect == "reopen" and consultation.starts_at is not None \
            and not consultation.starts_after(now):
        return TimePassed()
    return None


def allowed_targets(consultation: ConsultationRequest,
                    now: datetime | None = None) -> list[str]:
    """The statuses the back office offers for ``consultation`` (its own included)."""
    now = now or datetime.now(UTC)
    return [target for target in STAFF_STATUSES if refusal(consultation, target, now) is None]


def status_choices(consultation: ConsultationRequest,
                   now: datetime | None = None) -> list[tuple[str, str]]:
    return [(target, STATUS_LABELS.get(target, target))
            for target in allowed_targets(consultation, now)]


# -- making the move ----------------------------------------------------------------

def change_status(consultation: ConsultationRequest, new_status: str, *,
                  actor: User | str, note: str | None = None,
                  now: datetime | None = None) -> bool:
    """Give ``consultation`` the status ``new_status``, with an optional internal note.
    Raises a StatusChangeRefused subclass (nothing is queued then); True when the
    status changed."""
    now = now or datetime.now(UTC)
    refused = refusal(consultation, new_status, now)
    if refused is not None:
        raise refused
    move = TRANSITIONS[(consultation.status, new_status)]
    changed = _EFFECTS[move.effect](consultation, new_status, actor, now)
    if note and note.strip():
        add_note(consultation, note, actor=actor)
    return changed


def _keep(consultation, new_status, actor, now) -> bool:
    return False


def _set(consultation, new_status, actor, now) -> bool:
    _set_status(consultation, new_status, actor=actor)
    return True


def _cancel(consultation, new_status, actor, now) -> bool:
    return consultations.cancel_booking(consultation, by="practice", actor=actor)


def _decline(consultation, new_status, actor, now) -> bool:
    previous = consultation.status
    if consultation.starts_after(now):
        consultations.cancel_booking(consultation, by="practice", actor=actor)
    _set_status(consultation, new_status, actor=actor, previous=previous)
    return True


def _reopen(consultation, new_status, actor, now) -> bool:
    """Take the time back under a higher SEQUENCE (calendars replace the cancelled
    event), with a fresh reminder; tell client and therapist if they were told of a
    cancellation."""
    told_of_cancellation = consultation.cancelled_at is not None
    _set_status(consultation, new_status, actor=actor, reopening=True)
    if told_of_cancellation:
        notifications.queue_reopened(consultation)
    return True


_EFFECTS = {"keep": _keep, "set": _set, "mark_over": _set, "cancel": _cancel,
            "decline": _decline, "reopen": _reopen}


def _set_status(consultation: ConsultationRequest, new_status: str, *,
                actor: User | str, reopening: bool = False,
                previous: str | None = None) -> None:
    """``previous``: the status the audit line names, when a step before this one
    (cancelling the booking) has changed it already."""
    previous = previous or consultation.status
    reclaims = consultation.status in RELEASED_STATUSES and new_status not in RELEASED_STATUSES
    # A savepoint: a refused change leaves the rest of the transaction usable.
    with refused_as(consultation, _refusal_for):
        consultation.status = new_status
        if reclaims:
            consultation.cancelled_at = None
        if reopening:
            consultation.booking_sequence = (consultation.booking_sequence or 0) + 1
            consultation.reminder_queued_at = None
        db.session.flush()
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
