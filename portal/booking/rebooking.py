"""After a missed consultation (no-show): the gentle note, and booking again from it.

When staff mark a request no-show they choose whether to send the note (the
default is nothing: some misses have reasons staff know of). The note links, with
a signed, expiring token of its own salt (a manage link is not a rebook link, nor
the other way round), to a page that shows the same therapist's free times.
Opening the link changes nothing (mail scanners open links); booking is a POST.

Booking again makes a **new request linked to the missed one**
(``rebooked_from_id``) rather than reopening it: the missed consultation stays a
no-show in its history and in the dashboard's no-show rate, and the new booking
is an ordinary one (status new, the usual confirmation with its calendar file,
the therapist's notice, a reminder, its own manage link). It copies the missed
request's contact details, eligibility answers and consent (the same person,
from the address the link was sent to), not its message or interests. One
missed consultation gives one rebooking (a unique column); afterwards the link
leads to the booking it made.

Like the booking functions, these add and flush, raise a named error and never
commit; call ``begin_write()`` before loading the request.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import select

from portal import audit
from portal.booking.availability import free_therapists_at, therapists_for_reschedule
from portal.booking.consultations import SlotTaken, find_by_public_id
from portal.booking.scheduling import SLOT_LENGTH
from portal.booking.statuses import RequestStatus
from portal.booking.therapists import Therapist
from portal.booking.unique_rules import insert_fresh
from portal.extensions import db
from portal.links import external_url
from portal.messages import notifications
from portal.models import ConsultationRequest, to_db
from portal.signed import Signed
from portal.staff.models import User

REBOOK_SALT = "rebook-after-no-show"
# What a rebooking copies from the missed request: who the person is, where they
# are, how they may be contacted, and the consent they gave then.
COPIED = ("first_name", "last_name", "first_name_normalised", "last_name_normalised",
          "preferred_name", "email", "email_normalised", "phone", "preferred_contact",
          "ok_to_text", "ok_to_voicemail", "adult", "payment", "meeting", "language", "state",
          "zip_code",
          "ca_resident", "in_california", "consent_at", "privacy_notice_version",
          "ack_not_emergency_at")


class RebookRefused(Exception):
    """Booking again can't be done; the page says why."""


class AlreadyRebooked(RebookRefused):
    def __init__(self, rebooking: ConsultationRequest) -> None:
        super().__init__(rebooking.reference)
        self.rebooking = rebooking


class HasOpenRequest(RebookRefused):
    """The person has another open request (one free consultation at a time)."""


class TherapistUnavailable(RebookRefused):
    """The missed consultation's therapist is no longer active (or there was none)."""


# -- the link ------------------------------------------------------------------------

REBOOK_LINK = Signed(REBOOK_SALT,
                     max_age=lambda: current_app.config["MANAGE_TOKEN_MAX_AGE_DAYS"] * 86400)


def rebook_url(missed: ConsultationRequest) -> str:
    return external_url("public.rebook", token=REBOOK_LINK.dumps(missed.public_id))


def missed_request_for(token: str) -> ConsultationRequest | None:
    """The missed request a valid, unexpired rebook link is for, while it is a no-show."""
    public_id = REBOOK_LINK.loads(token)
    missed = find_by_public_id(public_id) if isinstance(public_id, str) else None
    return missed if missed is not None and missed.status == RequestStatus.NO_SHOW else None


def queue_missed_note(missed: ConsultationRequest, *, actor: User | str) -> bool:
    """The gentle note, once per missed request; True when it was queued now."""
    therapist = missed.therapist
    row = notifications.queue_client_email(
        missed, "missed_note", "missed_note", rebook_url=rebook_url(missed),
        can_rebook=therapist is not None and therapist.active)
    if row is not None:
        audit.record("missed_note_queued", actor=actor, request_id=missed.id)
    return row is not None


# -- booking again ---------------------------------------------------------------------

def rebooking_of(missed: ConsultationRequest) -> ConsultationRequest | None:
    return db.session.scalar(select(ConsultationRequest).where(
        ConsultationRequest.rebooked_from_id == missed.id))


def therapists_for(missed: ConsultationRequest) -> list[Therapist]:
    """The missed consultation's therapist (hours loaded), while active; else nobody."""
    if missed.therapist_id is None:
        return []
    return [t for t in therapists_for_reschedule(missed) if t.id == missed.therapist_id]


def book_again(missed: ConsultationRequest, start: datetime, *,
               now: datetime | None = None) -> ConsultationRequest:
    """A new request with ``missed``'s therapist at ``start`` (aware), confirmed and
    announced as any new booking. Raises SlotTaken, AlreadyRebooked, HasOpenRequest
    or TherapistUnavailable."""
    now = now or datetime.now(UTC)
    existing = rebooking_of(missed)
    if existing is not None:
        raise AlreadyRebooked(existing)
    therapists = therapists_for(missed)
    if not therapists:
        raise TherapistUnavailable()
    therapist_id = therapists[0].id
    start = start.astimezone(UTC)
    if therapist_id not in free_therapists_at(str(therapist_id), start, now,
                                              therapists=therapists):
        raise SlotTaken(start)
    rebooking = _insert(missed, therapist_id, start)
    audit.record("rebooked_after_no_show", actor="client", request_id=missed.id,
                 new_reference=rebooking.reference)
    audit.record("request_created", actor="client", request_id=rebooking.id,
                 rebooked_from=missed.reference, booked=True)
    notifications.queue_request_received(rebooking)
    return rebooking


def _insert(missed: ConsultationRequest, therapist_id: int,
            start: datetime) -> ConsultationRequest:
    row = insert_fresh(lambda: ConsultationRequest(  # a fresh reference and public id each
        **{name: getattr(missed, name) for name in COPIED},
        status=RequestStatus.NEW, therapist_id=therapist_id, therapist_choice=str(therapist_id),
        slot_start=to_db(start), slot_end=to_db(start + SLOT_LENGTH),
        rebooked_from_id=missed.id, interests="", message="",
    ))
    if isinstance(row, ConsultationRequest):
        return row
    if row == "identifier":
        raise RuntimeError("could not draw a unique reference")
    if row == "slot":
        raise SlotTaken(start)
    if row == "email":
        raise HasOpenRequest()
    existing = rebooking_of(missed)  # a double click: the first one won
    if existing is not None:
        raise AlreadyRebooked(existing)
    raise RuntimeError("unexpected unique-constraint failure")
