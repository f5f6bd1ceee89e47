"""Texts put in the outbox (its ``sms`` channel), in the caller's transaction, like the
emails of portal.messages.notifications: the confirmation when consent is given, a booking, a
new time or a cancellation, and the reminders 24 hours and 2 hours before. One key
per event, so an event queued twice texts once.

A text is queued only while its request has consent and its number has not said
STOP; the sender checks both again just before sending, so a STOP that arrives
while a text waits stops it too. Each text also records until when it is worth
sending (the consultation's start): held back by quiet hours past that, it is
dropped rather than sent late.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, exists, select, update

from portal.extensions import db
from portal.messages.kinds import Channel
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import OUT_OR_GOING, OutboxState
from portal.models import (
    ConsultationRequest,
    as_utc,
    open_bookings_starting,
    to_db,
    utcnow,
)
from portal.texts import compose, numbers
from portal.texts.consent import consent_of, has_consent, opted_out
from portal.texts.models import TextConsent, TextMessage
from portal.texts.states import TextState

log = logging.getLogger("portal.texts")
CHANNEL = Channel.SMS
REMINDER_WINDOW = timedelta(hours=24)
LAST_REMINDER = timedelta(hours=2)
# A confirmation of a request without a time is worth sending for this long.
UNBOOKED_USEFUL_FOR = timedelta(days=2)
# What a cancellation makes pointless while it waits.
CANCELLATION_DROPS = ("text_confirmation", "text_booked", "text_reminder_24h",
                      "text_reminder_2h", "text_rescheduled")
REMINDERS = ("text_reminder_24h", "text_reminder_2h")


def recipient(number: str) -> str:
    """The outbox row's recipient: never the whole number."""
    return f"text to …{numbers.last_digits(number)}"


def queue(consultation: ConsultationRequest, kind: str, event: str, *,
          starts_at: datetime | None = None, expires_at: datetime | None = None,
          now: datetime | None = None) -> OutboxEmail | None:
    """Queue the text ``kind`` for ``event`` (its key), if the client agreed to texts;
    None when not (or when the event has queued it already)."""
    now = now or datetime.now(UTC)
    consent = consent_of(consultation)
    if not has_consent(consultation) or opted_out(consent.phone):
        return None
    key = f"request:{consultation.id}:text:{event}"
    if db.session.scalar(select(OutboxEmail.id).where(OutboxEmail.key == key)) is not None:
        return None
    starts_at = starts_at or consultation.starts_at
    useful_until = expires_at or (as_utc(starts_at) if starts_at
                                  else now + UNBOOKED_USEFUL_FOR)
    if useful_until <= now:
        return None
    text = compose.body(kind, consultation, starts_at=starts_at)
    forbidden = (consultation.first_name, consultation.last_name, consultation.preferred_name,
                 consultation.therapist.name if consultation.therapist else None)
    problem = compose.problem(text, consultation.language,
                              forbidden=tuple(_name_words(forbidden)))
    if problem:  # a wording or a setting is wrong; the emails still go
        log.error("text for request id=%s kind=%s not queued: %s", consultation.id, kind,
                  problem)
        return None
    row = OutboxEmail(key=key, kind=kind, channel=CHANNEL, request_id=consultation.id,
                      recipient=recipient(consent.phone), subject="", body_text=text,
                      message_id=f"text-{uuid.uuid4().hex}",
                      next_attempt_at=to_db(compose.next_allowed(now)))
    db.session.add(row)
    db.session.flush()
    db.session.add(TextMessage(outbox_id=row.id, request_id=consultation.id,
                               expires_at=to_db(useful_until)))
    db.session.flush()
    return row


def _name_words(names) -> list[str]:
    """Names to look for in a text: each word of three letters or more."""
    return [word for name in names if name for word in name.split() if len(word) >= 3]


def confirmation(consultation: ConsultationRequest) -> OutboxEmail | None:
    """Consent was just given: say texts are on (and for which time)."""
    count = db.session.scalar(select(db.func.count(OutboxEmail.id)).where(
        OutboxEmail.request_id == consultation.id, OutboxEmail.channel == CHANNEL,
        OutboxEmail.kind == "text_confirmation"))
    return queue(consultation, "text_confirmation", f"confirmation:{count + 1}")


