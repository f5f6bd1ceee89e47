"""The therapists the booking pages offer, their weekly hours and their time off."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models import utcnow


class Therapist(db.Model):
    __tablename__ = "therapist"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254))
    licence_type: Mapped[str] = mapped_column(String(40))
    licence_number: Mapped[str] = mapped_column(String(40))
    bio: Mapped[str] = mapped_column(Text, default="")
    # The same bio for the Spanish pages; empty: they show the English one.
    bio_es: Mapped[str] = mapped_column(Text, default="", server_default="")

    def bio_in(self, language: str) -> str:
        """The bio for a page in ``language``: the Spanish one when there is one."""
        return self.bio_es if language == "es" and self.bio_es else self.bio
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The therapist's video room (https): clients may choose video only where there is one.
    video_url: Mapped[str | None] = mapped_column(String(500))
    accepting_new: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    hours: Mapped[list[WeeklyHours]] = relationship(
        back_populates="therapist", cascade="all, delete-orphan",
        order_by="(WeeklyHours.weekday, WeeklyHours.start)",
    )
    time_off: Mapped[list[TimeOff]] = relationship(
        back_populates="therapist", cascade="all, delete-orphan", order_by="TimeOff.starts_at"
    )

    @property
    def licence(self) -> str:
        return f"{self.licence_type} #{self.licence_number}"

    @property
    def bookable(self) -> bool:
        return self.active and self.accepting_new


class WeeklyHours(db.Model):
    """One range of a therapist's weekly hours, in Pacific wall-clock time."""

    __tablename__ = "weekly_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)

    therapist: Mapped[Therapist] = relationship(back_populates="hours")


class TimeOff(db.Model):
    __tablename__ = "time_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapist.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    note: Mapped[str] = mapped_column(String(200), default="")

    therapist: Mapped[Therapist] = relationship(back_populates="time_off")
