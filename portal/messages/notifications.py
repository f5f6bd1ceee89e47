"""What each event puts in the outbox: the messages to clients and therapists.

Each event reads down once: it gathers what its messages say (``client_context``,
``therapist_context``), makes the calendar file where there is one
(``portal.messages.calendar_invite``), and queues each message through the one composer
(``portal.messages.composer``), which renders the kind's templates and adds the
outbox row to the caller's session, in the caller's transaction. None of them commits
or sends. A unique key per event and recipient means that queuing the same event
twice adds nothing the second time.

Therapist-bound messages carry only the reference, the time and a link to the
back office: never a client's name, contact details, ZIP, interests or message
(therapists' inboxes are not where health information belongs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from portal import links, text_rules
from portal.booking import next_step
from portal.booking.answers import CONTACT_METHODS
from portal.booking.scheduling import format_slot_long, format_time
from portal.booking.therapists import Therapist
from portal.calendars import writeback as calendar_writeback
from portal.extensions import db
from portal.i18n import current_language
from portal.i18n import lazy_gettext as _l
from portal.messages.calendar_invite import consultation_invite
from portal.messages.composer import Rendered, queue_message, render
from portal.messages.models import OutboxEmail
from portal.messages.superseding import supersede_for_cancellation, supersede_reminders
from portal.models import ConsultationRequest, as_utc, open_bookings_starting, to_db
from portal.texts import outgoing as texts

log = logging.getLogger("portal.messages.notifications")
REMINDER_WINDOW = timedelta(hours=24)
CANCELLED_BY = ("client", "practice")
# The confirmation of a request without a time (the kind's own subject: a booking).
UNBOOKED_SUBJECT = _l("We received your consultation request")


@dataclass(frozen=True)
class Notice:
    """Why a therapist's "therapist_notice" came: its subject and its first line."""

    subject: str
    headline: str


NEW_REQUEST = Notice("New consultation %(reference)s", "A new consultation request has arrived.")
BOOKED = Notice("Consultation %(reference)s is booked", "A consultation time has been booked.")
MOVED_TO_YOU = Notice("Consultation %(reference)s is now with you",
                      "A consultation has been moved to you.")
ASSIGNED_TO_YOU = Notice("Consultation %(reference)s is now with you",
                         "A consultation has been assigned to you.")


# -- the interface the request flow and the back office call -------------------

def queue_request_received(consultation: ConsultationRequest) -> list[OutboxEmail]:
    """A new request: the client's confirmation and the therapist's (or intake's) notice."""
    prefix = event_key(consultation, "received")
    booked = consultation.starts_at is not None
    client = _to_client(consultation, f"{prefix}:client", "confirmation",
                        subject=None if booked else UNBOOKED_SUBJECT,
                        ics=consultation_invite(consultation) if booked else None,
                        **_confirmation_extras(consultation))
    therapist = _notice(consultation, prefix, NEW_REQUEST)
    calendar_writeback.queue(consultation, prefix)
    return _rows(client, therapist)


def _confirmation_extras(consultation: ConsultationRequest) -> dict:
    """What a confirmation says besides the booking (what happens next is in every
    client message's context): where the Good Faith Estimate notice is."""
    return {"good_faith_estimate_url": links.external_url("public.good_faith_estimate")}


def queue_booked(consultation: ConsultationRequest) -> list[OutboxEmail]:
    """A request without a time got one from the waitlist: told as a new booking (the
    caller has already raised ``booking_sequence``)."""
    prefix = event_key(consultation, f"booked:{consultation.booking_sequence}")
    client = _to_client(consultation, f"{prefix}:client", "confirmation",
                        ics=consultation_invite(consultation),
                        **_confirmation_extras(consultation))
    therapist = _notice(consultation, prefix, BOOKED)
    calendar_writeback.queue(consultation, prefix)
    texts.booked(consultation)  # and by text, where the client agreed to texts
    return _rows(client, therapist)


