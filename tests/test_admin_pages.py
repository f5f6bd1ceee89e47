"""Therapists, users, outbox, dashboard and audit log pages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select, update

from portal.booking import consultations
from portal.booking.intake_tables import Setting
from portal.booking.scheduling import PACIFIC
from portal.booking.therapists import Therapist, TimeOff, WeeklyHours
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest, to_db, utcnow
from portal.staff.models import User
from tests.backoffice import audit_actions, sign_in
from tests.factories import make_request


def test_add_a_therapist_with_hours_and_time_off_reaches_public_slots(app, admin):
    response = admin.post("/admin/therapists/new", data={
        "name": "Mei Chen", "email": "mei@example.com", "licence_type": "LMFT",
        "licence_number": "123456", "accepting_new": "y"})
    assert response.status_code == 302
    with app.app_context():
        mei = db.session.scalar(select(Therapist).where(Therapist.name == "Mei Chen"))
        assert consultations.available_slots(mei.id) == {}
        mei_id = mei.id
    for day in range(7):
        admin.post(f"/admin/therapists/{mei_id}/hours",
                   data={"weekday": day, "start": "09:00", "end": "12:00"})
    with app.app_context():
        slots = consultations.available_slots(mei_id)
        assert slots
        first = min(slots).astimezone(PACIFIC)
    blocked = {"starts_at": first.strftime("%Y-%m-%dT%H:%M"),
               "ends_at": (first + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")}
    assert admin.post(f"/admin/therapists/{mei_id}/time-off", data=blocked).status_code == 302
    with app.app_context():
        assert min(slots) not in consultations.available_slots(mei_id)


def test_hours_must_end_after_they_start(admin, cast):
    response = admin.post(f"/admin/therapists/{cast.therapist_id}/hours",
                          data={"weekday": 0, "start": "12:00", "end": "09:00"})
    assert response.status_code == 400
    assert "end time must be after" in response.get_data(as_text=True)


def test_deactivating_warns_about_upcoming_consultations(app, admin, cast):
    page = admin.get(f"/admin/therapists/{cast.therapist_id}/deactivate").get_data(as_text=True)
    assert "1 upcoming consultation" in page
    assert admin.post(f"/admin/therapists/{cast.therapist_id}/deactivate").status_code == 302
    with app.app_context():
        assert db.session.get(Therapist, cast.therapist_id).active is False


def test_create_user_and_link_a_therapist(app, admin, cast):
    response = admin.post("/admin/users/new", data={
        "email": "new@example.com", "password": "a long temporary password",
        "role": "therapist", "therapist_id": cast.therapist_id, "active": "y"})
    assert response.status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "new@example.com"))
        assert user.therapist_id == cast.therapist_id and user.role == "therapist"
    duplicate = admin.post("/admin/users/new", data={
        "email": "New@Example.com", "password": "a long temporary password",
        "role": "admin", "therapist_id": 0, "active": "y"})
    page = duplicate.get_data(as_text=True)
    assert "already exists" in page and "--reset-password" not in page
    # The message sits with the email field, not the password.
    assert re.search(r'id="email-error"><span[^>]*>Error:</span> [^<]*already exists', page)
    assert 'id="password-error"' not in page


def test_changing_a_users_therapist_link_is_audited(app, admin, cast):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == cast.own_email))
        user_id = user.id
    response = admin.post(f"/admin/users/{user_id}", data={
        "role": "therapist", "therapist_id": cast.other_therapist_id, "active": "y"})
    assert response.status_code == 302
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "user_changed")).one()
        detail = json.loads(event.detail)
    assert detail["therapist_id"] == cast.other_therapist_id
    assert detail["previous"] == {"role": "therapist", "active": True,
                                  "therapist_id": cast.therapist_id}


def test_removing_hours_and_time_off_returns_to_the_therapist(app, admin, cast):
    with app.app_context():
        therapist = db.session.get(Therapist, cast.therapist_id)
        hours_id = therapist.hours[0].id
        off = TimeOff(therapist=therapist, starts_at=utcnow(),
                      ends_at=utcnow() + timedelta(hours=2))
        db.session.add(off)
        db.session.commit()
        off_id = off.id
    base = f"/admin/therapists/{cast.therapist_id}"
    for url in (f"{base}/hours/{hours_id}/delete", f"{base}/time-off/{off_id}/delete"):
        response = admin.post(url)
        assert response.status_code == 302 and response.headers["Location"] == base
    with app.app_context():
        assert db.session.get(WeeklyHours, hours_id) is None
        assert db.session.get(TimeOff, off_id) is None


def test_unlock_a_locked_user(app, admin, cast):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == cast.own_email))
        user.locked_until = utcnow() + timedelta(minutes=10)
        db.session.commit()
        user_id = user.id
    assert "Locked until" in admin.get("/admin/users").get_data(as_text=True)
    assert admin.post(f"/admin/users/{user_id}/unlock").status_code == 302
    with app.app_context():
        assert db.session.get(User, user_id).locked_until is None
    assert "user_unlocked" in audit_actions(app)


def test_outbox_lists_without_bodies_and_retries_failed(app, admin):
    with app.app_context():
        email = OutboxEmail(key="x:1", kind="client_confirmation", recipient="a@example.com",
                            subject="Your consultation", message_id="<m>", status="failed",
                            attempts=8, last_error="connection refused",
                            body_text="SECRET BODY TEXT")
        db.session.add(email)
        db.session.commit()
        email_id = email.id
    page = admin.get("/admin/outbox?status=failed").get_data(as_text=True)
    assert "connection refused" in page and "SECRET BODY TEXT" not in page
    assert admin.post(f"/admin/outbox/{email_id}/retry").status_code == 302
    with app.app_context():
        assert db.session.get(OutboxEmail, email_id).status == "queued"


def test_retry_all_failed_emails(app, admin):
    with app.app_context():
        for n in range(3):
            db.session.add(OutboxEmail(key=f"f:{n}", kind="client_confirmation",
                                       recipient="a@example.com", subject="s", message_id="<m>",
                                       status="failed", attempts=8, body_text="body"))
        db.session.commit()
    page = admin.get("/admin/outbox").get_data(as_text=True)
    assert "Retry all failed emails (3)" in page
    response = admin.post("/admin/outbox/retry-failed")
    assert response.status_code == 302
    with app.app_context():
        assert set(db.session.scalars(select(OutboxEmail.status))) == {"queued"}
        detail = db.session.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "emails_retried")).one()
    assert json.loads(detail) == {"count": 3}


@pytest.mark.clock
def test_dashboard_flags_stale_new_requests_and_edits_the_pause(app, admin):
    with app.app_context():
        stale = make_request(first_name="Waiting")
        stale.created_at = to_db(datetime.now(UTC) - timedelta(days=5))
        db.session.commit()
        reference = stale.reference
    page = admin.get("/admin/").get_data(as_text=True)
    assert reference in page and "Waiting</span>" in page
    response = admin.post("/admin/intake-pause",
                          data={"paused": "y", "message": "Back on Monday."})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Setting, "intake_paused").value == "1"
        assert db.session.get(Setting, "intake_pause_message").value == "Back on Monday."
    admin.post("/admin/intake-pause", data={"message": ""})
    with app.app_context():
        assert db.session.get(Setting, "intake_paused").value == ""


def promise_section(page: str) -> tuple[str, str]:
    """The dashboard's "Past the promise" and "Due today" lists."""
    section = page.split('id="promise-title"', 1)[1].split("</section>", 1)[0]
    late, today = section.split('id="due-today-title"', 1)
    return late, today


