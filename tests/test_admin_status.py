"""Status changes from the detail page (portal.request_status), and the audit line
every render of the detail page leaves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import ConsultationRequest, OutboxEmail, RequestNote, Therapist
from tests.backoffice import audit_actions
from tests.factories import make_request

CANCELLATION_NOTICES = ["cancelled_client", "cancelled_therapist"]


def post_status(admin, request_id: int, status: str, note: str = ""):
    return admin.post(f"/admin/requests/{request_id}/status",
                      data={"status": status, "note": note})


def stored(app, request_id: int) -> ConsultationRequest:
    with app.app_context():
        row = db.session.get(ConsultationRequest, request_id)
        db.session.expunge(row)
        return row


def notices(app, request_id: int) -> list[str]:
    """The kinds of email queued about the request, sorted."""
    with app.app_context():
        return sorted(db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == request_id)))


def test_cancelled_cancels_the_booking_and_tells_both(app, admin, cast):
    assert post_status(admin, cast.mine, "cancelled").status_code == 302
    assert stored(app, cast.mine).status == "cancelled"
    assert stored(app, cast.mine).cancelled_at is not None
    assert "booking_cancelled" in audit_actions(app, cast.mine)
    assert notices(app, cast.mine) == CANCELLATION_NOTICES


def test_not_a_fit_with_a_future_time_cancels_it_first(app, admin, cast):
    assert post_status(admin, cast.mine, "not_a_fit", "Needs inpatient care").status_code == 302
    row = stored(app, cast.mine)
    assert row.status == "not_a_fit" and row.cancelled_at is not None
    actions = audit_actions(app, cast.mine)
    assert actions.index("booking_cancelled") < actions.index("status_changed")
    assert notices(app, cast.mine) == CANCELLATION_NOTICES  # client and therapist are told
    with app.app_context():  # the time is free for someone else
        maya = db.session.get(Therapist, cast.therapist_id)
        make_request(maya, row.starts_at, first_name="Next")
        db.session.commit()


@pytest.mark.parametrize("status", ["completed", "no_show"])
def test_completed_or_no_show_before_the_time_is_refused(app, admin, cast, status):
    response = post_status(admin, cast.mine, status)
    assert response.status_code == 400
    assert "That consultation hasn&#39;t happened yet" in response.get_data(as_text=True)
    assert stored(app, cast.mine).status == "new"


def test_completed_after_the_time(app, admin):
    with app.app_context():
        past = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        rid = make_request(None, past, first_name="Past").id
        db.session.commit()
    assert post_status(admin, rid, "completed").status_code == 302
    assert stored(app, rid).status == "completed"


def test_reopening_when_the_time_was_taken_meanwhile(app, admin, cast):
    assert post_status(admin, cast.mine, "cancelled").status_code == 302
    with app.app_context():
        maya = db.session.get(Therapist, cast.therapist_id)
        make_request(maya, stored(app, cast.mine).starts_at, first_name="Taker")
        db.session.commit()
    response = post_status(admin, cast.mine, "contacted", "Client called back")
    assert response.status_code == 400
    assert "That time is now taken — choose a new time with Reschedule" in response.get_data(
        as_text=True)
    assert stored(app, cast.mine).status == "cancelled"
    with app.app_context():  # nothing half-stored: not even the note
        assert db.session.scalar(select(RequestNote.id)) is None


def test_reopening_when_the_person_has_another_open_request(app, admin, cast):
    assert post_status(admin, cast.mine, "not_a_fit").status_code == 302
    mine = stored(app, cast.mine)
    with app.app_context():
        make_request(first_name="Again", email=mine.email, phone=mine.phone)
        db.session.commit()
    response = post_status(admin, cast.mine, "new")
    assert response.status_code == 400
    assert "This person has another open request" in response.get_data(as_text=True)
    assert stored(app, cast.mine).status == "not_a_fit"


def test_reopening_a_free_time(app, admin, cast):
    assert post_status(admin, cast.mine, "cancelled").status_code == 302
    assert post_status(admin, cast.mine, "scheduled").status_code == 302
    row = stored(app, cast.mine)
    assert row.status == "scheduled" and row.cancelled_at is None


def test_every_render_of_the_detail_page_is_audited(app, admin, cast):
    assert admin.get(f"/admin/requests/{cast.mine}").status_code == 200
    bad = admin.post(f"/admin/requests/{cast.mine}/status", data={"status": "bogus"})
    assert bad.status_code == 400 and "Rosa Garcia" in bad.get_data(as_text=True)
    assert admin.post(f"/admin/requests/{cast.mine}/notes", data={"body": ""}).status_code == 400
    assert audit_actions(app, cast.mine).count("request_viewed") == 3
