"""In a real Chromium: the "not a fit" page with its email preview (back office), and
the client's page for booking again after a missed consultation. axe-core and
screenshots at 1280 and 375 px on each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from portal.booking import rebooking
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.models import ConsultationRequest
from tests.browser import check_page
from tests.factories import PASSWORD, make_request, make_user

pytestmark = pytest.mark.browser
LABELS = {1280: "desktop", 375: "phone"}


def shots(screenshot_dir, name):
    return lambda width: screenshot_dir / f"{name}-{LABELS[width]}.png"


@pytest.fixture(scope="module")
def people(live_app):
    with live_app.app_context():
        therapist = db.session.query(Therapist).order_by(Therapist.id).first()
        make_user("decline-admin@example.com")
        open_one = make_request(None, None, first_name="Marisol", last_name="Declinewood",
                                email="marisol@example.com")
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
        missed = make_request(therapist, start, status="no_show", first_name="Tobias",
                              last_name="Missedmore", email="tobias@example.com")
        db.session.commit()
        return {"open": open_one.id, "rebook_path": urlsplit(rebooking.rebook_url(missed)).path,
                "missed": missed.id}


def test_decline_page_and_its_preview(browser, base_url, people, screenshot_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/admin/login")
    page.get_by_label("Email address").fill("decline-admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.goto(f"{base_url}/admin/requests/{people['open']}")
    page.get_by_label("New status").select_option("not_a_fit")
    page.get_by_label("Note (optional)").fill("Internal: needs a higher level of care.")
    page.get_by_role("button", name="Save status").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("not a fit")
    expect(page.get_by_label("Yes, email them a kind note")).to_be_checked()
    expect(page.get_by_label("Internal note (optional)")).to_have_value(
        "Internal: needs a higher level of care.")
    check_page(page, "admin decline", shots(screenshot_dir, "admin-decline"))

    page.get_by_label("A personal line for the client (optional)").fill(
        "I hope one of these feels like the right next step.")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check the email before it's sent")
    preview = page.locator("pre.email-text")
    expect(preview).to_contain_text("I hope one of these feels like the right next step.")
    expect(preview).to_contain_text("988")
    expect(preview).not_to_contain_text("higher level of care")
    check_page(page, "admin decline preview", shots(screenshot_dir, "admin-decline-preview"))

    page.get_by_role("button", name="Send and mark not a fit").click()
    expect(page.get_by_role("status")).to_contain_text("Not a fit")
    context.close()


def test_rebook_page(browser, base_url, live_app, people, screenshot_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}{people['rebook_path']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Book another time")
    check_page(page, "rebook", shots(screenshot_dir, "public-rebook"))
    page.get_by_role("button", name="Book this time").click()  # nothing chosen
    expect(page.get_by_role("alert").first).to_be_visible()
    page.locator('input[name="slot"]').first.check()
    page.get_by_role("button", name="Book this time").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("booked")
    context.close()
    with live_app.app_context():
        assert db.session.query(ConsultationRequest).filter_by(
            rebooked_from_id=people["missed"]).count() == 1