def dashboard_at(app, email: str, when: datetime) -> tuple[str, str]:
    client = app.test_client()  # signed in at ``when``: an older session would be idle
    with time_machine.travel(when, tick=False):
        sign_in(client, email)
        return promise_section(client.get("/admin/").get_data(as_text=True))


def test_dashboard_lists_requests_past_the_promise_first_then_due_today(app, cast):
    monday_10 = datetime(2026, 12, 7, 10, 0, tzinfo=PACIFIC)
    arrivals = {
        "wednesday": (datetime(2026, 12, 2, 9, 0, tzinfo=PACIFIC), "new"),      # due Thu: late
        "thursday": (datetime(2026, 12, 3, 12, 0, tzinfo=PACIFIC), "new"),      # due Fri: late
        "answered": (datetime(2026, 12, 3, 11, 0, tzinfo=PACIFIC), "contacted"),
        "friday_night": (datetime(2026, 12, 4, 18, 0, tzinfo=PACIFIC), "new"),  # due today
        "sunday": (datetime(2026, 12, 6, 20, 0, tzinfo=PACIFIC), "new"),        # due today
        "monday": (datetime(2026, 12, 7, 8, 0, tzinfo=PACIFIC), "new"),         # due Tuesday
    }
    refs = {}
    with app.app_context():
        db.session.execute(update(ConsultationRequest).values(status="contacted"))
        # Listed in an order unlike their arrival: the page sorts them.
        for name in ("thursday", "sunday", "wednesday", "monday", "answered", "friday_night"):
            received, status = arrivals[name]
            request = make_request(status=status)
            request.created_at = to_db(received)
            refs[name] = request.reference
        db.session.commit()
    late, today = dashboard_at(app, cast.admin_email, monday_10)
    assert "Past the promise: 2" in late
    assert late.index(refs["wednesday"]) < late.index(refs["thursday"])  # oldest first
    assert "reply was due Dec 3, 2026, 5:00 PM PT" in late
    assert "Due today by 5:00 PM PT: 2" in today
    assert today.index(refs["friday_night"]) < today.index(refs["sunday"])
    for name in ("answered", "monday"):
        assert refs[name] not in late + today
    for name in ("friday_night", "sunday"):
        assert refs[name] not in late
    # At the close, today's are late too.
    late, today = dashboard_at(app, cast.admin_email, datetime(2026, 12, 7, 17, tzinfo=PACIFIC))
    assert "Past the promise: 4" in late and "Due today by 5:00 PM PT: 0" in today


