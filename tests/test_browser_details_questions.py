""""Help us prepare" in a real Chromium, after the code: the contact permissions, the
payment question with the Good Faith Estimate notice; the age question of step 1 and
the young people's page, the public notice, and the request page staff read first.
axe-core clean and screenshots at 1280 and 375 px on each."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.models import ConsultationRequest
from tests.browser import check_page as axe_and_screenshots
from tests.factories import PASSWORD, future_slot, make_request, make_user
from tests.test_browser_public import (
    agree_and_send,
    answer_about,
    check_page,
    choose_first_time,
    emailed_code,
    enter_code,
    to_time,
)

pytestmark = pytest.mark.browser


def stored_requests(live_app) -> int:
    with live_app.app_context():
        return db.session.scalar(select(func.count()).select_from(ConsultationRequest))


def test_help_us_prepare_asks_the_optional_questions(page: Page, base_url, live_app,
                                                     screenshot_dir):
    to_time(page, base_url)
    choose_first_time(page)
    email = f"questions-{secrets.token_hex(4)}@example.com"
    answer_about(page, email, first="Samantha", last="Reyes")
    agree_and_send(page)
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    enter_code(page, emailed_code(live_app, email))
    expect(page.get_by_role("heading", name="Your consultation is booked")).to_be_visible()
    expect(page.get_by_role("heading", name="Help us prepare (optional)")).to_be_visible()
    page.get_by_role("link", name="Answer a few questions").click()
    # Asking for texts means saying yes to texts: the one way these answers can be wrong.
    page.get_by_role("group", name="How would you like us to contact you? (optional)") \
        .get_by_label("Text message").check()
    page.get_by_role("group", name="May we send you text messages? (optional)") \
        .get_by_label("No", exact=True).check()
    page.get_by_role("button", name="Save my answers").click()
    expect(page.get_by_role("alert")).to_contain_text("You chose text message")
    check_page(page, screenshot_dir, "prepare-errors")
    page.get_by_role("group", name="How would you like us to contact you? (optional)") \
        .get_by_label("Phone call").check()
    page.get_by_label("What should we call you?").fill("Sam")
    page.get_by_role("group", name=re.compile("May we leave a voicemail")) \
        .get_by_label("No", exact=True).check()
    page.get_by_role("group", name="How do you expect to pay for therapy? (optional)") \
        .get_by_label("I'll pay for sessions myself (self-pay)").check()
    expect(page.locator("#good-faith-estimate")).to_contain_text(
        "You have the right to receive a \u201cGood Faith Estimate\u201d")
    check_page(page, screenshot_dir, "prepare-filled")
    page.get_by_role("button", name="Save my answers").click()
    expect(page.get_by_text("Thank you. Your therapist will read your answers")).to_be_visible()
    with live_app.app_context():
        row = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.email == email))
        assert (row.preferred_name, row.ok_to_text, row.ok_to_voicemail, row.payment,
                row.preferred_contact) == ("Sam", False, False, "self_pay", "phone")


def test_under_18_goes_to_the_young_peoples_page(browser, base_url, live_app, screenshot_dir):
    # Without scripts too: the answer and one button are all it takes.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{base_url}/consultation")
        before = stored_requests(live_app)
        page.get_by_role("group", name="Are you 18 or older?").get_by_label("No", exact=True) \
            .check()
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(f"{base_url}/consultation/young-people")
        assert stored_requests(live_app) == before
    finally:
        context.close()
    page = browser.new_page()
    try:
        page.goto(f"{base_url}/consultation/young-people")
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Consultations for young people")
        expect(page.get_by_text("A parent or guardian can ask about a consultation")) \
            .to_be_visible()
        check_page(page, screenshot_dir, "young-people")
    finally:
        page.close()


def test_the_good_faith_estimate_page(page: Page, base_url, screenshot_dir):
    page.goto(f"{base_url}/")
    page.goto(f"{base_url}/good-faith-estimate")
    expect(page.get_by_role("heading", level=2)).to_contain_text(
        "You have the right to receive a \u201cGood Faith Estimate\u201d")
    check_page(page, screenshot_dir, "good-faith-estimate")


def test_staff_read_the_contact_permissions_first(browser, base_url, live_app, screenshot_dir):
    with live_app.app_context():
        therapist = db.session.scalar(select(Therapist).order_by(Therapist.id).limit(1))
        make_user("permissions-admin@example.com")
        request_id = make_request(
            therapist, future_slot(days=12), first_name="Samantha", last_name="Quietly",
            email="samantha.quietly@example.com", preferred_name="Sam", ok_to_text=False,
            ok_to_voicemail=False, adult=True, payment="self_pay", preferred_contact="phone").id
        db.session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{base_url}/admin/login")
        page.get_by_label("Email address").fill("permissions-admin@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{base_url}/admin/requests?q=quietly")
        expect(page.get_by_text("GFE due")).to_be_visible()
        page.set_viewport_size({"width": 375, "height": 900})
        # The tag's hidden words stay inside the table's own scroll area.
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        axe_and_screenshots(page, "requests-gfe",
                            lambda width: screenshot_dir / f"admin-requests-gfe-{width}.png")
        page.goto(f"{base_url}/admin/requests/{request_id}")
        permissions = page.locator("#contact-permissions")
        expect(permissions).to_contain_text("Do not leave a voicemail \u2013 someone else may "
                                            "hear it. Call only when you can speak to Sam "
                                            "directly.")
        expect(permissions).to_contain_text("Do not text.")
        expect(page.get_by_text("GFE due before the first paid session")).to_be_visible()
        axe_and_screenshots(page, "request-permissions",
                            lambda width: screenshot_dir / f"admin-request-permissions-{width}.png")
    finally:
        context.close()