def queue_waitlist_offer(consultation: ConsultationRequest, *, key: str, offered_when: str,
                         offered_therapist: Therapist | None,
                         offer_url: str) -> OutboxEmail | None:
    """A freed time offered to a waitlisted client, with the link that books it."""
    return _to_client(consultation, key, "waitlist_offer", offered_when=offered_when,
                      offered_therapist=offered_therapist, offer_url=offer_url)


def queue_rescheduled(consultation: ConsultationRequest, *, previous_start: datetime | None,
                      previous_therapist_id: int | None = None) -> list[OutboxEmail]:
    """A new time (the caller has already raised ``booking_sequence`` and cleared
    ``reminder_queued_at``: the new time earns its own reminder)."""
    supersede_reminders(consultation)
    prefix = event_key(consultation, f"rescheduled:{consultation.booking_sequence}")
    previous_when = _when(previous_start, consultation.language)
    client = _to_client(consultation, f"{prefix}:client", "rescheduled_client",
                        ics=consultation_invite(consultation), previous_when=previous_when)
    changed = previous_therapist_id not in (None, consultation.therapist_id)
    if changed:
        therapist = _notice(consultation, prefix, MOVED_TO_YOU)
    else:
        therapist = _to_therapist(consultation, prefix, "rescheduled_therapist",
                                  previous_when=previous_when)
    released = _queue_released(consultation, previous_therapist_id, prefix) if changed else None
    calendar_writeback.queue(consultation, prefix, previous_therapist_id=previous_therapist_id)
    texts.rescheduled(consultation)  # and by text, where the client agreed to texts
    return _rows(client, therapist, released)


def queue_cancelled(consultation: ConsultationRequest, *, by: str) -> list[OutboxEmail]:
    """A cancellation, ``by`` the "client" or the "practice" (the caller has already
    raised ``booking_sequence``: each cancellation is its own event).

    News of the booking still waiting in the outbox is now wrong, so it never goes
    out (see ``supersede_for_cancellation``), and a cancellation notice to someone
    who never heard of the booking is pointless, so it does not go either. Rows
    are kept in both cases, as ``superseded``, for the record and the event's key.
    """
    check_cancelled_by(by)
    supersede_reminders(consultation)
    prefix = event_key(consultation, f"cancelled:{consultation.booking_sequence}")
    booked = consultation.starts_at is not None
    ics = consultation_invite(consultation, cancelled=True) if booked else None
    client = _to_client(consultation, f"{prefix}:client", "cancelled_client", ics=ics, by=by)
    therapist = _to_therapist(consultation, prefix, "cancelled_therapist", by=by)
    for notice in _rows(client, therapist):
        supersede_for_cancellation(consultation, notice)
    calendar_writeback.queue(consultation, prefix)
    texts.cancelled(consultation)  # and by text, where the client agreed to texts
    return _rows(client, therapist)


def queue_verification_code(consultation: ConsultationRequest, code: str, *, key: str,
                            expires_at: datetime) -> OutboxEmail | None:
    """The 6-digit code for a pending request, to the address it gave. Nothing else the
    visitor typed goes in it: the address is not theirs until the code comes back."""
    context = {"code": code, "minutes": current_app.config["VERIFY_HOLD_MINUTES"],
               "until": f"{format_time(expires_at, consultation.language)} PT"}
    return queue_message("verification_code", consultation.email, context, key=key,
                         request_id=consultation.id, language=consultation.language)


def queue_already_booked(existing: ConsultationRequest, *, key: str) -> OutboxEmail | None:
    """To an address that already has the open request ``existing``, instead of a code:
    it says so and links to that request. Nothing of the new answers goes in it."""
    language = current_language()  # the visitor's, reading now
    context = {"reference": existing.reference, "when": _when(existing.starts_at, language),
               "manage_url": links.manage_url(existing)}
    return queue_message("already_booked", existing.email, context, key=key,
                         request_id=existing.id, language=language)


