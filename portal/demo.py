"""Demo data: therapists with weekly hours, an admin, and synthetic requests for benchmarks."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta

from sqlalchemy import func, select

from portal.booking import availability_version
from portal.booking.answers import INTERESTS
from portal.booking.statuses import RELEASED_STATUSES, STATUS_LABELS
from portal.booking.therapists import Therapist, WeeklyHours
from portal.extensions import db
from portal.models import (
    ConsultationRequest,
    client_email_key,
    new_public_id,
    normalise_name,
    utcnow,
)
from portal.staff.accounts import create_user, find_user

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_THERAPISTS = [
    {
        "name": "Maya Alvarez", "email": "maya.alvarez@example.com", "licence_type": "LMFT",
        "licence_number": "118204",
        "bio": "Maya works with trauma and depression and offers ketamine-assisted psychotherapy.",
        "bio_es": "Maya trabaja con trauma y depresión, y ofrece psicoterapia asistida con "
                  "ketamina.",
        "hours": [(0, "09:00", "12:00"), (2, "13:00", "17:00"), (4, "09:00", "12:00")],
    },
    {
        "name": "Daniel Okafor", "email": "daniel.okafor@example.com", "licence_type": "LCSW",
        "licence_number": "92517",
        "bio": "Daniel focuses on anxiety, grief and life transitions, with a relational approach.",
        "bio_es": "Daniel se enfoca en la ansiedad, el duelo y los cambios de vida, con un "
                  "enfoque centrado en las relaciones.",
        "hours": [(1, "10:00", "14:00"), (3, "15:00", "19:00")],
    },
    {
        "name": "Priya Raman", "email": "priya.raman@example.com", "licence_type": "PsyD",
        "licence_number": "PSY 31876",
        "bio": "Priya is a psychologist experienced in PTSD and treatment-resistant depression.",
        "bio_es": "Priya es psicóloga, con experiencia en TEPT y en depresión resistente al "
                  "tratamiento.",
        "hours": [(0, "14:00", "18:00"), (1, "08:00", "11:00"), (3, "09:00", "12:00")],
    },
]
FIRST_NAMES = ["Alex", "Jordan", "Sam", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery",
               "Quinn", "Rosa", "Luis", "Mei", "Omar", "Grace", "Noah", "Ana", "Kai", "María",
               "José"]
LAST_NAMES = ["Garcia", "Nguyen", "Smith", "Johnson", "Lee", "Martinez", "Brown", "Kim", "Patel",
              "López", "Chen", "Davis", "Wilson", "Singh", "Rivera", "Clark", "Lewis", "Young",
              "Núñez"]
PREFERRED_NAMES = ["Sam", "Lex", "Jo", "Bea", "Teo", "Lupe", "Mo", "Nico"]
PAYMENTS = ["self_pay", "self_pay", "insurance", "insurance", "insurance", "not_sure"]
CONTACTS = ["email", "phone", "text"]
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # as models.new_reference
_references = random.Random()  # noqa: S311 - synthetic data only
CA_ZIPS = ["94110", "90012", "95814", "92101", "94704", "96161", "93101", "95060"]


def new_reference() -> str:
    """A reference for a synthetic request, as ``models.new_reference`` makes them but
    not from the system's random source: a system call per character cost seconds
    at 100,000 requests."""
    return "C-" + "".join(_references.choices(REFERENCE_ALPHABET, k=7))


def seed_therapists() -> int:
    """Add the demo therapists that are not there yet; returns how many were added."""
    existing = set(db.session.scalars(select(Therapist.email)))
    added = 0
    for spec in DEMO_THERAPISTS:
        if spec["email"] in existing:
            continue
        therapist = Therapist(**{k: v for k, v in spec.items() if k != "hours"})
        therapist.hours = [
            WeeklyHours(weekday=day, start=time.fromisoformat(a), end=time.fromisoformat(b))
            for day, a, b in spec["hours"]
        ]
        db.session.add(therapist)
        added += 1
    db.session.flush()
    return added


def seed_admin() -> str | None:
    """Create the demo admin if missing; returns its new password, or None if it existed."""
    if find_user(DEMO_ADMIN_EMAIL) is not None:
        return None
    password = secrets.token_urlsafe(12)
    create_user(DEMO_ADMIN_EMAIL, password, "admin")
    return password


def seed_requests(count: int, *, rng: random.Random | None = None, chunk: int = 5000) -> int:
    """Insert ``count`` synthetic requests spread over the past year, in bulk: plain
    rows in batches (no ORM objects), the availability trigger off meanwhile and the
    number raised once (``availability_version.bulk_insert_requests``)."""
    rng = rng or random.Random()  # noqa: S311 - synthetic data only
    therapist_ids = list(db.session.scalars(select(Therapist.id)))
    taken = set(db.session.execute(
        select(ConsultationRequest.therapist_id, ConsultationRequest.slot_start)
        .where(ConsultationRequest.slot_start.is_not(None))
    ).tuples())
    references = set(db.session.scalars(select(ConsultationRequest.reference)))
    offset = (db.session.scalar(select(func.max(ConsultationRequest.id))) or 0) + 1
    make = _RowMaker(utcnow(), therapist_ids, taken, rng)
    insert = ConsultationRequest.__table__.insert()
    connection = db.session.connection()
    with availability_version.bulk_insert_requests(connection), _pages_kept(connection):
        for start in range(offset, offset + count, chunk):
            rows = [make(n) for n in range(start, min(start + chunk, offset + count))]
            for row in rows:
                # A bulk insert cannot redraw on a clash: 100,000 short references
                # would likely hold a repeat, so repeats are drawn again here.
                while row["reference"] in references:
                    row["reference"] = new_reference()
                references.add(row["reference"])
            db.session.execute(insert, rows)
    return count


def future_bookings() -> int:
    """How many stored requests hold a time ahead (what the time picker must skip)."""
    return db.session.scalar(select(func.count()).where(
        ConsultationRequest.slot_start > utcnow(),
        ConsultationRequest.status.not_in(RELEASED_STATUSES)))


@contextmanager
def _pages_kept(connection) -> Iterator[None]:
    """SQLite keeps 2 MB of pages per connection by default; a bulk insert touches every
    index of the table all over, so it keeps 64 MB meanwhile (a third less work)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    kept = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql("PRAGMA cache_size = -65536")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(kept)}")


