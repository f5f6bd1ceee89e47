"""The public flow in a real Chromium, as a person walks it: finding inputs by
their labels, with axe-core checking every page (WCAG 2.0/2.1/2.2 A and AA) and
screenshots at 1280 and 375 px wide."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.extensions import db
from portal.links import manage_token
from portal.models import ConsultationRequest, OutboxEmail
from tests.browser import check_page as axe_and_screenshots

pytestmark = pytest.mark.browser



def check_page(page: Page, screenshot_dir, name: str) -> None:
    """No axe violations at 1280 and 375 px; screenshots public-<name>-<width>.png."""
    axe_and_screenshots(page, name, lambda width: screenshot_dir / f"public-{name}-{width}.png")


def answer_eligibility(page: Page, base_url: str, *, state: str, zip_code: str,
                       resident: str, present: str) -> None:
    page.goto(f"{base_url}/consultation")
    page.get_by_label("Which state do you live in?").select_option(label=state)
    page.get_by_label("ZIP code").fill(zip_code)
    page.get_by_role("group", name="Is California your main home?").get_by_label(resident).check()
    page.get_by_role("group", name="Will you be in California during the consultation?") \
        .get_by_label(present).check()
    page.get_by_role("button", name="Continue").click()


def to_details(page: Page, base_url: str) -> None:
    """Through step 1 to the details page, loaded with its stylesheet: what a test then
    measures is the page as laid out, not as it was when the URL changed."""
    answer_eligibility(page, base_url, state="California", zip_code="94110", resident="Yes",
                       present="Yes")
    expect(page).to_have_url(re.compile(r"/consultation/details"))
    page.wait_for_load_state("load")


def answer_permissions_age_and_payment(page: Page, *, adult: str = "Yes", text: str = "Yes",
                                       voicemail: str = "Yes",
                                       payment: str = "I'd like to use my health insurance"
                                       ) -> None:
    """Step 2's yes/no questions (18 or older, texts, voicemail) and how they'll pay."""
    page.get_by_role("group", name="Are you 18 or older?").get_by_label(adult, exact=True).check()
    page.get_by_role("group", name="May we send you text messages?") \
        .get_by_label(text, exact=True).check()
    page.get_by_role("group", name="May we leave a voicemail that says the name of our practice?") \
        .get_by_label(voicemail, exact=True).check()
    page.get_by_role("group", name="How do you expect to pay for therapy?") \
        .get_by_label(payment).check()


def manage_url_for(live_app, confirmation_url: str) -> str:
    public_id = confirmation_url.rstrip("/").rsplit("/", 1)[-1]
    with live_app.app_context():
        consultation = db.session.scalar(
            select(ConsultationRequest).where(ConsultationRequest.public_id == public_id))
        return f"/manage/{manage_token(consultation)}"


def emailed_code(live_app, email: str) -> str:
    """The code in the newest email to ``email``, as the person reads it there."""
    with live_app.app_context():
        body = db.session.scalar(
            select(OutboxEmail.body_text).where(OutboxEmail.recipient == email,
                                                OutboxEmail.kind == "verification_code")
            .order_by(OutboxEmail.id.desc()).limit(1))
    return re.search(r"\b(\d{6})\b", body).group(1)


def enter_code(page: Page, code: str) -> None:
    page.get_by_label("Confirmation code").fill(code)
    page.get_by_role("button", name="Send my request").click()


def test_landing_and_not_eligible(page: Page, base_url, screenshot_dir):
    page.goto(base_url + "/")
    expect(page.get_by_role("heading", name="Our therapists")).to_be_visible()
    expect(page.get_by_text("LMFT, California license #118204")).to_be_visible()
    check_page(page, screenshot_dir, "landing")
    page.get_by_role("link", name="Request a free consultation").click()
    expect(page).to_have_url(f"{base_url}/consultation")
    check_page(page, screenshot_dir, "eligibility")
    answer_eligibility(page, base_url, state="Oregon", zip_code="97201", resident="No",
                       present="No")
    expect(page).to_have_url(f"{base_url}/consultation/not-eligible?reason=other-state")
    expect(page.get_by_text("You told us you live in another state")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("people in California")
    check_page(page, screenshot_dir, "not-eligible")
    page.get_by_role("link", name="Privacy notice").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Privacy notice")
    check_page(page, screenshot_dir, "privacy")


def test_book_with_an_error_round_trip_then_reschedule_and_cancel(
        page: Page, base_url, live_app, screenshot_dir):
    answer_eligibility(page, base_url, state="California", zip_code="94110", resident="Yes",
                       present="Yes")
    expect(page).to_have_url(re.compile(r"/consultation/details"))
    page.get_by_role("button", name="Book consultation").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Error: "))
    expect(page.get_by_label("First name")).to_have_attribute("aria-invalid", "true")
    check_page(page, screenshot_dir, "details-errors")

    email = f"walk-{secrets.token_hex(4)}@example.com"
    page.get_by_role("group", name=re.compile("Choose a time")).get_by_role("radio").first.check()
    page.get_by_label("First name").fill("Casey")
    page.get_by_label("Last name").fill("Rivera")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Phone number").fill(f"(415) 555-{secrets.randbelow(10000):04d}")
    page.get_by_role("group", name="How would you like us to contact you?") \
        .get_by_label("Email").check()
    page.get_by_label("Ketamine-assisted psychotherapy").check()
    answer_permissions_age_and_payment(page)
    page.get_by_label("I agree that the practice may store").check()
    page.get_by_label("I understand that this form is not for emergencies").check()
    page.get_by_role("button", name="Book consultation").click()

    expect(page).to_have_url(f"{base_url}/consultation/verify")
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()
    check_page(page, screenshot_dir, "verify")
    code = emailed_code(live_app, email)
    enter_code(page, f"{(int(code) + 1) % 1_000_000:06d}")
    expect(page.get_by_role("alert")).to_contain_text("That code doesn't match")
    expect(page.get_by_label("Confirmation code")).to_have_attribute("aria-invalid", "true")
    check_page(page, screenshot_dir, "verify-error")
    enter_code(page, code)

    expect(page.get_by_role("heading", name="Your consultation is booked")).to_be_visible()
    assert email not in page.content()
    check_page(page, screenshot_dir, "confirmation")

    page.goto(base_url + manage_url_for(live_app, page.url))
    expect(page.get_by_role("heading", name="Your consultation")).to_be_visible()
    check_page(page, screenshot_dir, "manage")
    page.get_by_role("link", name="Choose another time").click()
    check_page(page, screenshot_dir, "reschedule")
    page.get_by_role("radio").first.check()
    page.get_by_role("button", name="Move my consultation").click()
    expect(page.get_by_text("Your consultation has been moved")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel my consultation")).to_have_count(0)
    page.get_by_role("link", name="Cancel my consultation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Are you sure you want to cancel your consultation?")
    check_page(page, screenshot_dir, "manage-cancel")
    page.get_by_label("Why are you canceling?").fill("I found a therapist nearer home")
    page.get_by_role("button", name="Yes, cancel my consultation").click()
    expect(page.get_by_text("Your consultation has been cancelled")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel my consultation")).to_have_count(0)


def test_the_whole_request_works_without_javascript(browser, base_url, live_app):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        answer_eligibility(page, base_url, state="California", zip_code="94110-1234",
                           resident="Yes", present="Yes")
        # Typed first, then a therapist chosen: "Show times" keeps what was typed.
        page.get_by_label("First name").fill("Sam")
        page.get_by_label("Last name").fill("Lee")
        page.get_by_label("Daniel Okafor, LCSW").check()
        page.get_by_role("button", name="Show times").click()
        expect(page.get_by_text("Showing free times for Daniel Okafor")).to_be_visible()
        expect(page.get_by_label("First name")).to_have_value("Sam")
        expect(page.get_by_label("Daniel Okafor, LCSW")).to_be_checked()
        expect(page.get_by_role("alert")).to_have_count(0)
        page.get_by_label("None of these times work").check()
        email = f"nojs-{secrets.token_hex(4)}@example.com"
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Phone number").fill(f"415 555 {secrets.randbelow(10000):04d}")
        page.get_by_role("group", name="How would you like us to contact you?") \
            .get_by_label("Text message").check()
        answer_permissions_age_and_payment(page, voicemail="No", payment="I'm not sure yet")
        page.get_by_label("I agree that the practice may store").check()
        page.get_by_label("I understand that this form is not for emergencies").check()
        page.get_by_role("button", name="Book consultation").click()
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        # "Change my email address" goes back with every answer kept.
        page.get_by_role("button", name="Change my email address").click()
        expect(page.get_by_label("First name")).to_have_value("Sam")
        expect(page.get_by_label("Email address")).to_have_value(email)
        page.get_by_label("I agree that the practice may store").check()
        page.get_by_label("I understand that this form is not for emergencies").check()
        page.get_by_role("button", name="Book consultation").click()
        enter_code(page, emailed_code(live_app, email))
        expect(page.get_by_role("heading", name="received your request")).to_be_visible()
    finally:
        context.close()
