"""The waitlist: clients who chose "none of these times work" and asked to be emailed
if an earlier time opens.

Who is waiting: a request with ``waitlist`` set, still without a time, and still
``new`` or ``contacted`` (a cancelled, declined, scheduled or finished request is
not). When a booked time comes free (a cancellation, a reschedule, a reassignment, an
expired verify hold) or a therapist's time off is removed, the earliest freed time
within ``OFFER_WINDOW`` that is still bookable is offered to everyone waiting for
that therapist or for "any" therapist: an email with a signed link to a page that
shows the time and a "Book this time" button. Opening the link changes nothing (mail
scanners open links); the first to press the button gets the time, through the same
booking rules and database constraint as any booking (``booking.book_open_request``);
the others see "just taken" and stay on the list.

At most one offer per client per Pacific day: the ``waitlist_offer`` row's unique
(request, day) and the outbox key per request and day both say so. Like the booking
functions these add and flush and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from portal import audit, links
from portal.booking.availability import available_slots, bookable_therapists, free_therapists_at
from portal.booking.scheduling import PACIFIC, format_slot_long
from portal.booking.statuses import WAITING_STATUSES
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages import notifications
from portal.models import ConsultationRequest, WaitlistOffer, as_utc, to_db, utcnow
from portal.signed import Signed
from portal.staff.models import User

OFFER_WINDOW = timedelta(days=7)
OFFER_SALT = "waitlist-offer"


def is_waiting(consultation: ConsultationRequest) -> bool:
    return (bool(consultation.waitlist) and consultation.status in WAITING_STATUSES
            and consultation.slot_start is None)


def waiting():
    """The select of every waiting request, longest waiting first."""
    return select(ConsultationRequest).where(
        ConsultationRequest.waitlist.is_(True),
        ConsultationRequest.status.in_(WAITING_STATUSES),
        ConsultationRequest.slot_start.is_(None),
    ).order_by(ConsultationRequest.created_at, ConsultationRequest.id)


def waiting_for(therapist_id: int):
    """Those waiting for this therapist (assigned to them) or for any therapist."""
    return waiting().where(or_(ConsultationRequest.therapist_choice == "any",
                               ConsultationRequest.therapist_id == therapist_id))


def last_offers(request_ids: Iterable[int]) -> dict[int, WaitlistOffer]:
    """The newest offer of each request, for the back office."""
    ids = list(request_ids)
    if not ids:
        return {}
    newest = select(func.max(WaitlistOffer.id)).where(
        WaitlistOffer.request_id.in_(ids)).group_by(WaitlistOffer.request_id)
    rows = db.session.scalars(select(WaitlistOffer).where(WaitlistOffer.id.in_(newest)))
    return {row.request_id: row for row in rows}


def leave(consultation: ConsultationRequest, *, actor: User | str) -> bool:
    """Take the request off the waitlist; False when it was not on it."""
    if not consultation.waitlist:
        return False
    consultation.waitlist = False
    db.session.flush()
    audit.record("waitlist_left", actor=actor, request_id=consultation.id)
    return True


# -- offering freed times ------------------------------------------------------------

def time_freed(therapist_id: int | None, start: datetime | None,
               now: datetime | None = None) -> int:
    """A booked time of ``therapist_id`` came free: offer it, if bookable and within
    the window. How many offers were queued."""
    if therapist_id is None or start is None:
        return 0
    return _offer(therapist_id, [as_utc(start)], now or datetime.now(UTC))


def range_freed(therapist_id: int, begins: datetime, ends: datetime,
                now: datetime | None = None) -> int:
    """Time off from ``begins`` to ``ends`` (aware) was removed: offer its earliest
    free time within the window."""
    now = now or datetime.now(UTC)
    if ends <= now or begins >= now + OFFER_WINDOW:
        return 0
    starts = [s for s in available_slots(str(therapist_id), now) if begins <= s < ends]
    return _offer(therapist_id, starts, now)


def _offer(therapist_id: int, starts: list[datetime], now: datetime) -> int:
    starts = sorted(s for s in starts if now < s < now + OFFER_WINDOW)
    if not starts:
        return 0
    therapists = bookable_therapists()
    start = next((s for s in starts
                  if therapist_id in free_therapists_at("any", s, now, therapists=therapists)),
                 None)
    if start is None:
        return 0
    today = now.astimezone(PACIFIC).date()
    offered_today = select(WaitlistOffer.request_id).where(WaitlistOffer.offered_on == today)
    therapist = db.session.get(Therapist, therapist_id)
    queued = 0
    for consultation in db.session.scalars(
            waiting_for(therapist_id).where(ConsultationRequest.id.not_in(offered_today))):
        offer = WaitlistOffer(request_id=consultation.id, therapist_id=therapist_id,
                              slot_start=to_db(start), offered_on=today, created_at=to_db(now))
        try:
            with db.session.begin_nested():
                db.session.add(offer)
                db.session.flush()
        except IntegrityError:  # offered today already, by a transaction just committed
            continue
        notifications.queue_waitlist_offer(
            consultation, key=f"request:{consultation.id}:waitlist:{today.isoformat()}:client",
            offered_when=format_slot_long(start, language=consultation.language),
            offered_therapist=None if consultation.therapist_choice == "any" else therapist,
            offer_url=links.external_url("public.waitlist_offer", token=offer_token(offer)))
        audit.record("waitlist_offered", actor="system", request_id=consultation.id,
                     start=start, therapist_id=therapist_id)
        queued += 1
    return queued


# -- the link in the email -------------------------------------------------------------

# Good for the offer's window and a day more.
OFFER_LINK = Signed(OFFER_SALT, max_age=int((OFFER_WINDOW + timedelta(days=1)).total_seconds()))


def offer_token(offer: WaitlistOffer) -> str:
    return OFFER_LINK.dumps(offer.id)


def offer_from_token(token: str, *, lock: bool = False) -> WaitlistOffer | None:
    """The offer a valid, unexpired link is for; None otherwise. ``lock``: for taking
    it (on PostgreSQL two clicks at once then queue one booking's emails)."""
    offer_id = OFFER_LINK.loads(token)
    if not isinstance(offer_id, int) or isinstance(offer_id, bool):
        return None
    offer = db.session.get(WaitlistOffer, offer_id)
    if offer is not None and lock:
        db.session.scalar(select(ConsultationRequest.id).where(
            ConsultationRequest.id == offer.request_id).with_for_update())
        db.session.refresh(offer.request)
    return offer


def still_free(offer: WaitlistOffer, now: datetime | None = None) -> bool:
    """Whether the offered time can still be booked for this request."""
    consultation = offer.request
    specific = consultation.therapist_choice != "any" and consultation.therapist_id is not None
    choice = consultation.therapist_id if specific else "any"
    return bool(free_therapists_at(choice, offer.starts_at, now or datetime.now(UTC)))


def answered(offer: WaitlistOffer, outcome: str) -> None:
    offer.outcome, offer.answered_at = outcome, utcnow()
    db.session.flush()
