"""What texting keeps: each request's consent (and the number it was given for), every
consent event, the numbers that replied STOP, and each text's delivery state.

Numbers are personal data: stored encrypted (portal.encryption), with a keyed hash
(portal.texts.numbers) beside them so that an inbound STOP finds its rows without
the number being readable in the database. Rows about a request go with it
(CASCADE); an opt-out outlives every request, since a number that said STOP stays
stopped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.encryption import EncryptedText
from portal.extensions import db
from portal.models import utcnow
from portal.texts.states import TextState

# Consent events, as staff read them.
EVENTS = {
    "given": "agreed to texts",
    "withdrawn": "turned texts off",
    "stop": "replied STOP",
    "start": "replied START",
    "help": "replied HELP",
    "message": "sent a text",
    "unsubscribed": "carrier says the number unsubscribed",
}


class TextConsent(db.Model):
    """A request's consent to texts: the number it covers, when and under which wording.
    ``withdrawn_at`` set: no texts (turned off on the form, or STOP)."""

    __tablename__ = "text_consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="CASCADE"), unique=True)
    phone: Mapped[str] = mapped_column(EncryptedText("text_consent", "phone"))
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    wording_version: Mapped[str] = mapped_column(String(20))
    given_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None


class TextConsentEvent(db.Model):
    """One thing that happened to a request's consent, or a text its client sent us.
    Only ever inserted."""

    __tablename__ = "text_consent_event"
    __table_args__ = (Index("ix_text_event_request", "request_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(20))  # a key of EVENTS
    # "prepare form", "manage page", "text", "carrier"
    source: Mapped[str] = mapped_column(String(20))
    wording_version: Mapped[str | None] = mapped_column(String(20))
    phone: Mapped[str] = mapped_column(EncryptedText("text_consent_event", "phone"))
    # What an unknown inbound text said, for staff to read (never answered automatically).
    body: Mapped[str | None] = mapped_column(EncryptedText("text_consent_event", "body"))

    @property
    def label(self) -> str:
        return EVENTS.get(self.action, self.action)


class TextOptOut(db.Model):
    """A number that replied STOP (or that the carrier reports unsubscribed): nothing
    is texted to it until it replies START."""

    __tablename__ = "text_opt_out"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Kept (encrypted) so that the hash can be written again under a new key.
    phone: Mapped[str] = mapped_column(EncryptedText("text_opt_out", "phone"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TextMessage(db.Model):
    """The delivery state of one text (an outbox row on the ``sms`` channel)."""

    __tablename__ = "text_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_email.id", ondelete="CASCADE"), unique=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="CASCADE"), index=True)
    # After this it is pointless (the consultation started): never sent later.
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    provider_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(12), default=TextState.QUEUED)  # TextState
    error_code: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A fallback email was queued for it (it failed for good).
    fallback_queued: Mapped[bool] = mapped_column(default=False)
