"""The request list, detail, changes and the CSV export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, func, select

from portal.admin import export
from portal.booking import consultations
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest, RequestNote
from tests.backoffice import audit_actions, sign_in
from tests.factories import future_slot, make_request, make_requests, make_therapist


def test_list_shows_where_you_are_and_keeps_filters_in_page_links(app, admin):
    with app.app_context():
        make_requests(5, first_name="Grace", last_name="Lee")
        db.session.commit()
    page = admin.get("/admin/requests?q=grace&per_page=2&page=2").get_data(as_text=True)
    assert "3–4 of 5" in page
    assert "q=grace" in page and "page=3" in page and "per_page=2" in page


@pytest.mark.parametrize("query,expected", [
    ("ros", {"Rosa"}), ("garc", {"Rosa"}), ("Rosa Garcia", {"Rosa"}), ("CHEN", {"Luis"}),
    ("client-rosa@", {"Rosa"}), ("(415) 555-9001", {"Luis"}), ("zzz", set()),
])
def test_search_by_name_email_or_phone(app, admin, query, expected):
    with app.app_context():
        rosa = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.first_name == "Rosa"))
        rosa.email = rosa.email_normalised = "client-rosa@example.com"
        luis = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.first_name == "Luis"))
        luis.phone = "+14155559001"
        db.session.commit()
    page = admin.get("/admin/requests", query_string={"q": query}).get_data(as_text=True)
    assert {name for name in ("Rosa", "Luis") if f"{name} " in page} == expected
    if not expected:
        assert "No requests match these filters" in page


def test_filters_by_status_and_therapist(app, admin, cast):
    with app.app_context():
        db.session.get(ConsultationRequest, cast.theirs).status = "contacted"
        db.session.commit()
    page = admin.get("/admin/requests?status=contacted").get_data(as_text=True)
    assert "Luis Chen" in page and "Rosa Garcia" not in page
    page = admin.get(f"/admin/requests?therapist={cast.therapist_id}").get_data(as_text=True)
    assert "Rosa Garcia" in page and "Luis Chen" not in page


def count_statements(app, client, url) -> int:
    statements = []

    def record(conn, cursor, statement, *args):
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):  # SQLite's own BEGIN
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_list_runs_the_same_number_of_queries_whatever_the_page_size(app, admin):
    with app.app_context():
        # A therapist per row: a lazy load per row would add a query per row.
        for n in range(120):
            make_request(make_therapist(hours=[]), first_name="Ana", last_name=f"Kim{n}")
        db.session.commit()
    small = count_statements(app, admin, "/admin/requests?per_page=25")
    large = count_statements(app, admin, "/admin/requests?per_page=100")
    # The signed-in user, therapist names for the filter, the count, a page of ids,
    # and those rows with their therapists.
    assert (small, large) == (5, 5)


def test_each_detail_view_leaves_one_audit_line(app, admin, cast):
    for _ in range(2):
        assert admin.get(f"/admin/requests/{cast.mine}").status_code == 200
    assert audit_actions(app, cast.mine).count("request_viewed") == 2


def test_status_change_with_a_note(app, admin, cast):
    response = admin.post(f"/admin/requests/{cast.mine}/status",
                          data={"status": "contacted", "note": "Called, left a voicemail"})
    assert response.status_code == 302
    with app.app_context():
        consultation = db.session.get(ConsultationRequest, cast.mine)
        assert consultation.status == "contacted"
        assert [n.body for n in consultation.notes] == ["Called, left a voicemail"]
    assert {"status_changed", "note_added"} <= set(audit_actions(app, cast.mine))
    page = admin.get(f"/admin/requests/{cast.mine}").get_data(as_text=True)
    assert "Called, left a voicemail" in page and "Status changed" in page


def test_cancel_on_the_clients_behalf_frees_the_time_and_queues_notices(app, admin, cast):
    assert admin.post(f"/admin/requests/{cast.mine}/cancel").status_code == 302
    with app.app_context():
        assert db.session.get(ConsultationRequest, cast.mine).status == "cancelled"
        assert sorted(db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == cast.mine))) == ["cancelled_client", "cancelled_therapist"]


def test_reassignment_to_a_therapist_with_a_clash_is_refused(app, admin, cast):
    with app.app_context():
        mine = db.session.get(ConsultationRequest, cast.mine)
        busy = make_therapist("Priya Raman")
        make_request(busy, mine.starts_at, first_name="Kai")
        free = make_therapist("Noah Free", email="noah@example.com")
        db.session.commit()
        busy_id, free_id = busy.id, free.id
    refused = admin.post(f"/admin/requests/{cast.mine}/reassign", data={"therapist_id": busy_id})
    assert refused.status_code == 400
    assert "already has a consultation at this time" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(ConsultationRequest, cast.mine).therapist_id == cast.therapist_id
    moved = admin.post(f"/admin/requests/{cast.mine}/reassign", data={"therapist_id": free_id})
    assert moved.status_code == 302
    with app.app_context():
        assert db.session.get(ConsultationRequest, cast.mine).therapist_id == free_id
        assert "noah@example.com" in set(db.session.scalars(
            select(OutboxEmail.recipient).where(OutboxEmail.request_id == cast.mine)))


def test_delete_asks_first_then_removes_the_request_and_audits(app, admin, cast):
    with app.app_context():
        rid = make_request(first_name="Unbooked").id  # open, but no time booked
        db.session.add(RequestNote(request_id=rid, body="note"))
        db.session.commit()
    assert "Yes, delete" in admin.get(f"/admin/requests/{rid}/delete").get_data(as_text=True)
    assert admin.post(f"/admin/requests/{rid}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(ConsultationRequest, rid) is None
        assert db.session.scalar(select(func.count(RequestNote.id))) == 0
    assert "request_deleted" in audit_actions(app, rid)


def test_an_open_request_with_a_future_time_cannot_be_deleted(app, admin, cast):
    page = admin.get(f"/admin/requests/{cast.mine}/delete").get_data(as_text=True)
    assert "Cancel the consultation first so the client and therapist are told" in page
    assert "Yes, delete" not in page
    refused = admin.post(f"/admin/requests/{cast.mine}/delete")
    assert refused.status_code == 409
    with app.app_context():
        assert db.session.get(ConsultationRequest, cast.mine).status == "new"
    assert "request_deleted" not in audit_actions(app, cast.mine)


def test_deleting_right_after_cancelling_warns_then_sends_nothing_more(app, admin, cast):
    assert admin.post(f"/admin/requests/{cast.mine}/cancel").status_code == 302
    with app.app_context():
        queued = set(db.session.scalars(select(OutboxEmail.id).where(
            OutboxEmail.request_id == cast.mine, OutboxEmail.status == "queued")))
    assert len(queued) == 2
    page = admin.get(f"/admin/requests/{cast.mine}/delete").get_data(as_text=True)
    assert "2 emails about this request haven&#39;t gone out yet" in page
    assert admin.post(f"/admin/requests/{cast.mine}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(ConsultationRequest, cast.mine) is None
        # Nothing more is sent about a deleted request: its queued emails went with it.
        assert db.session.scalars(select(OutboxEmail).where(OutboxEmail.id.in_(queued))).all() \
            == []


def test_client_text_is_escaped(app, admin):
    with app.app_context():
        rid = make_request(first_name='"><script>alert(1)</script>',
                           message="<img src=x onerror=alert(1)>").id
        db.session.commit()
    for url in ("/admin/requests", f"/admin/requests/{rid}"):
        page = admin.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page


def read_csv(response) -> list[dict]:
    text = response.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_export_streams_everything_and_neutralises_formulas(app, admin, cast):
    with app.app_context():
        make_request(first_name="=HYPERLINK(\"http://x\")", last_name="@SUM(A1)",
                     email="-2+3@example.com", status="cancelled")
        make_request(first_name="\tTab", last_name="\rCarriage")
        db.session.commit()
    response = admin.get("/admin/requests/export.csv")
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    rows = read_csv(response)
    assert len(rows) == 4 and "status" in rows[0]
    assert "cancelled" in {row["status"] for row in rows}
    hostile = next(row for row in rows if "HYPERLINK" in row["first_name"])
    assert hostile["first_name"].startswith("'=")
    assert hostile["last_name"] == "'@SUM(A1)"
    assert hostile["email"].startswith("'-")
    assert not any(row["phone"].startswith(("'", "+")) for row in rows)
    tabbed = next(row for row in rows if "Tab" in row["first_name"])
    assert tabbed["first_name"] == "'\tTab" and tabbed["last_name"].startswith("'")


def test_export_writes_phones_as_dialled_and_times_in_pacific(app, admin, cast):
    """A spreadsheet keeps "(415) 555-0123" as text with no quote showing; a leading
    "+" would have been a formula. Times are the practice's, the header says so."""
    with app.app_context():
        therapist = make_therapist()
        make_request(phone="+14155550123", first_name="Us", therapist=therapist,
                     slot_start=datetime(2026, 12, 8, 18, 0, tzinfo=UTC),
                     created_at=datetime(2026, 7, 1, 16, 5))
        make_request(phone="+442079460958", first_name="Uk")
        db.session.commit()
    response = admin.get("/admin/requests/export.csv")
    rows = {row["first_name"]: row for row in read_csv(response)}
    assert rows["Us"]["phone"] == "(415) 555-0123"
    assert rows["Uk"]["phone"] == "011 44 20 7946 0958"
    assert rows["Us"]["booked_start (PT)"] == "2026-12-08 10:00"  # PST, UTC-8
    assert rows["Us"]["received_at (PT)"] == "2026-07-01 09:05"  # PDT, UTC-7
    assert "received_utc" not in rows["Us"]


