"""A therapist's own calendar in the back office: connect (the app password never shown
back), test, disconnect, the feed link and "make a new link", and a failing or stale
calendar named on the therapist's page and the dashboard, with since when and why."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from sqlalchemy import select

from portal.calendars.feed import feed_of
from portal.calendars.models import TherapistCalendar
from portal.calendars.sync import sync_all
from portal.extensions import db
from tests.backoffice import sign_in
from tests.calendar_servers import (  # noqa: F401 - fixtures
    ALL_DAY,
    MARCH,
    RADICALE_PASSWORD,
    RADICALE_USER,
    app_config,
    connect_ics,
    ics_server,
    ics_server_session,
    radicale,
    radicale_calendar,
    vcalendar,
)


def page(admin, cast) -> str:
    response = admin.get(f"/admin/therapists/{cast.therapist_id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_connect_a_caldav_calendar_test_it_and_disconnect(app, admin, cast, radicale):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        sign_in(admin, cast.admin_email)  # the session began before the clock moved
        with app.app_context():
            url = str(radicale_calendar(radicale, f"office-{cast.therapist_id}", [ALL_DAY]).url)
        response = admin.post(f"/admin/therapists/{cast.therapist_id}/calendar", data={
            "kind": "caldav", "url": url, "username": RADICALE_USER,
            "password": RADICALE_PASSWORD}, follow_redirects=True)
        body = response.get_data(as_text=True)
        assert "Calendar connected. Read 1 event; next busy Friday, March 12" in body
        assert RADICALE_PASSWORD not in body
        assert "Last read" in body and "1 event." in body
        response = admin.post(f"/admin/therapists/{cast.therapist_id}/calendar/test",
                              follow_redirects=True)
        assert "Read 1 event; next busy Friday, March 12, all day." \
            in response.get_data(as_text=True)
        admin.post(f"/admin/therapists/{cast.therapist_id}/calendar/disconnect")
        assert "No calendar connected" in page(admin, cast)
        with app.app_context():
            assert db.session.scalar(select(TherapistCalendar)) is None


def test_a_caldav_calendar_needs_a_user_and_password(admin, cast):
    response = admin.post(f"/admin/therapists/{cast.therapist_id}/calendar", data={
        "kind": "caldav", "url": "https://caldav.example.com/cal/"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Enter the CalDAV user name." in body and "Enter the CalDAV app password" in body


def test_a_private_address_is_refused_on_the_page(app, admin, cast):
    app.config["CALENDAR_ALLOW_PRIVATE_URLS"] = False
    response = admin.post(f"/admin/therapists/{cast.therapist_id}/calendar", data={
        "kind": "ics", "url": "https://10.0.0.7/calendar.ics"})
    assert response.status_code == 400
    assert "Refused: this address is on a private network." in response.get_data(as_text=True)


def test_a_failing_calendar_is_named_with_since_when_and_why(app, admin, cast, ics_server):  # noqa: F811
    with time_machine.travel(MARCH, tick=False) as traveller:
        sign_in(admin, cast.admin_email)
        url = ics_server.serve("/office.ics", vcalendar(ALL_DAY))
        admin.post(f"/admin/therapists/{cast.therapist_id}/calendar",
                   data={"kind": "ics", "url": url})
        body = page(admin, cast)
        assert "a secret address at 127.0.0.1" in body and "/office.ics" not in body
        ics_server.serve("/office.ics", "", status=401)
        traveller.shift(timedelta(minutes=20))
        sign_in(admin, cast.admin_email)
        admin.post(f"/admin/therapists/{cast.therapist_id}/calendar/test")
        body = page(admin, cast)
        assert "Offering no times:" in body
        assert "not read successfully since Mar 7, 2027, 12:00 PM PT" in body
        assert "Wrong user name or password" in body
        dashboard = admin.get("/admin/").get_data(as_text=True)
        assert "Therapists&#39; calendars" in dashboard or "Therapists' calendars" in dashboard
        assert "Maya Alvarez" in dashboard and "Offering no times" in dashboard
        assert "Wrong user name or password" in dashboard


def test_the_feed_link_and_a_new_one(app, admin, cast, client):
    assert "Make the feed link" in page(admin, cast)
    admin.post(f"/admin/therapists/{cast.therapist_id}/calendar/feed")
    with app.app_context():
        first = feed_of(cast.therapist_id).token
    assert f"/calendar/{first}.ics" in page(admin, cast)
    admin.post(f"/admin/therapists/{cast.therapist_id}/calendar/feed")
    with app.app_context():
        second = feed_of(cast.therapist_id).token
    assert second != first
    assert client.get(f"/calendar/{first}.ics").status_code == 404
    assert client.get(f"/calendar/{second}.ics").status_code == 200


def test_a_therapist_sees_their_own_calendar_on_their_dashboard_and_no_one_elses(
        app, client, cast, ics_server):  # noqa: F811
    """A therapist user has no therapist page: their dashboard says how their own calendar
    reads (last read, next busy, and when it fails, since when and why, and that they
    offer no times); another therapist sees nothing of it."""
    with time_machine.travel(MARCH, tick=False) as traveller:
        url = ics_server.serve("/maya.ics", vcalendar(ALL_DAY))
        with app.app_context():
            connect_ics(cast.therapist_id, url)
            sync_all()
        sign_in(client, cast.own_email)
        body = client.get("/admin/").get_data(as_text=True)
        assert "Your calendar" in body
        assert "Your iCalendar address was last read Mar 7, 2027, 12:00 PM PT: 1 event." in body
        assert "Next busy: Friday, March 12, all day." in body
        assert "Offering no times" not in body

        ics_server.serve("/maya.ics", "", status=401)
        traveller.shift(timedelta(minutes=20))
        with app.app_context():
            sync_all()
        sign_in(client, cast.own_email)
        body = client.get("/admin/").get_data(as_text=True)
        assert "Offering no times:" in body
        assert "not been read successfully since Mar 7, 2027, 12:00 PM PT" in body
        assert "Wrong user name or password" in body
        assert "Failing since Mar 7, 2027, 12:20 PM PT." in body
        assert "Therapists&#39; calendars" not in body and "Daniel Okafor" not in body

        other = app.test_client()
        sign_in(other, cast.other_email)
        body = other.get("/admin/").get_data(as_text=True)
        assert "Your calendar" in body and "No calendar connected" in body
        assert "Wrong user name or password" not in body and "Maya Alvarez" not in body
        assert "Next busy" not in body
