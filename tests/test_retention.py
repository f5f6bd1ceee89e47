"""Retention: `flask purge --older-than-days N`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, ConsultationRequest, OutboxEmail, RequestNote, to_db
from tests.factories import future_slot, make_request, make_therapist


def aged(consultation, days: int):
    consultation.created_at = to_db(datetime.now(UTC) - timedelta(days=days))
    return consultation


def test_purge_deletes_old_past_requests_with_their_notes_and_emails(app, runner):
    with app.app_context():
        therapist = make_therapist()
        past = datetime.now(UTC) - timedelta(days=390)
        old = aged(make_request(therapist, past, first_name="Old"), 400)
        aged(make_request(first_name="OldNoTime"), 400)
        upcoming = aged(make_request(therapist, future_slot(days=5),
                                     first_name="OldButUpcoming"), 400)
        recent = make_request(first_name="Recent")
        for n, row in enumerate((old, upcoming, recent)):
            db.session.add(RequestNote(request_id=row.id, body=f"note {row.first_name}"))
            db.session.add(OutboxEmail(key=f"old:{n}", kind="client_confirmation",
                                       request_id=row.id, recipient="a@example.com",
                                       subject="s", message_id=f"<m{n}>"))
        db.session.commit()
        kept_ids = {upcoming.id, recent.id}
    result = runner.invoke(args=["purge", "--older-than-days", "365"])
    assert result.exit_code == 0, result.output
    assert "Deleted 2 requests" in result.output
    with app.app_context():
        left = set(db.session.scalars(select(ConsultationRequest.first_name)))
        assert left == {"OldButUpcoming", "Recent"}
        # The survivors keep their notes and emails; the purged ones' are gone.
        assert set(db.session.scalars(select(RequestNote.request_id))) == kept_ids
        assert set(db.session.scalars(select(OutboxEmail.request_id))) == kept_ids
        assert db.session.scalar(select(func.count(OutboxEmail.id))) == 2
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "retention_purge")).all()
        assert len(events) == 1
        assert json.loads(events[0].detail) == {"deleted": 2, "older_than_days": 365}


def test_purge_needs_a_positive_number_of_days(runner):
    assert runner.invoke(args=["purge", "--older-than-days", "0"]).exit_code != 0
    assert runner.invoke(args=["purge"]).exit_code != 0