def queue_reopened(consultation: ConsultationRequest) -> list[OutboxEmail]:
    """The practice took back a cancelled request: "your consultation is back on" to the
    client (with the calendar event again, same UID, under a higher SEQUENCE than the
    cancellation's, so calendars bring it back) and a notice to the therapist (or the
    intake address). The caller has already raised ``booking_sequence`` and cleared
    ``reminder_queued_at``: the time earns a fresh reminder."""
    supersede_reminders(consultation)
    prefix = event_key(consultation, f"reopened:{consultation.booking_sequence}")
    booked = consultation.starts_at is not None
    client = _to_client(consultation, f"{prefix}:client", "reopened_client",
                        ics=consultation_invite(consultation) if booked else None)
    therapist = _to_therapist(consultation, prefix, "reopened_therapist")
    calendar_writeback.queue(consultation, prefix)
    if booked:
        texts.booked(consultation)  # and by text, where the client agreed to texts
    return _rows(client, therapist)


def queue_client_email(consultation: ConsultationRequest, event: str, kind: str,
                       **extra) -> OutboxEmail | None:
    """One client message of ``kind`` for ``event`` (unique per request: the same event
    twice queues it once)."""
    return _to_client(consultation, f"{event_key(consultation, event)}:client", kind, **extra)


def preview_client_email(consultation: ConsultationRequest, kind: str, **extra) -> Rendered:
    """The client message of ``kind`` as it would be queued, queuing nothing: what staff
    see in a preview is what the outbox would store."""
    return render(kind, client_context(consultation, **extra), language=consultation.language)


def check_cancelled_by(by: str) -> None:
    """Who may cancel: the "client" or the "practice"; anything else is a ValueError."""
    if by not in CANCELLED_BY:
        raise ValueError(f"by must be 'client' or 'practice', not {by!r}")


def queue_reassigned(consultation: ConsultationRequest, *,
                     previous_therapist_id: int | None) -> list[OutboxEmail]:
    """The back office moved a request to another therapist: tell both of them."""
    # The same pair can swap back later: count earlier reassignments to keep keys unique.
    count = db.session.scalar(
        select(db.func.count(OutboxEmail.id)).where(
            OutboxEmail.key.like(f"request:{consultation.id}:reassigned:%"),
            OutboxEmail.kind == "therapist_notice",
        )
    ) if consultation.id else 0
    prefix = event_key(consultation, f"reassigned:{count + 1}")
    therapist = _notice(consultation, prefix, ASSIGNED_TO_YOU)
    released = _queue_released(consultation, previous_therapist_id, prefix)
    calendar_writeback.queue(consultation, prefix, previous_therapist_id=previous_therapist_id)
    return _rows(therapist, released)


def queue_due_reminders(now: datetime | None = None) -> int:
    """Queue a reminder for every open booking starting within 24 hours; how many were new."""
    now = now or datetime.now(UTC)
    due = db.session.scalars(
        open_bookings_starting(now, now + REMINDER_WINDOW)
        .where(ConsultationRequest.reminder_queued_at.is_(None))
    ).all()
    queued = 0
    for consultation in due:
        # One savepoint each: a bad request (say, an unusable stored address)
        # costs its own reminder, not everyone else's.
        try:
            with db.session.begin_nested():
                queued += _queue_reminder(consultation, now)
        except ValueError as error:  # this request's data can never make a reminder
            consultation.reminder_queued_at = to_db(now)
            _log_skipped(consultation, error)
        except Exception as error:  # perhaps passing: the next round tries again
            _log_skipped(consultation, error)
    return queued


def _queue_reminder(consultation: ConsultationRequest, now: datetime) -> bool:
    key = f"{event_key(consultation, 'reminder')}:{consultation.booking_sequence}:client"
    row = _to_client(consultation, key, "reminder")
    consultation.reminder_queued_at = to_db(now)
    return row is not None


