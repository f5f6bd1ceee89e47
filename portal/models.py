"""The portal's data: consultation requests with their email checks, waitlist offers
and notes, and the audit log. Data that one part of the portal owns lives beside it
(``portal.booking.therapists``, ``portal.booking.intake_tables``, the availability
version in ``portal.booking.availability_version``, ``portal.staff.models``,
``portal.messages.models``, ``portal.calendars.models``, ``portal.texts.models``) and is
imported at the end of this module, so every table is known wherever models are. The
words for a request's answers are in ``portal.booking.answers``.

All timestamps are stored as naive UTC (the same on SQLite and PostgreSQL) and
converted with :func:`as_utc` when they leave the database.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Text,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.booking.answers import INTERESTS, LANGUAGE_NAMES, PAYMENT_METHODS, SELF_PAY
from portal.booking.statuses import (
    HOLDS_SLOT_SQL,
    OPEN_SQL,
    OPEN_STATUSES,
    STATUS_LABELS,
    RequestStatus,
)
from portal.encryption import EncryptedText
from portal.extensions import db

if TYPE_CHECKING:  # defined beside the code that owns it, imported at the end
    from portal.booking.therapists import Therapist
    from portal.staff.models import User


def utcnow() -> datetime:
    """Now, as the naive UTC value the database stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored naive UTC value as an aware datetime."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_db(value: datetime | None) -> datetime | None:
    """An aware datetime as the naive UTC value the database stores."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def search_key(length: int) -> String:
    """A column for normalised search text. On PostgreSQL it sorts bytewise ("C"), so
    prefix ranges (``col >= 'cruz' AND col < 'cru{'``) work whatever the database's
    locale; other collations ignore punctuation and would match nothing."""
    return String(length).with_variant(postgresql.VARCHAR(length, collation="C"), "postgresql")


def normalise_search(text: str) -> str:
    """Text as the ``search_key`` columns store it and searches compare it: stripped
    and casefolded (inner spaces kept). Emails keep their accents: "josé@" and
    "jose@" are different mailboxes, and one open request per address relies on it."""
    return text.strip().casefold()


def client_email_key(email: str) -> str:
    """A client's address as ``ConsultationRequest.email_normalised`` stores it, and as
    the one-open-request-per-address rule compares it: ``normalise_search`` (stripped,
    casefolded, accents kept). Staff addresses are lower-cased instead, to match the
    database's ``lower()``: accounts.staff_email_key."""
    return normalise_search(email)


# The search columns that hold names (normalise_name); the others hold emails.
NAME_SEARCH_COLUMNS = ("first_name_normalised", "last_name_normalised")


def normalise_name(text: str) -> str:
    """A name as the name ``search_key`` columns store it: ``normalise_search``, then
    without accents (and compatibility forms folded), so "maria lopez" finds
    "María López" however the name was typed (composed or not)."""
    decomposed = unicodedata.normalize("NFKD", normalise_search(text))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def new_public_id() -> str:
    return secrets.token_urlsafe(18)  # 24 URL-safe characters, 144 random bits


def new_reference() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes
    return "C-" + "".join(secrets.choice(alphabet) for _ in range(7))