def export_audits(app) -> list[dict]:
    with app.app_context():
        return [json.loads(detail) for detail in db.session.scalars(
            select(AuditEvent.detail).where(AuditEvent.action == "requests_exported"))]


def test_export_sends_rows_batch_by_batch_as_it_reads_them(app, admin, cast, monkeypatch):
    monkeypatch.setattr(export, "BATCH", 2)
    with app.app_context():
        make_requests(7, first_name="Row", last_name="N")
        db.session.commit()
    response = admin.get("/admin/requests/export.csv")
    chunks = iter(response.response)
    first = next(chunks)
    first = first.decode() if isinstance(first, bytes) else first
    assert first.startswith("\ufeffreference,received_at (PT),status,")
    # The audit line is written when the stream ends: an export built in memory
    # before the first byte is sent would have written it already.
    assert export_audits(app) == []
    rest = [c.decode() if isinstance(c, bytes) else c for c in chunks]
    response.close()
    assert len(rest) >= 4  # nine rows in batches of two
    assert all(chunk.count("\n") <= 2 for chunk in rest)
    rows = list(csv.DictReader(io.StringIO((first + "".join(rest)).lstrip("\ufeff"))))
    assert len(rows) == 9
    [audit] = export_audits(app)
    assert (audit["rows"], audit["completed"]) == (9, True)