def booked(consultation: ConsultationRequest) -> OutboxEmail | None:
    """A time was booked (from the waitlist) or a cancelled booking is back on."""
    return queue(consultation, "text_booked", f"booked:{consultation.booking_sequence}")


def rescheduled(consultation: ConsultationRequest) -> OutboxEmail | None:
    drop_queued(consultation.id, kinds=CANCELLATION_DROPS, reason="new time")
    return queue(consultation, "text_rescheduled",
                 f"rescheduled:{consultation.booking_sequence}")


def cancelled(consultation: ConsultationRequest) -> OutboxEmail | None:
    """The cancellation, unless the client was never texted about this request at all."""
    drop_queued(consultation.id, kinds=CANCELLATION_DROPS, reason="the consultation was canceled")
    told = db.session.scalar(select(OutboxEmail.id).where(
        OutboxEmail.request_id == consultation.id, OutboxEmail.channel == CHANNEL,
        OutboxEmail.status.in_(OUT_OR_GOING)).limit(1))
    if told is None:
        return None
    starts_at = consultation.starts_at
    expires = starts_at if starts_at else datetime.now(UTC) + UNBOOKED_USEFUL_FOR
    return queue(consultation, "text_cancelled", f"cancelled:{consultation.booking_sequence}",
                 starts_at=starts_at, expires_at=expires)


def _just_told(consultation: ConsultationRequest) -> bool:
    """A text about this booking went inside its last 24 hours already (consent, booking,
    new time): it said what the 24-hour reminder would."""
    window_opened = to_db(consultation.starts_at - REMINDER_WINDOW)
    return db.session.scalar(select(OutboxEmail.id).where(
        OutboxEmail.request_id == consultation.id, OutboxEmail.channel == CHANNEL,
        OutboxEmail.kind.in_(("text_confirmation", "text_booked", "text_rescheduled")),
        OutboxEmail.created_at > window_opened).limit(1)) is not None


def drop_queued(request_id: int | None, *, kinds=None, reason: str) -> int:
    """Queued texts of a request that must not go any more: superseded; how many."""
    if request_id is None:
        return 0
    where = and_(OutboxEmail.request_id == request_id, OutboxEmail.channel == CHANNEL,
                 OutboxEmail.status == OutboxState.QUEUED)
    if kinds:
        where = and_(where, OutboxEmail.kind.in_(kinds))
    ids = list(db.session.scalars(select(OutboxEmail.id).where(where)))
    if not ids:
        return 0
    db.session.execute(update(OutboxEmail).where(OutboxEmail.id.in_(ids))
                       .values(status=OutboxState.SUPERSEDED, last_error=f"Not sent: {reason}")
                       .execution_options(synchronize_session=False))
    db.session.execute(update(TextMessage).where(TextMessage.outbox_id.in_(ids))
                       .values(state=TextState.DROPPED, updated_at=utcnow())
                       .execution_options(synchronize_session=False))
    return len(ids)


def queue_due_reminders(now: datetime | None = None) -> int:
    """The reminders due at ``now``: 24 hours before each booked consultation whose
    client agreed to texts (unless it is within 2 hours already), and 2 hours before;
    how many were new. Idempotent (one key per reminder and booking)."""
    now = now or datetime.now(UTC)
    due = db.session.scalars(
        open_bookings_starting(now, now + REMINDER_WINDOW).where(
            ConsultationRequest.ok_to_text.is_(True),
            exists().where(TextConsent.request_id == ConsultationRequest.id,
                           TextConsent.withdrawn_at.is_(None)))
    ).all()
    queued = 0
    for consultation in due:
        starts_at = consultation.starts_at
        sequence = consultation.booking_sequence
        try:
            with db.session.begin_nested():
                if starts_at - now > LAST_REMINDER:
                    if _just_told(consultation):
                        continue
                    row = queue(consultation, "text_reminder_24h", f"reminder-24h:{sequence}",
                                expires_at=starts_at - LAST_REMINDER, now=now)
                else:
                    row = queue(consultation, "text_reminder_2h", f"reminder-2h:{sequence}",
                                now=now)
                queued += row is not None
        except Exception as error:  # this request only; the next round tries again
            log.error("text reminder for request id=%s not queued: %s", consultation.id,
                      type(error).__name__)
    return queued
