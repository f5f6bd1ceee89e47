"""Back-office users in the database: their accounts, roles, second factor and
single-use recovery codes."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.models import utcnow


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


ROLES = {"admin": "Admin", "therapist": "Therapist"}


class User(UserMixin, db.Model):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    therapist_id: Mapped[int | None] = mapped_column(
        ForeignKey("therapist.id", ondelete="SET NULL")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Flask-Login's alternative id: rotated at logout and password change, so a
    # copied session cookie stops working on the server side too.
    session_token: Mapped[str] = mapped_column(
        String(64), unique=True, default=new_session_token
    )
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # The second factor (TOTP). The secret is set when enrolment starts and counts
    # only once ``mfa_enrolled_at`` is set; ``totp_last_step`` is the time-step of the
    # last code accepted, so a code cannot be used twice within its window.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    mfa_enrolled_at: Mapped[datetime | None] = mapped_column(DateTime)

    therapist: Mapped[Therapist | None] = relationship()
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True)

    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def mfa_enrolled(self) -> bool:
        return self.mfa_enrolled_at is not None and bool(self.totp_secret)


class RecoveryCode(db.Model):
    """A single-use code that stands in for the second factor (a lost phone). Only
    a hash is stored; the person saw the code once, at enrolment."""

    __tablename__ = "recovery_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="recovery_codes")
