"""The CSV export of the current filter, streamed as the database reads it.

One query reads only the columns the file holds, as plain tuples (no ORM objects),
in batches (a server-side cursor on PostgreSQL). What a cell needs besides its row
is read once per export, not once per row: therapists' names, the labels, and the
Pacific offset of each day seen; US phones are written by their digits. Each batch
is written through one small buffer and sent as it is made, so memory stays flat at
100,000 rows. The export is audited with its filter and the number of rows actually
sent, written once the stream ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from flask import Response, stream_with_context
from sqlalchemy import select

from portal import audit
from portal.admin.access import actor, admin_required
from portal.admin.blueprint import bp
from portal.admin.requests import filtered, read_filters
from portal.booking.answers import (
    CONTACT_METHODS,
    INTERESTS,
    LANGUAGE_NAMES,
    PAYMENT_METHODS,
    SELF_PAY,
)
from portal.booking.scheduling import PACIFIC
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.models import ConsultationRequest
from portal.phones import spreadsheet_phone
from portal.web.transaction import writing

BATCH = 1000
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_STARTS)  # ``cell[:1] in`` it: a set is quicker per cell
R = ConsultationRequest
# The header, and the columns read for it in the same order. Times are the practice's
# Pacific time, which the header says, written "2026-12-01 10:00" so spreadsheets
# read them as dates; how each cell is written is ``row_writer``.
HEADER = [
    "reference", "received_at (PT)", "status", "first_name", "last_name", "email", "phone",
    "preferred_name", "preferred_contact", "language", "ok_to_text", "ok_to_voicemail",
    "adult", "payment", "good_faith_estimate_due", "interests", "therapist",
    "booked_start (PT)", "zip_code", "consent_at (PT)", "privacy_notice_version",
]
QUERIED = (
    R.reference, R.created_at, R.status, R.first_name, R.last_name, R.email, R.phone,
    R.preferred_name, R.preferred_contact, R.language, R.ok_to_text, R.ok_to_voicemail,
    R.adult, R.payment, R.interests, R.therapist_id, R.slot_start, R.zip_code,
    R.consent_at, R.privacy_notice_version,
)
YES_NO = {None: "", True: "yes", False: "no"}  # empty: asked before the question was


def pacific_minutes() -> Callable[[datetime | None], str]:
    """Stored (naive UTC) times as Pacific "2026-12-01 10:00", for many rows: the offset
    is worked out once for each UTC day seen (the zone changes its offset at most once
    a day; on a day it does, each time is worked out on its own)."""
    offsets: dict[int, timedelta | None] = {}

    def offset_at(value: datetime) -> timedelta:
        return value.replace(tzinfo=UTC).astimezone(PACIFIC).utcoffset()

    def day_offset(value: datetime) -> timedelta | None:
        start = datetime(value.year, value.month, value.day)
        first, last = offset_at(start), offset_at(start + timedelta(days=1, microseconds=-1))
        return first if first == last else None

    def write(value: datetime | None) -> str:
        if value is None:
            return ""
        day = value.toordinal()
        if day in offsets:
            offset = offsets[day]
        else:
            offset = offsets[day] = day_offset(value)
        return str(value + (offset if offset is not None else offset_at(value)))[:16]

    return write


def row_writer(therapists: dict[int, str]) -> Callable[[tuple], list[str]]:
    """The CSV cells of one row of ``QUERIED``, with the labels, therapists' names and
    Pacific offsets read once for the whole export."""
    when = pacific_minutes()
    contacts, languages, payments = CONTACT_METHODS, LANGUAGE_NAMES, PAYMENT_METHODS
    interest_text: dict[str, str] = {}

    def interest_labels(keys: str) -> str:
        text = interest_text.get(keys)
        if text is None:
            text = interest_text[keys] = "; ".join(
                INTERESTS.get(key, key) for key in keys.split(",") if key)
        return text

    def cells(row) -> list[str]:
        (reference, received, status, first_name, last_name, email, phone, preferred_name,
         contact, language, ok_to_text, ok_to_voicemail, adult, payment, interests,
         therapist_id, booked, zip_code, consent_at, notice) = row
        written = (
            reference, when(received), status, first_name, last_name, email,
            spreadsheet_phone(phone), preferred_name or "",
            contacts.get(contact, contact) if contact else "",
            languages.get(language, language), YES_NO[ok_to_text],
            YES_NO[ok_to_voicemail], YES_NO[adult],
            payments.get(payment, payment) if payment else "",
            "yes" if payment == SELF_PAY else "no",
            interest_labels(interests or ""),
            therapists.get(therapist_id, "") if therapist_id is not None else "",
            when(booked), zip_code, when(consent_at), notice,
        )
        return ["'" + cell if cell[:1] in _FORMULA_FIRST else cell for cell in written]

    return cells


@bp.get("/requests/export.csv")
@admin_required
def request_export():
    _, query = read_filters()
    stmt = (filtered(select(*QUERIED), query.conditions())
            .order_by(ConsultationRequest.id)
            .execution_options(yield_per=BATCH))
    therapists = dict(db.session.execute(select(Therapist.id, Therapist.name)).all())
    user = actor()
    body = stream_with_context(csv_rows(stmt, row_writer(therapists), user,
                                        query.as_audit_detail()))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="consultation-requests.csv"'})


def csv_rows(stmt, cells: Callable, user, audit_detail: dict) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    sent = 0
    completed = False

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    try:
        writer.writerow(HEADER)
        yield "\ufeff" + flush()  # the BOM makes spreadsheets read the file as UTF-8
        # Through the connection: a Core statement needs nothing of the ORM's row handling.
        for partition in db.session.connection().execute(stmt).partitions():
            writer.writerows(map(cells, partition))
            sent += len(partition)
            yield flush()
        completed = True
    finally:
        record_export(user, audit_detail, sent, completed)


def record_export(user, audit_detail: dict, rows: int, completed: bool) -> None:
    # The read transaction is over; the audit line gets a write transaction of its own.
    with writing():
        audit.record("requests_exported", actor=user, rows=rows,
                     completed=completed, filter=audit_detail)
