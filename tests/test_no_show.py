"""Missed consultations (portal.booking.rebooking): the optional gentle note (default: none),
its link that books again with the same therapist as a new linked request, and the
dashboard's no-show rate by Pacific month."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from html import unescape
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.booking.scheduling import PACIFIC, parse_slot_value
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages import outbox
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.backoffice import audit_actions, database_snapshot
from tests.conftest import mail_app_config
from tests.factories import make_request

app_config = mail_app_config
SLOT = re.compile(r'name="slot" value="([^"]+)"')


@pytest.fixture
def missed(app, cast):
    """A scheduled consultation with Maya whose time was yesterday."""
    with app.app_context():
        maya = db.session.get(Therapist, cast.therapist_id)
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
        row = make_request(maya, start, status="scheduled", first_name="Imogen",
                           email="imogen@example.com", message="SENTINEL-message",
                           preferred_name="Immy", ok_to_text=False, ok_to_voicemail=False,
                           adult=True, payment="self_pay")
        db.session.commit()
        return row.id


def kinds(app, rid: int) -> list[str]:
    with app.app_context():
        return sorted(db.session.scalars(select(OutboxEmail.kind).where(
            OutboxEmail.request_id == rid)))


def mark_no_show(admin, rid: int, **extra):
    return admin.post(f"/admin/requests/{rid}/status", data={"status": "no_show", **extra})


def rebook_path(app, smtp_server, rid: int) -> str:
    """Mark ``rid`` no-show with the note, deliver it, and return its link's path."""
    with app.app_context():
        assert outbox.deliver_due().sent == 1
    [message] = smtp_server.to("imogen@example.com")
    assert message["Subject"] == "Sorry we missed you"
    text = message.get_body(("plain",)).get_content()
    assert "SENTINEL" not in message.as_string()
    assert "988" in text and "988" in message.get_body(("html",)).get_content()
    [url] = re.findall(r"https://portal\.example\.com/rebook/\S+", text)
    return urlsplit(url).path


def test_marking_no_show_sends_nothing_unless_staff_choose_to(app, admin, missed):
    page = admin.get(f"/admin/requests/{missed}").get_data(as_text=True)
    assert re.search(r'<input type="checkbox"[^>]*name="no_show_note" value="y"(?! checked)',
                     page)  # offered, and not ticked
    assert mark_no_show(admin, missed).status_code == 302
    with app.app_context():
        assert db.session.get(ConsultationRequest, missed).status == "no_show"
    assert kinds(app, missed) == []


def test_the_note_goes_once_when_staff_tick_it(app, admin, missed):
    assert mark_no_show(admin, missed, no_show_note="y").status_code == 302
    assert kinds(app, missed) == ["missed_note"]
    assert "missed_note_queued" in audit_actions(app, missed)
    # Back to completed and no-show again: the client isn't sent a second note.
    admin.post(f"/admin/requests/{missed}/status", data={"status": "completed"})
    mark_no_show(admin, missed, no_show_note="y")
    assert kinds(app, missed) == ["missed_note"]


@pytest.mark.clock
def test_the_link_books_again_with_the_same_therapist(app, admin, cast, missed, smtp_server,
                                                      clock):
    mark_no_show(admin, missed, no_show_note="y")
    path = rebook_path(app, smtp_server, missed)
    client = app.test_client()  # the client, not signed in

    before = database_snapshot(app)
    page = client.get(path)
    assert page.status_code == 200
    assert database_snapshot(app) == before  # opening the link changes nothing
    html = unescape(page.get_data(as_text=True))
    assert "Maya Alvarez" in html and "Daniel Okafor" not in html
    offered = SLOT.findall(html)
    with app.app_context():
        from portal.booking.availability import available_slots
        assert [parse_slot_value(v) for v in offered] == sorted(
            available_slots(str(cast.therapist_id)))

    response = client.post(path, data={"slot": offered[0]})
    assert response.status_code == 302
    assert response.location.startswith("/consultation/confirmed/")
    with app.app_context():
        old = db.session.get(ConsultationRequest, missed)
        new = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.rebooked_from_id == missed))
        assert old.status == "no_show"  # the missed one stays missed
        assert (new.status, new.therapist_id, new.email) == (
            "new", cast.therapist_id, "imogen@example.com")
        assert new.starts_at == parse_slot_value(offered[0]) and new.message == ""
        # How the client may be contacted comes along: a new booking must not lose
        # "do not leave a voicemail".
        assert (new.preferred_name, new.ok_to_text, new.ok_to_voicemail, new.adult,
                new.payment) == ("Immy", False, False, True, "self_pay")
        new_id, new_public_id = new.id, new.public_id
    assert response.location == f"/consultation/confirmed/{new_public_id}"
    assert kinds(app, new_id) == ["confirmation", "therapist_notice"]
    assert "rebooked_after_no_show" in audit_actions(app, missed)
    # Staff see the two requests linked, each way.
    assert f'/admin/requests/{new_id}"' in admin.get(f"/admin/requests/{missed}").text
    assert f'/admin/requests/{missed}"' in admin.get(f"/admin/requests/{new_id}").text

    # The link has done its work: it now leads to the booking it made.
    again = client.get(path)
    assert again.status_code == 302 and "/manage/" in again.location
    assert client.post(path, data={"slot": offered[1]}).status_code == 302
    with app.app_context():
        assert db.session.scalar(select(db.func.count(ConsultationRequest.id)).where(
            ConsultationRequest.rebooked_from_id == missed)) == 1