def _log_skipped(consultation: ConsultationRequest, error: Exception) -> None:
    log.error("reminder for request id=%s not queued: %s", consultation.id,
              type(error).__name__)


# -- what the messages say -------------------------------------------------------

def client_context(consultation: ConsultationRequest, *, has_ics: bool = False,
                   **extra) -> dict:
    """What a client's message about ``consultation`` may say, in their language."""
    therapist = consultation.therapist
    return {
        # The greeting's name: the one they asked us to use, else their first name.
        # Forms refuse line breaks in names; this keeps an older or imported row's
        # name on the greeting's line too, so it cannot start lines of its own.
        "name": text_rules.flattened(consultation.call_name),
        "reference": consultation.reference,
        "when": _when(consultation.starts_at, consultation.language),
        "therapist": therapist,
        "contact_method": CONTACT_METHODS.get(consultation.preferred_contact, "email").lower(),
        "manage_url": links.manage_url(consultation),
        "has_ics": has_ics,
        # Who calls whom, at which number or video link: every email about a booked time.
        "next_step": next_step.sentence(consultation),
        "next_step_html": next_step.sentence(consultation, html=True),
        **extra,
    }


def therapist_context(consultation: ConsultationRequest, therapist: Therapist | None,
                      **extra) -> dict:
    """What a therapist's (or the intake address's) message may say: only these facts
    about the request may reach a therapist's inbox."""
    return {"reference": consultation.reference, "when": _when(consultation.starts_at),
            "admin_url": links.admin_request_url(consultation),
            "therapist_name": therapist.name if therapist else None, **extra}


def event_key(consultation: ConsultationRequest, event: str) -> str:
    """The start of the outbox keys of one event about ``consultation``."""
    if consultation.id is None:
        db.session.flush()  # the key needs the request's id
    return f"request:{consultation.id}:{event}"


def _rows(*rows: OutboxEmail | None) -> list[OutboxEmail]:
    return [row for row in rows if row is not None]


def _when(starts_at: datetime | None, language: str = "en") -> str | None:
    if starts_at is None:
        return None
    # as_utc: a stored naive value too
    return format_slot_long(as_utc(starts_at), language=language)


def _to_client(consultation: ConsultationRequest, key: str, kind: str, *,
               subject: str | None = None, ics: str | None = None,
               **extra) -> OutboxEmail | None:
    context = client_context(consultation, has_ics=ics is not None, **extra)
    return queue_message(kind, consultation.email, context, key=key,
                         request_id=consultation.id, language=consultation.language,
                         subject=subject, ics=ics)


def _to_therapist(consultation: ConsultationRequest, prefix: str, kind: str, *,
                  subject: str | None = None, **extra) -> OutboxEmail | None:
    """A message to the request's therapist, or to the intake address when nobody is
    assigned."""
    therapist = consultation.therapist
    if therapist is None:
        who, recipient = "practice", current_app.config["PRACTICE_NOTIFY_EMAIL"]
    else:
        who, recipient = f"therapist:{therapist.id}", therapist.email
    return queue_message(kind, recipient, therapist_context(consultation, therapist, **extra),
                         key=f"{prefix}:{who}", request_id=consultation.id, subject=subject)


def _notice(consultation: ConsultationRequest, prefix: str,
            notice: Notice) -> OutboxEmail | None:
    return _to_therapist(consultation, prefix, "therapist_notice", subject=notice.subject,
                         headline=notice.headline)


def _queue_released(consultation: ConsultationRequest, therapist_id: int | None,
                    prefix: str) -> OutboxEmail | None:
    previous = db.session.get(Therapist, therapist_id) if therapist_id else None
    if previous is None:
        return None
    context = {"reference": consultation.reference, "therapist_name": previous.name,
               "when": _when(consultation.starts_at)}
    return queue_message("no_longer_with_you", previous.email, context,
                         key=f"{prefix}:previous:{previous.id}", request_id=consultation.id)