class _RowMaker:
    """Synthetic request rows, every column given (no default worked out per row)."""

    def __init__(self, now, therapist_ids, taken, rng) -> None:
        self.now, self.therapist_ids, self.taken, self.rng = now, therapist_ids, taken, rng
        self.firsts = [(name, normalise_name(name)) for name in FIRST_NAMES]
        self.lasts = [(name, normalise_name(name)) for name in LAST_NAMES]
        self.statuses = list(STATUS_LABELS)
        self.interests = list(INTERESTS)

    def __call__(self, n: int) -> dict:
        rng = self.rng
        created = self.now - timedelta(seconds=rng.randint(0, 365 * 24 * 3600))
        (first, first_key), (last, last_key) = rng.choice(self.firsts), rng.choice(self.lasts)
        status = rng.choice(self.statuses)
        therapist_id = (rng.choice(self.therapist_ids)
                        if self.therapist_ids and rng.random() < 0.85 else None)
        slot_start = None
        if therapist_id and rng.random() < 0.6:
            day = created.date() + timedelta(days=rng.randint(2, 20))
            candidate = datetime.combine(day, time(16 + rng.randint(0, 7), rng.choice((0, 30))))
            if (therapist_id, candidate) not in self.taken:
                self.taken.add((therapist_id, candidate))
                slot_start = candidate
        email = f"{first_key}.{last_key}.{n}@example.com"  # plain ASCII
        contact = rng.choice(CONTACTS)
        return {
            "public_id": new_public_id(), "reference": new_reference(), "created_at": created,
            "updated_at": created, "status": status, "first_name": first, "last_name": last,
            "first_name_normalised": first_key, "last_name_normalised": last_key,
            "email": email, "email_normalised": client_email_key(email),
            "phone": f"+1415{n % 10_000_000:07d}",
            "preferred_contact": contact,
            "preferred_name": rng.choice(PREFERRED_NAMES) if rng.random() < 0.2 else None,
            # Who asked to be texted agreed to texts; some ask for no voicemail.
            "ok_to_text": contact == "text" or rng.random() < 0.7,
            "ok_to_voicemail": rng.random() < 0.75, "adult": True,
            "payment": rng.choice(PAYMENTS),
            "interests": ",".join(rng.sample(self.interests, rng.randint(1, 3))),
            "message": "", "language": "en", "state": "CA",
            "zip_code": rng.choice(CA_ZIPS), "ca_resident": True, "in_california": True,
            "therapist_id": therapist_id, "therapist_choice": str(therapist_id or "any"),
            "slot_start": slot_start,
            "slot_end": slot_start + timedelta(minutes=30) if slot_start else None,
            "booking_sequence": 0, "submission_token": None, "reminder_queued_at": None,
            "cancelled_at": None, "rebooked_from_id": None, "waitlist": False,
            "consent_at": created, "privacy_notice_version": "2026-11",
            "ack_not_emergency_at": created,
        }
