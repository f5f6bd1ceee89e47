"""What staff see about texts: on a request's page, its consent, the history of it and
every text with its delivery state; on the dashboard, the last 30 days in figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest, to_db
from portal.texts import backends, consent, numbers
from portal.texts.models import TextConsentEvent, TextMessage
from portal.texts.states import HANDED_OVER, NOT_ARRIVED, TextState

STATE_LABELS = {TextState.QUEUED: "Waiting", TextState.DROPPED: "Not sent",
                TextState.SENT: "Sent", TextState.DELIVERED: "Delivered",
                TextState.UNDELIVERED: "Not delivered", TextState.FAILED: "Failed"}
KIND_LABELS = {"text_confirmation": "Texts on", "text_booked": "Booked",
               "text_reminder_24h": "Reminder (24 h)", "text_reminder_2h": "Reminder (2 h)",
               "text_rescheduled": "New time", "text_cancelled": "Canceled"}


def panel(consultation: ConsultationRequest) -> dict:
    given = consent.consent_of(consultation)
    rows = db.session.execute(
        select(OutboxEmail, TextMessage)
        .join(TextMessage, TextMessage.outbox_id == OutboxEmail.id)
        .where(OutboxEmail.request_id == consultation.id)
        .order_by(OutboxEmail.created_at, OutboxEmail.id)).all()
    texts = [{"kind": KIND_LABELS.get(row.kind, row.kind), "queued_at": row.created_at,
              "state": STATE_LABELS.get(text.state, text.state), "state_key": text.state,
              "error": backends.describe_code(text.error_code) if text.error_code else
              (row.last_error or ""), "fallback": text.fallback_queued, "body": row.body_text}
             for row, text in rows]
    stopped = given is not None and consent.opted_out(given.phone)
    if given is None:
        state = "No consent to texts"
    elif stopped:
        state = "Texts stopped: the number replied STOP"
    elif not given.active or consultation.ok_to_text is not True:
        state = "Texts turned off"
    else:
        state = "Texts on"
    return {"state": state, "consent": given, "stopped": stopped,
            "digits": numbers.last_digits(given.phone) if given else None,
            "events": consent.history(consultation), "texts": texts}


def figures(now: datetime | None = None, days: int = 30) -> dict[str, int]:
    """Texts sent, delivered, failed and numbers opted out over the last ``days``."""
    since = to_db((now or datetime.now(UTC)) - timedelta(days=days))
    counts = dict(db.session.execute(
        select(TextMessage.state, func.count(TextMessage.id))
        .where(TextMessage.created_at >= since).group_by(TextMessage.state)).all())
    sent = sum(counts.get(s, 0) for s in HANDED_OVER)
    opted_out = db.session.scalar(
        select(func.count(TextConsentEvent.id))
        .where(TextConsentEvent.at >= since,
               TextConsentEvent.action.in_(("stop", "unsubscribed"))))
    return {"sent": sent, "delivered": counts.get(TextState.DELIVERED, 0),
            "failed": sum(counts.get(s, 0) for s in NOT_ARRIVED),
            "opted_out": opted_out}