def test_each_export_leaves_one_audit_line_with_filter_and_row_count(app, admin):
    response = admin.get("/admin/requests/export.csv?status=new&q=rosa")
    assert len(read_csv(response)) == 1
    response.close()
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "requests_exported")).all()
        assert len(events) == 1
        detail = json.loads(events[0].detail)
        assert detail["rows"] == 1 and detail["completed"] is True
        assert detail["filter"] == {"status": "new", "sort": "received", "search": True}
        assert "rosa" not in events[0].detail.lower()


def test_therapists_cannot_export(client, cast):
    sign_in(client, cast.own_email)
    assert client.get("/admin/requests/export.csv").status_code == 403


def test_reschedule_on_the_clients_behalf(app, admin, cast):
    page = admin.get(f"/admin/requests/{cast.mine}/reschedule").get_data(as_text=True)
    assert "Book this time" in page
    new_start = future_slot(days=5, hour_utc=20)
    response = admin.post(f"/admin/requests/{cast.mine}/reschedule",
                          data={"slot": new_start.isoformat()})
    assert response.status_code == 302
    with app.app_context():
        row = db.session.get(ConsultationRequest, cast.mine)
        assert (row.starts_at, row.booking_sequence) == (new_start, 1)
        assert sorted(db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == cast.mine))) == ["rescheduled_client",
                                                       "rescheduled_therapist"]


def test_reschedule_to_a_time_taken_meanwhile_changes_nothing(app, admin, cast, monkeypatch):
    taken = future_slot(days=5, hour_utc=20)
    with app.app_context():
        before = db.session.get(ConsultationRequest, cast.mine).starts_at
        therapist = db.session.get(Therapist, cast.therapist_id)
        make_request(therapist, taken, first_name="Quick")  # booked a moment ago ...
        db.session.commit()
    # ... after the page worked out its free times.
    monkeypatch.setattr(consultations, "available_slots",
                        lambda *args, **kwargs: {taken: [cast.therapist_id]})
    response = admin.post(f"/admin/requests/{cast.mine}/reschedule",
                          data={"slot": taken.isoformat()})
    assert response.status_code == 200
    assert "That time was just taken" in response.get_data(as_text=True)
    with app.app_context():
        row = db.session.get(ConsultationRequest, cast.mine)
        assert (row.starts_at, row.booking_sequence) == (before, 0)
        assert db.session.scalar(select(func.count(OutboxEmail.id))) == 0
