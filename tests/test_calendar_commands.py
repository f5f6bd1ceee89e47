"""The calendar commands (``calendars sync``, ``connect``, ``disconnect``, ``feed-url``),
the private feed they print, and ``make run``'s background worker reading calendars."""

from __future__ import annotations

import threading
from datetime import timedelta

import icalendar
import pytest
import time_machine
from sqlalchemy import select, text

from portal.calendars.models import CalendarBusy, TherapistCalendar
from portal.extensions import db
from portal.messages import senders
from tests.calendar_servers import (  # noqa: F401 - fixtures
    ALL_DAY,
    MARCH,
    RADICALE_PASSWORD,
    RADICALE_USER,
    app_config,
    ics_server,
    ics_server_session,
    radicale,
    radicale_calendar,
    vcalendar,
)
from tests.factories import make_request, make_therapist


@pytest.fixture
def therapist(app):
    with app.app_context():
        therapist = make_therapist("Maya Alvarez", email="maya@example.com")
        db.session.commit()
        return therapist.id


def stored(app, sql: str):
    with app.app_context():
        return db.session.execute(text(sql)).all()


def test_connect_an_ics_address_reads_it_and_says_what_it_found(app, runner, therapist,
                                                                  ics_server):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        url = ics_server.serve("/maya.ics", vcalendar(ALL_DAY))
        result = runner.invoke(args=["calendars", "connect", "MAYA@example.com", "--ics", url])
        assert result.exit_code == 0, result.output
        assert "Connected Maya Alvarez's calendar. Read 1 event; next busy Friday, March 12" \
            in result.output
        assert stored(app, "SELECT count(*) FROM calendar_busy") == [(1,)]
        result = runner.invoke(args=["calendars", "sync"])
        assert result.exit_code == 0 and "Read 1 calendar(s), 0 changed, 0 failed" in result.output


def test_connect_caldav_keeps_the_app_password_encrypted(  # noqa: F811
        app, runner, therapist, radicale, monkeypatch):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        with app.app_context():
            url = str(radicale_calendar(radicale, f"cli-{therapist}", [ALL_DAY]).url)
        monkeypatch.setenv("PORTAL_PASSWORD", RADICALE_PASSWORD)
        result = runner.invoke(args=["calendars", "connect", "maya@example.com", "--caldav",
                                     url, "--user", RADICALE_USER])
        assert result.exit_code == 0, result.output
        assert "Read 1 event" in result.output
        [(password, address)] = stored(app, "SELECT password, url FROM therapist_calendar")
        assert password.startswith("gcm1:") and RADICALE_PASSWORD not in password
        assert address.startswith("gcm1:")
        result = runner.invoke(args=["calendars", "disconnect", "maya@example.com"])
        assert result.exit_code == 0 and "Disconnected" in result.output
        assert stored(app, "SELECT count(*) FROM therapist_calendar") == [(0,)]
        assert stored(app, "SELECT count(*) FROM calendar_busy") == [(0,)]


def test_connect_refuses_a_private_address_without_the_setting(app, runner, therapist):
    app.config["CALENDAR_ALLOW_PRIVATE_URLS"] = False
    result = runner.invoke(args=["calendars", "connect", "maya@example.com", "--ics",
                                 "https://192.168.0.8/cal.ics"])
    assert result.exit_code != 0
    assert "Refused: this address is on a private network." in result.output
    result = runner.invoke(args=["calendars", "connect", "nobody@example.com", "--ics",
                                 "https://example.com/cal.ics"])
    assert result.exit_code != 0 and "There is no therapist" in result.output


def test_the_feed_url_shows_consultations_without_client_details_and_can_be_replaced(
        app, runner, client, therapist):
    with app.app_context():
        from portal.booking.therapists import Therapist
        consultation = make_request(db.session.get(Therapist, therapist),
                                    MARCH + timedelta(days=3), status="scheduled",
                                    first_name="Sentinelname", email="sentinel@example.com")
        reference = consultation.reference
        db.session.commit()
    result = runner.invoke(args=["calendars", "feed-url", "maya@example.com"])
    url = result.output.strip()
    assert url.startswith("https://portal.example.com/calendar/") and url.endswith(".ics")
    assert runner.invoke(args=["calendars", "feed-url", "maya@example.com"]).output.strip() == url
    path = url.removeprefix("https://portal.example.com")
    with time_machine.travel(MARCH, tick=True):
        response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    body = response.get_data(as_text=True)
    feed = icalendar.Calendar.from_ical(body)
    assert feed["METHOD"] == "PUBLISH"
    [event] = feed.walk("VEVENT")
    assert str(event["SUMMARY"]) == f"Free consultation {reference}"
    assert str(event["UID"]) == f"consultation-{reference}@consultations.portal"
    assert "/admin/requests/" in str(event["DESCRIPTION"])
    assert "Sentinelname" not in body and "sentinel@" not in body
    new = runner.invoke(args=["calendars", "feed-url", "maya@example.com", "--new"]).output.strip()
    assert new != url
    assert client.get(path).status_code == 404
    assert client.get(new.removeprefix("https://portal.example.com")).status_code == 200
    assert client.get("/calendar/" + "x" * 43 + ".ics").status_code == 404


def test_the_background_worker_reads_the_calendars(app, therapist, ics_server):  # noqa: F811
    with time_machine.travel(MARCH, tick=True):
        with app.app_context():
            db.session.add(TherapistCalendar(therapist_id=therapist, kind="ics",
                                             url=ics_server.serve("/bg.ics", vcalendar(ALL_DAY))))
            db.session.commit()
        senders.work_loop(app, threading.Event(), max_rounds=1, read_calendars=True)
        with app.app_context():
            assert db.session.scalar(select(TherapistCalendar.read_ok_at)) is not None
            assert len(db.session.scalars(select(CalendarBusy)).all()) == 1
