"""Retention: `flask purge --older-than-days N` deletes closed requests with every trace
of them (never an open one) and forgets the emails sent before then; the mail sink's
copies go too."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import ForeignKey, func, select

from portal.extensions import db
from portal.messages import outbox, upkeep
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest, RequestNote, to_db
from tests.factories import future_slot, make_request, make_therapist

OPEN = ("new", "contacted", "scheduled")
CLOSED = ("cancelled", "completed", "no_show", "not_a_fit")


def aged(consultation, days: int):
    consultation.created_at = to_db(datetime.now(UTC) - timedelta(days=days))
    return consultation


def email_about(row, n: int, *, status: str = "sent", sent_days_ago: int | None = None,
                **fields) -> OutboxEmail:
    sent_at = (to_db(datetime.now(UTC) - timedelta(days=sent_days_ago))
               if sent_days_ago is not None else None)
    email = OutboxEmail(key=f"test:{n}", kind="confirmation", request_id=row.id if row else None,
                        recipient=f"person{n}@example.com", subject="Your consultation",
                        message_id=f"<m{n}@example.com>", body_text=f"Hello {n}",
                        body_html=f"<p>Hello {n}</p>", ics="BEGIN:VCALENDAR", status=status,
                        sent_at=sent_at, **fields)
    db.session.add(email)
    return email


def test_purge_deletes_closed_requests_only_with_their_notes_and_emails(app, runner):
    with app.app_context():
        therapist = make_therapist()
        past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=390)
        rows = {}
        for n, status in enumerate(OPEN + CLOSED):
            # However old, and whether or not their time has passed.
            rows[status] = aged(make_request(therapist, past + timedelta(hours=n),
                                             status=status, first_name=status.title()), 400)
        rows["new, no time"] = aged(make_request(first_name="Untimed"), 4000)
        rows["upcoming"] = aged(make_request(therapist, future_slot(days=5)), 400)
        rows["recent cancelled"] = make_request(status="cancelled", first_name="Recent")
        for n, row in enumerate(rows.values()):
            db.session.add(RequestNote(request_id=row.id, body=f"note {n}"))
            email_about(row, n, status="queued")  # queued ones go too
        db.session.commit()
        kept = {rows[key].id for key in (*OPEN, "new, no time", "upcoming", "recent cancelled")}
    result = runner.invoke(args=["purge", "--older-than-days", "365"])
    assert result.exit_code == 0, result.output
    assert "Deleted 4 requests older than 365 days." in result.output
    with app.app_context():
        assert set(db.session.scalars(select(ConsultationRequest.id))) == kept
        assert set(db.session.scalars(select(ConsultationRequest.status))) == {
            *OPEN, "cancelled"}
        # The survivors keep their notes and emails; the purged ones' are gone.
        assert set(db.session.scalars(select(RequestNote.request_id))) == kept
        assert set(db.session.scalars(select(OutboxEmail.request_id))) == kept
        assert db.session.scalar(select(func.count(OutboxEmail.id))) == len(kept)
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "retention_purge")).all()
        assert len(events) == 1
        assert json.loads(events[0].detail) == {"deleted": 4, "forgotten": 0,
                                                "older_than_days": 365}


def test_purge_forgets_old_emails_even_of_requests_it_keeps(app, runner):
    with app.app_context():
        kept = make_request(status="new")  # open: stays, but its old emails are forgotten
        old_sent = email_about(kept, 1, sent_days_ago=40)
        recent_sent = email_about(kept, 2, sent_days_ago=5)
        old_failed = email_about(kept, 3, status="failed",
                                 created_at=to_db(datetime.now(UTC) - timedelta(days=40)))
        old_queued = email_about(kept, 4, status="queued",
                                 created_at=to_db(datetime.now(UTC) - timedelta(days=40)))
        staff = email_about(None, 5, sent_days_ago=40)  # an invite or reset: no request
        db.session.commit()
        ids = {name: row.id for name, row in (("old sent", old_sent),
                                              ("recent sent", recent_sent),
                                              ("old failed", old_failed),
                                              ("old queued", old_queued), ("staff", staff))}
    result = runner.invoke(args=["purge", "--older-than-days", "30"])
    assert result.exit_code == 0, result.output
    assert "Deleted 0 requests" in result.output
    assert "Forgot the content and recipients of 3 emails." in result.output
    with app.app_context():
        def state(name):
            row = db.session.get(OutboxEmail, ids[name])
            return (row.recipient, row.body_text, row.body_html, row.ics, row.subject)

        forgotten = ("forgotten", None, None, None, "Your consultation")
        assert state("old sent") == forgotten
        assert state("old failed") == forgotten
        assert state("staff") == forgotten
        assert state("recent sent")[:2] == ("person2@example.com", "Hello 2")
        assert state("old queued")[:2] == ("person4@example.com", "Hello 4")  # still to go
        assert upkeep.retry_failed() == 0  # nothing left to send
    again = runner.invoke(args=["purge", "--older-than-days", "30"])
    assert "Forgot the content and recipients of 0 emails." in again.output


def test_purge_and_delete_remove_the_mail_sinks_copies(app, runner, admin, cast, tmp_path):
    sink = tmp_path / "mail"
    app.config.update(MAIL_BACKEND="sink", MAIL_SINK_DIR=str(sink))
    with app.app_context():
        old = aged(make_request(None, None, status="cancelled", first_name="Old"), 400)
        gone = make_request(None, None, status="completed", first_name="Gone")
        stays = make_request(None, None, first_name="Stays")
        for n, row in enumerate((old, gone, stays)):
            email_about(row, n, status="queued")
        db.session.commit()
        gone_id = gone.id
        assert outbox.deliver_due().sent == 3
    assert len(list(sink.glob("*.eml"))) == 3
    assert admin.post(f"/admin/requests/{gone_id}/delete").status_code == 302
    assert len(list(sink.glob("*.eml"))) == 2
    result = runner.invoke(args=["purge", "--older-than-days", "365"])
    assert result.exit_code == 0, result.output
    [left] = sink.glob("*.eml")
    assert b"Hello 2" in left.read_bytes()  # the kept request's copy stays


def test_every_table_pointing_at_a_request_goes_with_it():
    """Deleting a request deletes what points at it, by ON DELETE CASCADE. One key is
    not about the request it points at: another person's pending request that found
    this address taken keeps its own row (the pointer is just cleared); so does a
    booking made again after a missed one (deleting the missed request must not take
    an upcoming consultation with it, untold)."""
    not_about_it = {("email_verification", "duplicate_of_id"),
                    ("consultation_request", "rebooked_from_id")}
    for table in db.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table.name != "consultation_request":
                continue
            assert isinstance(key, ForeignKey)
            if (table.name, key.parent.name) in not_about_it:
                assert key.ondelete == "SET NULL"
                continue
            assert key.ondelete == "CASCADE", (
                f"{table.name}.{key.parent.name} would outlive a deleted request")


def test_purge_needs_a_positive_number_of_days(runner):
    assert runner.invoke(args=["purge", "--older-than-days", "0"]).exit_code != 0
    assert runner.invoke(args=["purge"]).exit_code != 0
