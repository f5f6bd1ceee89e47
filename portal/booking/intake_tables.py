"""Intake's own tables: the switches an admin flips at run time and the anonymous
daily counts (portal.booking.intake reads and writes them)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db


class NotEligibleCount(db.Model):
    """Anonymous: how many people were turned away each day, and nothing else."""

    __tablename__ = "not_eligible_count"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AnonymousCount(db.Model):
    """Daily counts of events that leave no other trace (``kind``: "unverified", a
    pending request dropped because its email was never confirmed)."""

    __tablename__ = "anonymous_count"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class Setting(db.Model):
    """Small switches an admin changes at run time (the intake pause)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