class ConsultationRequest(db.Model):
    __tablename__ = "consultation_request"
    __table_args__ = (
        # The guarantee that two people never hold the same therapist's time.
        Index(
            "uq_booking_therapist_slot", "therapist_id", "slot_start", unique=True,
            sqlite_where=text(HOLDS_SLOT_SQL), postgresql_where=text(HOLDS_SLOT_SQL),
        ),
        # One open request per email address. A shared phone is only flagged to staff
        # as a possible duplicate: refusing it would tell a stranger it has a request.
        Index(
            "uq_open_request_email", "email_normalised", unique=True,
            sqlite_where=text(OPEN_SQL), postgresql_where=text(OPEN_SQL),
        ),
        Index("ix_request_status_created", "status", "created_at"),
        Index("ix_request_therapist_created", "therapist_id", "created_at"),
        Index("ix_request_slot_start", "slot_start"),
        # Search (portal.admin.listing): each name index holds the other name, so "maria
        # lopez" is checked inside one index, and each search index holds the received
        # time, so the list sorts thousands of matches without reading the table.
        Index("ix_request_email_created", "email_normalised", "created_at"),
        Index("ix_request_last_first_name", "last_name_normalised", "first_name_normalised",
              "created_at"),
        Index("ix_request_first_last_name", "first_name_normalised", "last_name_normalised",
              "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    reference: Mapped[str] = mapped_column(String(16), unique=True, default=new_reference)
    # One-time token of the form that created the request: a resubmit finds it.
    submission_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.NEW)

    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    first_name_normalised: Mapped[str] = mapped_column(search_key(80))
    last_name_normalised: Mapped[str] = mapped_column(search_key(80))
    email: Mapped[str] = mapped_column(String(254))
    email_normalised: Mapped[str] = mapped_column(search_key(254))
    phone: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    # From "Help us prepare" (optional, after the code): NULL until answered.
    preferred_contact: Mapped[str | None] = mapped_column(String(10))
    # How the consultation happens: "phone" (the therapist calls the client) or "video"
    # (the therapist's video room). NULL on requests made before the journey asked it.
    meeting: Mapped[str | None] = mapped_column(String(5))
    interests: Mapped[str] = mapped_column(String(200), default="")  # comma-separated keys
    # Encrypted at rest (portal.encryption), like every text people write here.
    message: Mapped[str] = mapped_column(EncryptedText("consultation_request", "message"),
                                         default="")
    # The language the client made the request in ("en", "es"): later emails speak it.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # Version 2 of step 2. NULL on requests made before it asked them.
    preferred_name: Mapped[str | None] = mapped_column(String(80))
    ok_to_text: Mapped[bool | None] = mapped_column(Boolean)
    ok_to_voicemail: Mapped[bool | None] = mapped_column(Boolean)
    adult: Mapped[bool | None] = mapped_column(Boolean)
    payment: Mapped[str | None] = mapped_column(String(12))

    state: Mapped[str] = mapped_column(String(2))
    zip_code: Mapped[str] = mapped_column(String(10))
    ca_resident: Mapped[bool] = mapped_column(Boolean)
    in_california: Mapped[bool] = mapped_column(Boolean)

    therapist_id: Mapped[int | None] = mapped_column(
        ForeignKey("therapist.id", ondelete="SET NULL")
    )
    therapist_choice: Mapped[str] = mapped_column(String(10), default="any")
    slot_start: Mapped[datetime | None] = mapped_column(DateTime)
    slot_end: Mapped[datetime | None] = mapped_column(DateTime)
    booking_sequence: Mapped[int] = mapped_column(Integer, default=0)  # iCalendar SEQUENCE
    reminder_queued_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The missed (no-show) request this one was booked again from, through the link in
    # the "sorry we missed you" email. Unique: one missed consultation, one rebooking.
    rebooked_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="SET NULL"), unique=True)

    # "Email me if an earlier time opens" (step 2, only with no time chosen): see
    # portal.booking.waitlist for who counts as waiting.
    waitlist: Mapped[bool] = mapped_column(Boolean, default=False,
                                           server_default=text("false"))

    consent_at: Mapped[datetime] = mapped_column(DateTime)
    privacy_notice_version: Mapped[str] = mapped_column(String(20))
    ack_not_emergency_at: Mapped[datetime] = mapped_column(DateTime)

    therapist: Mapped[Therapist | None] = relationship()
    notes: Mapped[list[RequestNote]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RequestNote.created_at",
        passive_deletes=True,
    )
    verification: Mapped[EmailVerification | None] = relationship(
        foreign_keys="EmailVerification.request_id", back_populates="request",
        cascade="all, delete-orphan", passive_deletes=True,
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def call_name(self) -> str:
        """What to call the person: the name they asked for, else their first name."""
        return self.preferred_name or self.first_name

    @property
    def payment_label(self) -> str | None:
        return PAYMENT_METHODS.get(self.payment, self.payment) if self.payment else None

    @property
    def good_faith_estimate_due(self) -> bool:
        """Self-pay: the practice owes a Good Faith Estimate before the first paid session."""
        return self.payment == SELF_PAY

    @property
    def interest_keys(self) -> list[str]:
        return [key for key in self.interests.split(",") if key]

    @property
    def interest_labels(self) -> list[str]:
        return [INTERESTS.get(key, key) for key in self.interest_keys]

    @property
    def language_name(self) -> str:
        """The request's language as staff read it ("Spanish")."""
        return LANGUAGE_NAMES.get(self.language, self.language)

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def starts_at(self) -> datetime | None:
        return as_utc(self.slot_start)

    @property
    def ends_at(self) -> datetime | None:
        return as_utc(self.slot_end)

    def starts_after(self, now: datetime) -> bool:
        """Booked for a time still ahead of ``now`` (aware)."""
        starts_at = self.starts_at
        return starts_at is not None and starts_at > now


class EmailVerification(db.Model):
    """The code that turns a pending request into a real one, and how it is going.

    One row per pending request, deleted with it or when the code is used. The
    code is stored as an HMAC only. ``already_booked``: the address already had an
    open request (``duplicate_of_id``, NULL if that one is deleted meanwhile), so it
    was told so instead of getting a code, and this pending request can never be
    verified; it runs out like any other.
    """

    __tablename__ = "email_verification"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="CASCADE"), unique=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    wrong_tries: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=1)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    already_booked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the request came from, as portal.networks.network_key: a keyed hash of the
    # IPv6 /64 or IPv4 address, never the address; gone with the row once confirmed.
    network_key: Mapped[str | None] = mapped_column(String(32), index=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    request: Mapped[ConsultationRequest] = relationship(
        foreign_keys=[request_id], back_populates="verification"
    )
    duplicate_of: Mapped[ConsultationRequest | None] = relationship(
        foreign_keys=[duplicate_of_id]
    )


class WaitlistOffer(db.Model):
    """A freed time emailed to a waitlisted client (portal.booking.waitlist): at most one a day
    per request (``offered_on``, the Pacific date), and the time is theirs only if it is
    still free when they press "Book this time"."""

    __tablename__ = "waitlist_offer"
    __table_args__ = (
        Index("uq_waitlist_offer_day", "request_id", "offered_on", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="CASCADE"))
    therapist_id: Mapped[int | None] = mapped_column(
        ForeignKey("therapist.id", ondelete="SET NULL"))
    slot_start: Mapped[datetime] = mapped_column(DateTime)
    offered_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When the client took it, and whether it was still free then.
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(String(10))  # "booked" / "taken"

    request: Mapped[ConsultationRequest] = relationship()

    @property
    def starts_at(self) -> datetime | None:
        return as_utc(self.slot_start)


# The heading of a note the client wrote when canceling online (it has no author); notes
# written before the portal spoke US English throughout carry the older spelling.
CLIENT_CANCEL_NOTE_HEADING = "Reason the client gave when canceling online:"
_EARLIER_CLIENT_HEADINGS = (CLIENT_CANCEL_NOTE_HEADING,
                            "Reason the client gave when cancelling online:")


class RequestNote(db.Model):
    __tablename__ = "request_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("consultation_request.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # Staff notes, the decline's personal line, a client's cancellation reason: encrypted.
    body: Mapped[str] = mapped_column(EncryptedText("request_note", "body"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    request: Mapped[ConsultationRequest] = relationship(back_populates="notes")
    author: Mapped[User | None] = relationship()

    @property
    def written_by(self) -> str:
        """Who wrote the note, in words for the request page."""
        if self.author is not None:
            return self.author.email
        if self.body.startswith(_EARLIER_CLIENT_HEADINGS):
            return "The client"
        return "A former staff member"


class AuditEvent(db.Model):
    """Who did what, when. Rows are only ever inserted."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_request", "request_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # The user's email (lower case) or "system"/"client"; kept if the user is deleted.
    actor: Mapped[str] = mapped_column(String(254), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    # No foreign key: the trail outlives a deleted request.
    request_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")


def open_bookings_starting(after: datetime, until: datetime) -> Select:
    """The open requests whose booked time starts after ``after`` and by ``until``,
    earliest first: what the reminders (by email and by text) look for."""
    return select(ConsultationRequest).where(
        ConsultationRequest.slot_start > to_db(after),
        ConsultationRequest.slot_start <= to_db(until),
        ConsultationRequest.status.in_(OPEN_STATUSES),
    ).order_by(ConsultationRequest.slot_start)


# The rest of the data lives beside the code that owns it. Imported here, last, so
# that every table and relationship is known wherever the models are.
from portal.booking import availability_version, intake_tables, therapists  # noqa: E402, F401, I001
from portal.calendars import models as calendar_models  # noqa: E402, F401
from portal.messages import models as message_models  # noqa: E402, F401
from portal.staff import models as staff_models  # noqa: E402, F401
from portal.texts import models as text_models  # noqa: E402, F401
