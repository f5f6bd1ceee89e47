"""The outbox in the database: one row per message (an email, a text, a calendar
write), written in the same transaction as the event that queues it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.encryption import EncryptedText
from portal.extensions import db
from portal.messages.outbox_states import OutboxState
from portal.models import utcnow


class OutboxEmail(db.Model):
    """An email waiting to be sent, written in the same transaction as its event."""

    __tablename__ = "outbox_email"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Event and recipient: the same event can never queue the same email twice.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    # "email", or "calendar": an event written into a therapist's CalDAV calendar
    # (portal.calendars.writeback; ``ics`` holds it, empty for a removal). Each channel
    # keeps a request's rows in order on its own.
    channel: Mapped[str] = mapped_column(String(10), default="email", server_default="email")
    # CASCADE: deleting a request deletes every email about it, queued ones included.
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    # Encrypted: an email carries what people wrote (a decline's personal line).
    body_text: Mapped[str | None] = mapped_column(EncryptedText("outbox_email", "body_text"))
    body_html: Mapped[str | None] = mapped_column(EncryptedText("outbox_email", "body_html"))
    ics: Mapped[str | None] = mapped_column(EncryptedText("outbox_email", "ics"))
    message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default=OutboxState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
