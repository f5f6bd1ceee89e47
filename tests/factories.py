"""Test data factories. Call inside an app context; they add and flush, the test commits."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta

from portal.booking.therapists import Therapist, TimeOff, WeeklyHours
from portal.extensions import db
from portal.models import ConsultationRequest, to_db, utcnow
from portal.staff.accounts import create_user
from portal.staff.models import User

_counter = itertools.count(1)
ALL_WEEK = [(day, "09:00", "17:00") for day in range(7)]
PASSWORD = "correct horse battery staple"


def make_therapist(name: str | None = None, hours=ALL_WEEK, **fields) -> Therapist:
    n = next(_counter)
    therapist = Therapist(
        name=name or f"Therapist {n}", email=fields.pop("email", f"therapist{n}@example.com"),
        licence_type=fields.pop("licence_type", "LMFT"),
        licence_number=fields.pop("licence_number", f"{100000 + n}"), **fields,
    )
    therapist.hours = [
        WeeklyHours(weekday=day, start=time.fromisoformat(a), end=time.fromisoformat(b))
        for day, a, b in hours
    ]
    db.session.add(therapist)
    db.session.flush()
    return therapist


def make_time_off(therapist: Therapist, starts: datetime, ends: datetime) -> TimeOff:
    item = TimeOff(therapist=therapist, starts_at=to_db(starts), ends_at=to_db(ends))
    db.session.add(item)
    db.session.flush()
    return item


def make_request(therapist: Therapist | None = None, slot_start: datetime | None = None,
                 **fields) -> ConsultationRequest:
    n = next(_counter)
    email = fields.pop("email", f"client{n}@example.com")
    first, last = fields.pop("first_name", "Casey"), fields.pop("last_name", f"Client{n}")
    now = utcnow()
    consultation = ConsultationRequest(
        first_name=first, last_name=last, first_name_normalised=first.lower(),
        last_name_normalised=last.lower(), email=email, email_normalised=email.lower(),
        phone=fields.pop("phone", f"+1415555{n % 10000:04d}"),
        preferred_contact=fields.pop("preferred_contact", "email"),
        interests=fields.pop("interests", "kap,depression"),
        message=fields.pop("message", ""), state="CA", zip_code=fields.pop("zip_code", "94110"),
        ca_resident=True, in_california=True, therapist=therapist,
        therapist_choice=str(therapist.id) if therapist else "any",
        slot_start=to_db(slot_start),
        slot_end=to_db(slot_start + timedelta(minutes=30)) if slot_start else None,
        consent_at=now, privacy_notice_version="2026-11", ack_not_emergency_at=now, **fields,
    )
    db.session.add(consultation)
    db.session.flush()
    return consultation


def make_requests(count: int, therapist: Therapist | None = None, *, first_name: str = "Casey",
                  last_name: str = "Client", **fields) -> list[ConsultationRequest]:
    """``count`` requests, named ``first_name`` and ``last_name`` + 0, 1, 2 ..."""
    return [make_request(therapist, first_name=first_name, last_name=f"{last_name}{n}", **fields)
            for n in range(count)]


def make_user(email: str | None = None, role: str = "admin", therapist: Therapist | None = None,
              password: str = PASSWORD) -> User:
    email = email or f"user{next(_counter)}@example.com"
    user, _ = create_user(email, password, role,
                          therapist_id=therapist.id if therapist else None)
    return user


def future_slot(days: int = 3, hour_utc: int = 18) -> datetime:
    """A half-hour start well past the minimum notice, inside 09:00-17:00 Pacific."""
    day = (datetime.now(UTC) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour_utc, 0, tzinfo=UTC)


def soon(hours: float = 5) -> datetime:
    """The next whole hour plus ``hours`` (by default well inside the 24-hour
    reminder window)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
