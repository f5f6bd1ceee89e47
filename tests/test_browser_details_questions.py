"""Step 2's version-2 questions in a real Chromium: the age question first, the
contact permissions, the payment question with the Good Faith Estimate notice,
the young people's page, the public notice, and the request page staff read
first. axe-core clean and screenshots at 1280 and 375 px on each."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ConsultationRequest, Therapist
from tests.browser import check_page as axe_and_screenshots
from tests.factories import PASSWORD, future_slot, make_request, make_user
from tests.test_browser_public import (
    answer_permissions_age_and_payment,
    check_page,
    emailed_code,
    enter_code,
    to_details,
)

pytestmark = pytest.mark.browser


def stored_requests(live_app) -> int:
    with live_app.app_context():
        return db.session.scalar(select(func.count()).select_from(ConsultationRequest))


def test_step_two_asks_the_new_questions(page: Page, base_url, live_app, screenshot_dir):
    to_details(page, base_url)
    adult = page.get_by_role("group", name="Are you 18 or older?")
    expect(adult).to_be_visible()
    page.get_by_role("button", name="Book consultation").click()
    for question in ("Are you 18 or older?", "May we send you text messages?",
                     "May we leave a voicemail that says the name of our practice?",
                     "How do you expect to pay for therapy?"):
        expect(page.get_by_role("group", name=question).get_by_role("radio").first) \
            .to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_contain_text("Select yes if you are 18 or older")
    check_page(page, screenshot_dir, "details-questions-errors")

    email = f"questions-{secrets.token_hex(4)}@example.com"
    page.get_by_role("group", name=re.compile("Choose a time")).get_by_role("radio").first.check()
    page.get_by_label("First name").fill("Samantha")
    page.get_by_label("Last name").fill("Reyes")
    page.get_by_label("What should we call you?").fill("Sam")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Phone number").fill(f"(415) 555-{secrets.randbelow(10000):04d}")
    page.get_by_role("group", name="How would you like us to contact you?") \
        .get_by_label("Phone call").check()
    answer_permissions_age_and_payment(page, text="No", voicemail="No",
                                       payment="I'll pay for sessions myself (self-pay)")
    expect(page.locator("#good-faith-estimate")).to_contain_text(
        "You have the right to receive a \u201cGood Faith Estimate\u201d")
    page.get_by_label("I agree that the practice may store").check()
    page.get_by_label("I understand that this form is not for emergencies").check()
    check_page(page, screenshot_dir, "details-questions-filled")
    page.get_by_role("button", name="Book consultation").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    enter_code(page, emailed_code(live_app, email))
    expect(page.get_by_role("heading", name="Your consultation is booked")).to_be_visible()
    with live_app.app_context():
        row = db.session.scalar(select(ConsultationRequest).where(
            ConsultationRequest.email == email))
        assert (row.preferred_name, row.ok_to_text, row.ok_to_voicemail, row.payment) == (
            "Sam", False, False, "self_pay")


def test_under_18_goes_to_the_young_peoples_page(browser, base_url, live_app, screenshot_dir):
    # Without scripts too: the answer and one button are all it takes.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        to_details(page, base_url)
        before = stored_requests(live_app)
        page.get_by_role("group", name="Are you 18 or older?").get_by_label("No", exact=True) \
            .check()
        page.get_by_role("button", name="Book consultation").click()
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
    to_details(page, base_url)
    page.get_by_role("link", name="Read the full Good Faith Estimate notice").click()
    expect(page).to_have_url(f"{base_url}/good-faith-estimate")
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
