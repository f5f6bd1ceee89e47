"""A therapist's own calendar in the database: the connection, the busy ranges read
from it (a start and an end, nothing else) and the private feed of consultations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.booking.therapists import Therapist
from portal.encryption import EncryptedText
from portal.extensions import db
from portal.models import utcnow

CALENDAR_KINDS = {"ics": "iCalendar address", "caldav": "CalDAV calendar"}


class TherapistCalendar(db.Model):
    """A therapist's own calendar, read for busy times (portal.calendars): a secret
    iCalendar address or a CalDAV calendar with its user and app password (encrypted,
    never shown back). ``read_ok_at``: the last successful read; without one for
    CALENDAR_STALE_MINUTES the therapist offers no times. ``fresh_since``: when the
    current run of successful reads began (it moves only after a stale spell, and its
    trigger raises the availability version). ``last_error``: a code word
    (portal.calendars.reading.ERRORS says it in words)."""

    __tablename__ = "therapist_calendar"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # CALENDAR_KINDS
    url: Mapped[str] = mapped_column(
        EncryptedText("therapist_calendar", "url"))  # a secret address is a password
    username: Mapped[str | None] = mapped_column(String(254))
    password: Mapped[str | None] = mapped_column(EncryptedText("therapist_calendar", "password"))
    # What the server said the calendar's version was (an ETag, a CalDAV ctag).
    validator: Mapped[str | None] = mapped_column(String(300))
    connected_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    read_ok_at: Mapped[datetime | None] = mapped_column(DateTime)
    fresh_since: Mapped[datetime | None] = mapped_column(DateTime)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(40))
    event_count: Mapped[int | None] = mapped_column(Integer)

    therapist: Mapped[Therapist] = relationship()

    @property
    def kind_label(self) -> str:
        return CALENDAR_KINDS.get(self.kind, self.kind)


class CalendarBusy(db.Model):
    """One busy range from a therapist's own calendar: a start and an end, nothing
    else (no title, attendees or description is ever stored)."""

    __tablename__ = "calendar_busy"
    __table_args__ = (Index("ix_calendar_busy_therapist", "therapist_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapist.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime)


class CalendarFeed(db.Model):
    """A therapist's private feed of their consultations (``/calendar/<token>.ics``).
    The token is found by its SHA-256; the token itself is kept encrypted so that the
    back office and ``calendars feed-url`` can show the address again. A new token
    replaces the row: the old address stops working."""

    __tablename__ = "calendar_feed"

    id: Mapped[int] = mapped_column(primary_key=True)  # rotate-keys walks rows by id
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token: Mapped[str] = mapped_column(EncryptedText("calendar_feed", "token"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
