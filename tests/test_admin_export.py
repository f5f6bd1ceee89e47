"""The CSV export writes what it always wrote, from one query and lookups read once."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from portal.admin import export
from portal.booking.answers import (
    CONTACT_METHODS,
    INTERESTS,
    LANGUAGE_NAMES,
    PAYMENT_METHODS,
    SELF_PAY,
)
from portal.booking.scheduling import PACIFIC
from portal.booking.statuses import STATUS_LABELS
from portal.extensions import db
from portal.models import ConsultationRequest
from portal.phones import spreadsheet_phone
from tests.factories import make_request, make_therapist

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def pacific(value) -> str:
    return (f"{value.replace(tzinfo=UTC).astimezone(PACIFIC):%Y-%m-%d %H:%M}"
            if value else "")


def yes_no(value) -> str:
    return "" if value is None else ("yes" if value else "no")


# The export as version 2 wrote it, cell by cell from each request (the rules the
# streaming export must keep).
RULES = [
    ("reference", lambda r: r.reference),
    ("received_at (PT)", lambda r: pacific(r.created_at)),
    ("status", lambda r: r.status),
    ("first_name", lambda r: r.first_name),
    ("last_name", lambda r: r.last_name),
    ("email", lambda r: r.email),
    ("phone", lambda r: spreadsheet_phone(r.phone)),
    ("preferred_name", lambda r: r.preferred_name or ""),
    ("preferred_contact", lambda r: CONTACT_METHODS.get(r.preferred_contact,
                                                        r.preferred_contact)),
    ("language", lambda r: LANGUAGE_NAMES.get(r.language, r.language)),
    ("ok_to_text", lambda r: yes_no(r.ok_to_text)),
    ("ok_to_voicemail", lambda r: yes_no(r.ok_to_voicemail)),
    ("adult", lambda r: yes_no(r.adult)),
    ("payment", lambda r: PAYMENT_METHODS.get(r.payment, r.payment) if r.payment else ""),
    ("good_faith_estimate_due", lambda r: "yes" if r.payment == SELF_PAY else "no"),
    ("interests", lambda r: "; ".join(INTERESTS.get(key, key)
                                      for key in (r.interests or "").split(",") if key)),
    ("therapist", lambda r: r.therapist.name if r.therapist else ""),
    ("booked_start (PT)", lambda r: pacific(r.slot_start)),
    ("zip_code", lambda r: r.zip_code),
    ("consent_at (PT)", lambda r: pacific(r.consent_at)),
    ("privacy_notice_version", lambda r: r.privacy_notice_version),
]


def row_by_row(app) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([name for name, _ in RULES])
    with app.app_context():
        for row in db.session.scalars(select(ConsultationRequest).where(
                ConsultationRequest.status != "pending").order_by(ConsultationRequest.id)):
            cells = [rule(row) for _, rule in RULES]
            writer.writerow(["'" + c if c.startswith(FORMULA_STARTS) else c for c in cells])
    return "\ufeff" + buffer.getvalue()


# Instants either side of the clocks changing (10:00 UTC in March, 09:00 in November).
AROUND_THE_CHANGES = [
    datetime(2026, 3, 8, 9, 59, 59), datetime(2026, 3, 8, 10, 0), datetime(2026, 3, 8, 23, 30),
    datetime(2026, 11, 1, 8, 59, 59, 999999), datetime(2026, 11, 1, 9, 0),
    datetime(2026, 11, 1, 0, 0), datetime(2026, 12, 31, 23, 59), datetime(2027, 1, 1, 7, 59),
    datetime(2027, 1, 1, 8, 0), datetime(2026, 7, 4, 6, 59, 30),
]


@pytest.fixture
def varied(app, cast):
    """Requests unlike each other in every exported column."""
    with app.app_context():
        odd = make_therapist(name="=Dr. Formula")
        plain = make_therapist(name="Ana Ruiz")
        answers = [
            {"first_name": "=1+2", "last_name": "@Home", "email": "-x@example.com",
             "preferred_name": "+Sam", "phone": "+442079460958", "payment": SELF_PAY,
             "interests": "kap,unknown-key", "ok_to_text": None, "ok_to_voicemail": None,
             "adult": None, "language": "es", "preferred_contact": "text"},
            {"first_name": "\tTab", "last_name": "\rReturn", "phone": "+14155550123",
             "payment": "insurance", "ok_to_text": True, "ok_to_voicemail": False,
             "adult": True, "interests": "", "preferred_contact": "phone"},
            {"first_name": "José", "last_name": "Núñez", "phone": "+12025550147",
             "payment": "not_sure", "interests": "trauma", "preferred_name": "Pepe"},
            {"first_name": "Lee", "last_name": "Kim", "phone": "not a number", "payment": None,
             "zip_code": "=94110", "privacy_notice_version": "-old", "language": "xx",
             "preferred_contact": "pigeon"},
            {"first_name": "Mo", "last_name": "Ali", "phone": "+19999999999",
             "status": "cancelled"},
            {"first_name": "Pat", "last_name": "Pending", "status": "pending"},
        ]
        for n, when in enumerate(AROUND_THE_CHANGES):
            booked = AROUND_THE_CHANGES[-1 - n].replace(tzinfo=UTC) if n % 3 else None
            therapist = (odd, plain)[n % 2] if booked else None
            fields = dict(answers[n % len(answers)])
            notice = fields.pop("privacy_notice_version", "2026-11")
            if "email" in fields:  # one open request per address
                fields["email"] = f"-x{n}@example.com"
            row = make_request(therapist, booked, created_at=when, **fields)
            row.consent_at, row.privacy_notice_version = when + timedelta(seconds=n), notice
        for n, status in enumerate(STATUS_LABELS):
            make_request(plain, datetime(2026, 1, 5, 18, 0, tzinfo=UTC) + timedelta(hours=n),
                         status=status, first_name="Status", last_name=status)
        db.session.commit()


def test_the_export_writes_what_the_row_by_row_rules_write(app, admin, varied):
    response = admin.get("/admin/requests/export.csv")
    written = response.get_data(as_text=True)
    assert written == row_by_row(app)
    rows = list(csv.DictReader(io.StringIO(written.lstrip("\ufeff"))))
    assert len(rows) == len(AROUND_THE_CHANGES) - 1 + len(STATUS_LABELS) + 2  # not the pending one
    assert {"'=1+2", "'\tTab", "'=Dr. Formula", "'=94110", "'-old"} <= {
        cell for row in rows for cell in row.values()}


def test_the_export_is_one_query_of_its_columns_whatever_the_rows(app, admin, cast,
                                                                   monkeypatch):
    monkeypatch.setattr(export, "BATCH", 2)

    def statements_for_export() -> list[str]:
        seen: list[str] = []

        def record(conn, cursor, statement, *args):
            seen.append(" ".join(statement.split()))

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            admin.get("/admin/requests/export.csv").get_data()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return [s for s in seen if "FROM consultation_request" in s or "FROM therapist" in s]

    few = statements_for_export()
    with app.app_context():
        for n in range(9):
            make_request(make_therapist(name=f"Therapist {n}"), first_name="Many")
        db.session.commit()
    many = statements_for_export()
    # The filter's therapist choices, the therapists' names, then the rows.
    assert len(few) == len(many) == 3
    rows = next(s for s in many if "FROM consultation_request" in s)
    assert "JOIN" not in rows and "consultation_request.message" not in rows


def test_pacific_minutes_agree_with_the_time_zone_every_few_minutes():
    when = export.pacific_minutes()
    start = datetime(2025, 12, 31, 0, 0)
    for step in range(0, 2 * 366 * 24 * 60, 37):  # two years, clock changes included
        value = start + timedelta(minutes=step, microseconds=step)
        assert when(value) == pacific(value), value
    for value in AROUND_THE_CHANGES:
        assert when(value) == pacific(value), value
    assert when(None) == ""
