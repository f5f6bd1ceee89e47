"""What each event puts in the outbox: the emails to clients and therapists.

Every function here renders its messages from ``templates/email/`` and adds
``OutboxEmail`` rows to the caller's session, in the caller's transaction; none
of them commits or sends. A unique key per event and recipient means that
queuing the same event twice adds nothing the second time.

Therapist-bound messages carry only the reference, the time and a link to the
back office: never a client's name, contact details, ZIP, interests or message
(therapists' inboxes are not where health information belongs).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid, parseaddr

from flask import current_app, render_template
from flask_babel import gettext
from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from portal import links, next_step, text_rules
from portal.addresses import clean_address
from portal.calendar_invite import build_ics
from portal.calendars import writeback as calendar_writeback
from portal.extensions import db
from portal.i18n import current_language, in_language
from portal.i18n import lazy_gettext as _l
from portal.models import (
    CONTACT_METHODS,
    OPEN_STATUSES,
    ConsultationRequest,
    OutboxEmail,
    Therapist,
    as_utc,
    to_db,
)
from portal.scheduling import format_slot_long, format_time

log = logging.getLogger("portal.notifications")
REMINDER_WINDOW = timedelta(hours=24)
# Subjects show on lock screens and shared inboxes: they never name a condition.
FORBIDDEN_SUBJECT_WORDS = ("ketamine", "trauma", "depression", "ptsd", "anxiety")
CANCELLED_BY = ("client", "practice")


# -- the interface the request flow and the back office call -------------------

def queue_request_received(consultation: ConsultationRequest) -> list[OutboxEmail]:
    """A new request: the client's confirmation and the therapist's (or intake's) notice."""
    prefix = _prefix(consultation, "received")
    booked = consultation.starts_at is not None
    client = _queue_client(
        consultation, f"{prefix}:client", "confirmation", "client_confirmation",
        (_l("Your free consultation is booked") if booked
         else _l("We received your consultation request")),
        ics=_ics(consultation) if booked else None, **_confirmation_extras(consultation),
    )
    headline = "A new consultation request has arrived."
    therapist = _queue_therapist(consultation, consultation.therapist, prefix, "therapist_notice",
                                 "therapist_new", f"New consultation {consultation.reference}",
                                 headline=headline)
    calendar_writeback.queue(consultation, prefix)
    return _rows(client, therapist)


def _confirmation_extras(consultation: ConsultationRequest) -> dict:
    """What a confirmation says besides the booking: when we'll reply, and where the
    Good Faith Estimate notice is."""
    return {"next_step": next_step.sentence(consultation),
            "next_step_html": next_step.sentence(consultation, html=True),
            "good_faith_estimate_url": links.external_url("public.good_faith_estimate")}


def queue_booked(consultation: ConsultationRequest) -> list[OutboxEmail]:
    """A request without a time got one from the waitlist: told as a new booking (the
    caller has already raised ``booking_sequence``)."""
    prefix = _prefix(consultation, f"booked:{consultation.booking_sequence}")
    client = _queue_client(consultation, f"{prefix}:client", "confirmation",
                           "client_confirmation", _l("Your free consultation is booked"),
                           ics=_ics(consultation), **_confirmation_extras(consultation))
    therapist = _queue_therapist(
        consultation, consultation.therapist, prefix, "therapist_notice", "therapist_new",
        f"Consultation {consultation.reference} is booked",
        headline="A consultation time has been booked.")
    calendar_writeback.queue(consultation, prefix)
    return _rows(client, therapist)


def queue_waitlist_offer(consultation: ConsultationRequest, *, key: str, offered_when: str,
                         offered_therapist: Therapist | None,
                         offer_url: str) -> OutboxEmail | None:
    """A freed time offered to a waitlisted client, with the link that books it."""
    return _queue_client(consultation, key, "waitlist_offer", "client_waitlist_offer",
                         _l("An earlier consultation time is open"), offered_when=offered_when,
                         offered_therapist=offered_therapist, offer_url=offer_url)


def queue_rescheduled(consultation: ConsultationRequest, *, previous_start: datetime | None,
                      previous_therapist_id: int | None = None) -> list[OutboxEmail]:
    """A new time (the caller has already raised ``booking_sequence`` and cleared
    ``reminder_queued_at``: the new time earns its own reminder)."""
    supersede_reminders(consultation)
    prefix = _prefix(consultation, f"rescheduled:{consultation.booking_sequence}")
    previous_when = _when(previous_start, consultation.language)
    client = _queue_client(
        consultation, f"{prefix}:client", "rescheduled_client", "client_rescheduled",
        _l("Your consultation has a new time"), ics=_ics(consultation),
        previous_when=previous_when,
    )
    changed = previous_therapist_id not in (None, consultation.therapist_id)
    if changed:
        therapist = _queue_therapist(
            consultation, consultation.therapist, prefix, "therapist_notice", "therapist_new",
            f"Consultation {consultation.reference} is now with you",
            headline="A consultation has been moved to you.",
        )
    else:
        therapist = _queue_therapist(
            consultation, consultation.therapist, prefix, "rescheduled_therapist",
            "therapist_rescheduled", f"Consultation {consultation.reference} has a new time",
            previous_when=previous_when,
        )
    released = _queue_released(consultation, previous_therapist_id, prefix) if changed else None
    calendar_writeback.queue(consultation, prefix, previous_therapist_id=previous_therapist_id)
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
    prefix = _prefix(consultation, f"cancelled:{consultation.booking_sequence}")
    booked = consultation.starts_at is not None
    ics = _ics(consultation, cancelled=True) if booked else None
    client = _queue_client(consultation, f"{prefix}:client", "cancelled_client",
                           "client_cancelled", _l("Your consultation is canceled"), ics=ics, by=by)
    therapist = _queue_therapist(consultation, consultation.therapist, prefix,
                                 "cancelled_therapist", "therapist_cancelled",
                                 f"Consultation {consultation.reference} was canceled", by=by)
    for notice in _rows(client, therapist):
        supersede_for_cancellation(consultation, notice)
    calendar_writeback.queue(consultation, prefix)
    return _rows(client, therapist)


def queue_verification_code(consultation: ConsultationRequest, code: str, *, key: str,
                            expires_at: datetime) -> OutboxEmail | None:
    """The 6-digit code for a pending request, to the address it gave. Nothing else the
    visitor typed goes in it: the address is not theirs until the code comes back."""
    context = {"code": code, "minutes": current_app.config["VERIFY_HOLD_MINUTES"],
               "until": f"{format_time(expires_at, consultation.language)} PT"}
    return _queue(consultation, key, "verification_code", consultation.email,
                  _l("Your confirmation code"), "client_verification_code", context,
                  language=consultation.language)


def queue_already_booked(existing: ConsultationRequest, *, key: str) -> OutboxEmail | None:
    """To an address that already has the open request ``existing``, instead of a code:
    it says so and links to that request. Nothing of the new answers goes in it."""
    language = current_language()  # the visitor's, reading now
    context = {"reference": existing.reference, "when": _when(existing.starts_at, language),
               "manage_url": links.manage_url(existing)}
    return _queue(existing, key, "already_booked", existing.email,
                  _l("About your consultation request"), "client_already_booked", context,
                  language=language)


def queue_reopened(consultation: ConsultationRequest) -> list[OutboxEmail]:
    """The practice took back a cancelled request: "your consultation is back on" to the
    client (with the calendar event again, same UID, under a higher SEQUENCE than the
    cancellation's, so calendars bring it back) and a notice to the therapist (or the
    intake address). The caller has already raised ``booking_sequence`` and cleared
    ``reminder_queued_at``: the time earns a fresh reminder."""
    supersede_reminders(consultation)
    prefix = _prefix(consultation, f"reopened:{consultation.booking_sequence}")
    booked = consultation.starts_at is not None
    client = _queue_client(consultation, f"{prefix}:client", "reopened_client",
                           "client_reopened", _l("Your consultation is back on"),
                           ics=_ics(consultation) if booked else None)
    therapist = _queue_therapist(consultation, consultation.therapist, prefix,
                                 "reopened_therapist", "therapist_reopened",
                                 f"Consultation {consultation.reference} is back on")
    calendar_writeback.queue(consultation, prefix)
    return _rows(client, therapist)


# What a cancellation makes pointless while it still waits: the news of a booking,
# of its new time or of its coming up, and an older cancellation (after a reopen)
# that the new one repeats. Not "no longer with you": it goes to a previous
# therapist, whom the cancellation notice (to the current one) does not reach.
CANCELLATION_SUPERSEDES = ("confirmation", "therapist_notice", "rescheduled_client",
                           "rescheduled_therapist", "reopened_client", "reopened_therapist",
                           "reminder", "cancelled_client", "cancelled_therapist")


def supersede_for_cancellation(consultation: ConsultationRequest, notice: OutboxEmail) -> None:
    """Stop what ``notice`` (a just-queued cancellation) makes pointless for its recipient.

    The rule, per request and recipient (client, therapist and intake are each
    judged on their own):

    * Earlier messages of the kinds in ``CANCELLATION_SUPERSEDES`` still
      ``queued`` (waiting, or backing off after a refusal) become ``superseded``.
      Rows already ``sending`` are past stopping: they go, and the outbox's
      per-request order sends the cancellation after them.
    * The cancellation itself is superseded when the recipient has earlier
      messages about this request and none of them was ``sent`` or is
      ``sending`` (all still waiting, refused, failed or superseded). A
      therapist whose "new consultation" notice never left does not need to
      hear that it is cancelled; a client whose confirmation was never
      delivered is not told that a booking they never saw is off.
    * A recipient with no earlier message about the request at all (a request
      from before the outbox, data entered by hand) still gets it: when in
      doubt the cancellation goes, since a missed one (someone keeping a time
      that is gone) is worse than a puzzling one.

    The limit: a server that took a message but whose reply was lost (the
    connection dropped after the data) leaves the row queued for a retry, and
    such a recipient is counted as never told.
    """
    earlier = and_(OutboxEmail.request_id == consultation.id,
                   OutboxEmail.recipient == notice.recipient, OutboxEmail.id < notice.id)
    db.session.execute(
        update(OutboxEmail)
        .where(earlier, OutboxEmail.kind.in_(CANCELLATION_SUPERSEDES),
               OutboxEmail.status == "queued")
        .values(status="superseded")
        .execution_options(synchronize_session=False)
    )
    told = db.session.scalar(select(OutboxEmail.id).where(
        earlier, OutboxEmail.status.in_(("sent", "sending"))).limit(1))
    anything = db.session.scalar(select(OutboxEmail.id).where(earlier).limit(1))
    if told is None and anything is not None:
        notice.status = "superseded"


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
    prefix = _prefix(consultation, f"reassigned:{count + 1}")
    therapist = _queue_therapist(
        consultation, consultation.therapist, prefix, "therapist_notice", "therapist_new",
        f"Consultation {consultation.reference} is now with you",
        headline="A consultation has been assigned to you.",
    )
    released = _queue_released(consultation, previous_therapist_id, prefix)
    calendar_writeback.queue(consultation, prefix, previous_therapist_id=previous_therapist_id)
    return _rows(therapist, released)


def queue_due_reminders(now: datetime | None = None) -> int:
    """Queue a reminder for every open booking starting within 24 hours; how many were new."""
    now = now or datetime.now(UTC)
    due = db.session.scalars(
        select(ConsultationRequest).where(
            ConsultationRequest.slot_start.is_not(None),
            ConsultationRequest.slot_start > to_db(now),
            ConsultationRequest.slot_start <= to_db(now + REMINDER_WINDOW),
            ConsultationRequest.status.in_(OPEN_STATUSES),
            ConsultationRequest.reminder_queued_at.is_(None),
        ).order_by(ConsultationRequest.slot_start)
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
    key = f"{_prefix(consultation, 'reminder')}:{consultation.booking_sequence}:client"
    row = _queue_client(consultation, key, "reminder", "client_reminder",
                        _l("Reminder: your free consultation is coming up"))
    consultation.reminder_queued_at = to_db(now)
    return row is not None


def _log_skipped(consultation: ConsultationRequest, error: Exception) -> None:
    log.error("reminder for request id=%s not queued: %s", consultation.id,
              type(error).__name__)


def supersede_reminders(consultation: ConsultationRequest) -> int:
    """Queued reminders of a request whose time changed or was cancelled never go out.

    Rows already ``sending`` or ``sent`` are past stopping; how many were stopped.
    """
    if consultation.id is None:
        return 0
    result = db.session.execute(
        update(OutboxEmail)
        .where(OutboxEmail.request_id == consultation.id, OutboxEmail.kind == "reminder",
               OutboxEmail.status == "queued")
        .values(status="superseded")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


# -- composing -----------------------------------------------------------------

def _prefix(consultation: ConsultationRequest, event: str) -> str:
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


def _practice() -> dict[str, str]:
    config = current_app.config
    return {"name": config["PRACTICE_NAME"], "phone": config["PRACTICE_PHONE"],
            "email": config["PRACTICE_NOTIFY_EMAIL"], "reply_within": config["REPLY_WITHIN"]}


def _queue_client(consultation: ConsultationRequest, key: str, kind: str, template: str,
                  subject: str, *, ics: str | None = None, **extra) -> OutboxEmail | None:
    context = _client_context(consultation, has_ics=ics is not None, **extra)
    return _queue(consultation, key, kind, consultation.email, subject, template, context, ics,
                  language=consultation.language)


def render_client_email(consultation: ConsultationRequest, template: str,
                        **extra) -> tuple[str, str]:
    """The text and HTML a client email of ``template`` would have, queuing nothing:
    what staff see in a preview is what the outbox would store."""
    context = {"practice": _practice(), **_client_context(consultation, **extra)}
    with in_language(consultation.language):
        return (render_template(f"email/{template}.txt", **context),
                render_template(f"email/{template}.html", **context))


def queue_client_email(consultation: ConsultationRequest, event: str, kind: str,
                       template: str, subject: str, **extra) -> OutboxEmail | None:
    """One client email for ``event`` (unique per request: the same event twice
    queues it once)."""
    return _queue_client(consultation, f"{_prefix(consultation, event)}:client", kind,
                         template, subject, **extra)


def _client_context(consultation: ConsultationRequest, *, has_ics: bool = False,
                    **extra) -> dict:
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


def _queue_therapist(consultation: ConsultationRequest, therapist: Therapist | None,
                     prefix: str, kind: str, template: str, subject: str,
                     **extra) -> OutboxEmail | None:
    """A notice to a therapist, or to the intake address when nobody is assigned."""
    if therapist is None:
        who, recipient = "practice", current_app.config["PRACTICE_NOTIFY_EMAIL"]
    else:
        who, recipient = f"therapist:{therapist.id}", therapist.email
    # Only these three facts about the request may reach a therapist's inbox.
    context = {"reference": consultation.reference, "when": _when(consultation.starts_at),
               "admin_url": links.admin_request_url(consultation),
               "therapist_name": therapist.name if therapist else None, **extra}
    return _queue(consultation, f"{prefix}:{who}", kind, recipient, subject, template, context)


def _queue_released(consultation: ConsultationRequest, therapist_id: int | None,
                    prefix: str) -> OutboxEmail | None:
    previous = db.session.get(Therapist, therapist_id) if therapist_id else None
    if previous is None:
        return None
    return _queue(
        consultation, f"{prefix}:previous:{previous.id}", "no_longer_with_you", previous.email,
        f"Consultation {consultation.reference} is no longer with you", "therapist_released",
        {"reference": consultation.reference, "therapist_name": previous.name,
         "when": _when(consultation.starts_at)},
    )


def _ics(consultation: ConsultationRequest, *, cancelled: bool = False) -> str:
    with in_language(consultation.language):
        return _ics_text(consultation, cancelled=cancelled)


def _ics_text(consultation: ConsultationRequest, *, cancelled: bool) -> str:
    config = current_app.config
    therapist = consultation.therapist
    reference = consultation.reference
    with_whom = f"{therapist.name}, {therapist.licence}" if therapist else None
    if cancelled and with_whom:
        # The calendar program removes the event; its text says why, nothing to do.
        what = gettext("Canceled: free 30-minute consultation with %(therapist)s. "
                       "Reference %(reference)s.", therapist=with_whom, reference=reference)
    elif cancelled:
        what = gettext("Canceled: free 30-minute consultation. Reference %(reference)s.",
                       reference=reference)
    elif with_whom:
        what = gettext("Free 30-minute consultation with %(therapist)s. Reference "
                       "%(reference)s. To change the time or cancel, use the link in your "
                       "email.", therapist=with_whom, reference=reference)
    else:
        what = gettext("Free 30-minute consultation. Reference %(reference)s. To change the "
                       "time or cancel, use the link in your email.", reference=reference)
    how = () if cancelled else (next_step.sentence(consultation),)
    description = " ".join((*how, what,
                            gettext("Not for emergencies: call or text 988, or call 911.")))
    return build_ics(
        reference=consultation.reference, domain=config["CALENDAR_UID_DOMAIN"],
        starts_at=consultation.starts_at, ends_at=consultation.ends_at,
        sequence=consultation.booking_sequence,
        summary=gettext("Free consultation"), description=description,
        location=next_step.location(consultation),
        organizer_email=config["PRACTICE_NOTIFY_EMAIL"], organizer_name=config["PRACTICE_NAME"],
        attendee_email=clean_address(consultation.email), cancelled=cancelled,
    )


# -- storing -------------------------------------------------------------------

def _queue(consultation: ConsultationRequest, key: str, kind: str, recipient: str,
           subject: str, template: str, context: dict, ics: str | None = None,
           language: str = "en") -> OutboxEmail | None:
    """Add one outbox row unless its key is already there; None when it was.
    ``language``: the client's, for their emails; staff read English."""
    if db.session.scalar(select(OutboxEmail.id).where(OutboxEmail.key == key)) is not None:
        return None
    context = {"practice": _practice(), **context}
    with in_language(language):
        subject = str(subject)  # a lazy text from a client email reads in their language
        check_subject(subject)
        row = OutboxEmail(
            key=key, kind=kind, request_id=consultation.id, recipient=clean_address(recipient),
            subject=subject, ics=ics, message_id=make_msgid(domain=_sender_domain()),
            body_text=render_template(f"email/{template}.txt", **context),
            body_html=render_template(f"email/{template}.html", **context),
        )
    # A savepoint: a row another transaction just added is skipped, and the
    # caller's transaction carries on as if we had found it above.
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return None
    return row


def check_subject(subject: str) -> None:
    lowered = subject.lower()
    if any(word in lowered for word in FORBIDDEN_SUBJECT_WORDS) \
            or text_rules.one_line_problem(subject):
        raise ValueError("an email subject must be neutral and on one line")


def _sender_domain() -> str:
    _, address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])
    return address.rpartition("@")[2] or "localhost"