@pytest.mark.clock
def test_a_request_made_now_is_never_late(app, admin):
    with app.app_context():
        db.session.execute(update(ConsultationRequest).values(status="contacted"))
        reference = make_request().reference
        db.session.commit()
    late, today = promise_section(admin.get("/admin/").get_data(as_text=True))
    assert "Past the promise: 0" in late and "Due today by 5:00 PM PT: 0" in today
    assert reference not in late + today


def test_audit_log_filters_by_who_whatever_the_case(app, admin, cast):
    admin.get(f"/admin/requests/{cast.mine}")
    for who in ("Admin@Example.COM", " admin@example.com ", "ADMIN"):
        page = admin.get("/admin/audit", query_string={"actor": who}).get_data(as_text=True)
        assert "<td>Request viewed</td>" in page, who
    page = admin.get("/admin/audit", query_string={"actor": "maya"}).get_data(as_text=True)
    assert "No entries match" in page


def test_audit_log_filters_by_request(app, admin, cast):
    admin.get(f"/admin/requests/{cast.mine}")
    page = admin.get(f"/admin/audit?request_id={cast.mine}").get_data(as_text=True)
    assert "<td>Request viewed</td>" in page
    assert "<td>Request viewed</td>" not in admin.get(
        f"/admin/audit?request_id={cast.theirs}").get_data(as_text=True)


@pytest.mark.clock
def test_therapist_dashboard_counts_only_their_requests(app, client, cast):
    with app.app_context():
        make_request(db.session.get(Therapist, cast.other_therapist_id), first_name="Other")
        db.session.commit()
        total_mine = db.session.query(ConsultationRequest).filter_by(
            therapist_id=cast.therapist_id).count()
    sign_in(client, cast.own_email)
    page = client.get("/admin/").get_data(as_text=True)
    assert f"<th scope=\"row\">All</th><td>{total_mine}</td>" in page
    assert "Pause new requests" not in page