@pytest.mark.clock
def test_a_time_taken_meanwhile_is_refused_kindly(app, admin, cast, missed, smtp_server, clock):
    mark_no_show(admin, missed, no_show_note="y")
    path = rebook_path(app, smtp_server, missed)
    client = app.test_client()
    offered = SLOT.findall(client.get(path).get_data(as_text=True))
    with app.app_context():  # someone else books that time first
        maya = db.session.get(Therapist, cast.therapist_id)
        make_request(maya, parse_slot_value(offered[0]), first_name="Quick")
        db.session.commit()
    response = client.post(path, data={"slot": offered[0]})
    page = unescape(response.get_data(as_text=True))
    assert response.status_code == 409
    assert "That time was just taken" in page and 'role="alert"' in page
    assert offered[0] not in SLOT.findall(page) and SLOT.findall(page)
    with app.app_context():
        assert db.session.scalar(select(ConsultationRequest.id).where(
            ConsultationRequest.rebooked_from_id == missed)) is None


def test_a_forged_or_manage_link_is_not_a_rebook_link(app, admin, missed):
    mark_no_show(admin, missed, no_show_note="y")
    client = app.test_client()
    assert client.get("/rebook/not-a-token").status_code == 404
    with app.app_context():
        from portal import links
        manage_token = links.manage_token(db.session.get(ConsultationRequest, missed))
    assert client.get(f"/rebook/{manage_token}").status_code == 404


def test_a_request_no_longer_no_show_cannot_be_rebooked(app, admin, missed, smtp_server):
    mark_no_show(admin, missed, no_show_note="y")
    path = rebook_path(app, smtp_server, missed)
    admin.post(f"/admin/requests/{missed}/status", data={"status": "completed"})
    assert app.test_client().get(path).status_code == 404


# -- the dashboard ------------------------------------------------------------------

def pacific(day, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=PACIFIC)


@pytest.mark.clock
def test_the_dashboard_shows_the_no_show_rate_by_pacific_month(app, admin, cast, clock):
    today = datetime.now(UTC).astimezone(PACIFIC).date()
    this_month = today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    thirteen_ago = this_month
    for _ in range(13):
        thirteen_ago = (thirteen_ago - timedelta(days=1)).replace(day=1)
    with app.app_context():
        maya = db.session.get(Therapist, cast.therapist_id)
        def held(start, status):
            make_request(maya, start, status=status)
        # This month: 3 completed, 1 no-show (25%). One of the completed is at
        # 00:30 PT on the 1st, already this month in Pacific time.
        held(pacific(this_month, 0, 30), "completed")
        held(pacific(this_month, 10), "completed")
        held(pacific(this_month, 11), "completed")
        held(pacific(this_month, 12), "no_show")
        # Last month: one no-show at 23:30 PT on its last day (next month in UTC), one
        # completed: 50%.
        held(pacific(this_month - timedelta(days=1), 23, 30), "no_show")
        held(pacific(last_month, 9), "completed")
        # Not counted: too long ago, or not held.
        held(pacific(thirteen_ago, 10), "no_show")
        held(pacific(this_month, 13), "cancelled")
        db.session.commit()
    page = admin.get("/admin/").get_data(as_text=True)
    table = re.search(r'<table class="no-show-rates">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r'<th scope="row">([^<]+)</th><td>(\d+)</td><td>(\d+)</td>'
                      r'\s*<td>([^<]+)</td>', table)
    assert len(rows) == 12
    assert rows[0] == (this_month.strftime("%b %Y"), "3", "1", "25%")
    assert rows[1] == (last_month.strftime("%b %Y"), "1", "1", "50%")
    assert all(row[1:] == ("0", "0", "—") for row in rows[2:])
    assert thirteen_ago.strftime("%b %Y") not in [row[0] for row in rows]


@pytest.mark.clock
def test_a_person_with_another_open_request_is_told_kindly(app, admin, cast, missed,
                                                            smtp_server, clock):
    mark_no_show(admin, missed, no_show_note="y")
    path = rebook_path(app, smtp_server, missed)
    with app.app_context():  # they asked again meanwhile, through the public form
        make_request(None, None, email="imogen@example.com")
        db.session.commit()
    client = app.test_client()
    offered = SLOT.findall(client.get(path).get_data(as_text=True))
    response = client.post(path, data={"slot": offered[0]})
    assert response.status_code == 409
    assert "You already have a consultation booked with us" in unescape(
        response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(ConsultationRequest.id).where(
            ConsultationRequest.rebooked_from_id == missed)) is None
