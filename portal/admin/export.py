"""The CSV export of the current filter, streamed row by row.

Rows are fetched in batches (a server-side cursor on PostgreSQL), written
through one small buffer and sent as they are made, so memory stays flat at
100,000 rows. The export is audited with its filter and the number of rows
actually sent, written once the stream ends.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Response, stream_with_context
from sqlalchemy import select

from portal import audit
from portal.admin.access import actor, admin_required
from portal.admin.blueprint import bp
from portal.admin.requests import filtered, read_filters
from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    CONTACT_METHODS,
    INTERESTS,
    LANGUAGE_NAMES,
    PAYMENT_METHODS,
    SELF_PAY,
    ConsultationRequest,
    Therapist,
    as_utc,
)
from portal.phones import spreadsheet_phone
from portal.scheduling import PACIFIC

BATCH = 1000
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
R = ConsultationRequest
# (header, column, how to write it). Plain columns, not ORM objects: 100,000
# entities would cost far more time than the CSV itself. Times are the practice's
# Pacific time, which the header says, written "2026-12-01 10:00" so spreadsheets
# read them as dates.
COLUMNS = [
    ("reference", R.reference, str),
    ("received_at (PT)", R.created_at, lambda v: pacific(v)),
    ("status", R.status, str),
    ("first_name", R.first_name, str),
    ("last_name", R.last_name, str),
    ("email", R.email, str),
    ("phone", R.phone, spreadsheet_phone),
    ("preferred_name", R.preferred_name, lambda v: v or ""),
    ("preferred_contact", R.preferred_contact, lambda v: CONTACT_METHODS.get(v, v) if v else ""),
    ("language", R.language, lambda v: LANGUAGE_NAMES.get(v, v)),
    ("ok_to_text", R.ok_to_text, lambda v: yes_no(v)),
    ("ok_to_voicemail", R.ok_to_voicemail, lambda v: yes_no(v)),
    ("adult", R.adult, lambda v: yes_no(v)),
    ("payment", R.payment, lambda v: PAYMENT_METHODS.get(v, v) if v else ""),
    ("good_faith_estimate_due", R.payment, lambda v: "yes" if v == SELF_PAY else "no"),
    ("interests", R.interests,
     lambda v: "; ".join(INTERESTS.get(key, key) for key in (v or "").split(",") if key)),
    ("therapist", Therapist.name, lambda v: v or ""),
    ("booked_start (PT)", R.slot_start, lambda v: pacific(v)),
    ("zip_code", R.zip_code, str),
    ("consent_at (PT)", R.consent_at, lambda v: pacific(v)),
    ("privacy_notice_version", R.privacy_notice_version, str),
]


def pacific(value) -> str:
    return f"{as_utc(value).astimezone(PACIFIC):%Y-%m-%d %H:%M}" if value else ""


def yes_no(value: bool | None) -> str:
    """A yes/no answer; empty on requests made before the question was asked."""
    return "" if value is None else ("yes" if value else "no")


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


@bp.get("/requests/export.csv")
@admin_required
def request_export():
    _, query = read_filters()
    stmt = (filtered(select(*(column for _, column, _ in COLUMNS)), query.conditions())
            .outerjoin(Therapist, ConsultationRequest.therapist_id == Therapist.id)
            .order_by(ConsultationRequest.id)
            .execution_options(yield_per=BATCH))
    user = actor()
    body = stream_with_context(csv_rows(stmt, user, query.as_audit_detail()))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="consultation-requests.csv"'})


def csv_rows(stmt, user, audit_detail: dict) -> Iterator[str]:
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
        writer.writerow([name for name, _, _ in COLUMNS])
        writers = [write for _, _, write in COLUMNS]
        yield "\ufeff" + flush()  # the BOM makes spreadsheets read the file as UTF-8
        for partition in db.session.execute(stmt).partitions():
            writer.writerows(
                [neutralise(write(value)) for write, value in zip(writers, row, strict=True)]
                for row in partition)
            sent += len(partition)
            yield flush()
        completed = True
    finally:
        record_export(user, audit_detail, sent, completed)


def record_export(user, audit_detail: dict, rows: int, completed: bool) -> None:
    # The read transaction is over; the audit line gets a write transaction of its own.
    begin_write()
    audit.record("requests_exported", actor=user, rows=rows,
                 completed=completed, filter=audit_detail)
    db.session.commit()
