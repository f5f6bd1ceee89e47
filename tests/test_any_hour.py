"""Pacific dates at any hour: what the practice calls "today", "this week" and "in
24 hours" at the instants where UTC says otherwise (see CLOCK_INSTANTS in conftest),
on the pages and commands that use them. Each test runs once per instant."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from portal.admin.dashboard import week_start
from portal.booking.intake_tables import NotEligibleCount
from portal.booking.scheduling import PACIFIC, format_day
from portal.extensions import db
from portal.messages import notifications
from portal.messages.models import OutboxEmail
from portal.models import to_db
from tests.backoffice import sign_in
from tests.conftest import CLOCK_INSTANTS
from tests.factories import make_request, make_therapist, make_user

ELIGIBLE = {"ca_resident": "yes", "zip_code": "94110", "in_california": "yes", "adult": "yes"}
SLOT_VALUE = re.compile(r'name="slot" value="([^"]+)"')
ROW = re.compile(r'<tr><th scope="row">All</th><td>(\d+)</td><td>(\d+)</td></tr>')


def test_the_instants_cover_the_awkward_hours():
    """Every run checks these (PORTAL_TEST_NOW aside): keep them when editing the list."""
    instants = [datetime.fromisoformat(value) for value in CLOCK_INSTANTS.values()]
    utc = {i.astimezone(UTC).strftime("%H:%M") for i in instants}
    pacific = [i.astimezone(PACIFIC) for i in instants]
    assert "07:30" in utc
    assert {"23:59", "00:01"} <= {p.strftime("%H:%M") for p in pacific}
    assert any(p.date() != i.astimezone(UTC).date() for p, i in zip(pacific, instants, strict=True))
    for change in (date(2027, 3, 14), date(2027, 11, 7)):
        offsets = {p.utcoffset() for p in pacific if p.date() == change}
        assert offsets == {timedelta(hours=-8), timedelta(hours=-7)}, change


def pacific_today():
    return datetime.now(UTC).astimezone(PACIFIC).date()


@pytest.mark.clock
def test_a_turned_away_visitor_counts_on_the_pacific_day(app, client):
    response = client.post("/consultation", data={**ELIGIBLE, "ca_resident": "no"})
    assert response.status_code == 302
    with app.app_context():
        rows = db.session.execute(select(NotEligibleCount.day, NotEligibleCount.count)).all()
        make_user("admin@example.com")
        db.session.commit()
    assert rows == [(pacific_today(), 1)]
    staff = app.test_client()
    sign_in(staff, "admin@example.com")
    page = staff.get("/admin/").text
    assert f"<li>{pacific_today().strftime('%a %b %-d')}: 1</li>" in page


@pytest.mark.clock
def test_this_week_starts_on_monday_midnight_pacific(app, client):
    monday = week_start(pacific_today())
    assert monday.weekday() == 0 and monday.time() == time(0)
    with app.app_context():
        for when in (datetime.now(UTC), monday, monday - timedelta(minutes=1),
                     monday - timedelta(days=7), monday - timedelta(days=7, minutes=1)):
            make_request().created_at = to_db(when)
        make_user("admin@example.com")
        db.session.commit()
    sign_in(client, "admin@example.com")
    # Now and Monday 00:00 this week; a minute before it and Monday 00:00 last week.
    assert ROW.search(client.get("/admin/").text).groups() == ("2", "2")


@pytest.mark.clock
def test_offered_times_are_inside_pacific_hours_and_past_the_notice(app, client):
    with app.app_context():
        make_therapist()  # 09:00-17:00 every day
        db.session.commit()
    client.post("/consultation", data=ELIGIBLE)
    page = client.get("/consultation/time").text
    starts = [datetime.fromisoformat(value) for value in SLOT_VALUE.findall(page)
              if value != "none"]
    assert starts
    now = datetime.now(UTC)
    notice = timedelta(hours=app.config["MIN_NOTICE_HOURS"])
    for start in starts:
        local = start.astimezone(PACIFIC)
        assert time(9) <= local.time() <= time(16, 30), start
        assert start >= now + notice - timedelta(minutes=1), start
    # The first day offered is the first whose hours reach past the notice.
    earliest = (now + notice).astimezone(PACIFIC)
    first_day = earliest.date() if earliest.time() < time(16, 30) else (
        earliest.date() + timedelta(days=1))
    assert starts[0].astimezone(PACIFIC).date() == first_day
    assert format_day(first_day) in page


@pytest.mark.clock
def test_reminders_are_due_24_real_hours_ahead(app):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with app.app_context():
        therapist = make_therapist()
        due = make_request(therapist, now + timedelta(hours=23, minutes=30)).id
        make_request(therapist, now + timedelta(hours=24, minutes=30))
        make_request(therapist, now - timedelta(minutes=30))
        db.session.commit()
        assert notifications.queue_due_reminders() == 1
        db.session.commit()
        assert db.session.scalars(select(OutboxEmail.request_id).where(
            OutboxEmail.kind == "reminder")).all() == [due]
