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
from portal.messages.models import OutboxEmail
from portal.models import ConsultationRequest
from tests.browser import check_page as axe_and_screenshots

pytestmark = pytest.mark.browser



def check_page(page: Page, screenshot_dir, name: str) -> None:
    """No axe violations at 1280 and 375 px; screenshots public-<name>-<width>.png."""
    axe_and_screenshots(page, name, lambda width: screenshot_dir / f"public-{name}-{width}.png")


def answer_eligibility(page: Page, base_url: str, *, zip_code: str = "94110",
                       resident: str = "Yes", present: str = "Yes", adult: str = "Yes",
                       go: bool = True) -> None:
    """Step 1: four answers, then Continue."""
    if go:
        page.goto(f"{base_url}/consultation")
    page.get_by_role("group", name="Do you live in California?") \
        .get_by_label(resident, exact=True).check()
    page.get_by_label("Your home ZIP code").fill(zip_code)
    page.get_by_role("group", name="Will you be in California during the consultation?") \
        .get_by_label(present, exact=True).check()
    page.get_by_role("group", name="Are you 18 or older?").get_by_label(adult, exact=True).check()
    page.get_by_role("button", name="Continue").click()


def to_time(page: Page, base_url: str) -> None:
    """Through step 1 to the time page, loaded with its stylesheet: what a test then
    measures is the page as laid out, not as it was when the URL changed."""
    answer_eligibility(page, base_url)
    expect(page).to_have_url(re.compile(r"/consultation/time"))
    page.wait_for_load_state("load")


def choose_first_time(page: Page) -> None:
    page.locator("details.slot-day[open] input[name=slot]").first.check()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/consultation/about"))


def answer_about(page: Page, email: str, *, phone: str | None = None,
                 first: str = "Casey", last: str = "Rivera", video: bool = False) -> None:
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Phone number").fill(phone or f"(415) 555-{secrets.randbelow(10000):04d}")
    meeting = page.get_by_role("group", name="How would you like to meet?")
    if video or meeting.count():
        meeting.get_by_label("By video" if video else "By phone").check()
    else:  # no video room: phone is said, not asked
        expect(page.get_by_text("By phone: your therapist will call you")).to_be_visible()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/consultation/check"))


def agree_and_send(page: Page) -> None:
    page.get_by_label("I agree that the practice may store").check()
    page.get_by_label("I understand that this form is not for emergencies").check()
    page.get_by_role("button", name="Send my request").click()


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
    answer_eligibility(page, base_url, zip_code="97201", resident="No", present="No")
    expect(page).to_have_url(f"{base_url}/consultation/not-eligible?reason=other-state")
    expect(page.get_by_text("You told us you live in Oregon")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("people in California")
    check_page(page, screenshot_dir, "not-eligible")
    page.get_by_role("link", name="Change my answers").click()
    expect(page.get_by_label("Your home ZIP code")).to_have_value("97201")
    page.get_by_role("link", name="Privacy notice").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Privacy notice")
    check_page(page, screenshot_dir, "privacy")
    page.get_by_role("link", name="Accessibility").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accessibility statement")
    expect(page.get_by_text("WCAG) version 2.2 at level AA")).to_be_visible()
    check_page(page, screenshot_dir, "accessibility")


def test_book_with_an_error_round_trip_then_reschedule_and_cancel(
        page: Page, base_url, live_app, screenshot_dir):
    to_time(page, base_url)
    page.get_by_role("button", name="Continue").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    expect(page).to_have_title(re.compile(r"^Error: "))
    check_page(page, screenshot_dir, "time-errors")
    choose_first_time(page)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("First name")).to_have_attribute("aria-invalid", "true")
    check_page(page, screenshot_dir, "about-errors")

    email = f"walk-{secrets.token_hex(4)}@example.com"
    answer_about(page, email)
    check_page(page, screenshot_dir, "check")
    agree_and_send(page)

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
    expect(page.get_by_text(re.compile(r"will call you at \(415\) 555-\d{4} on "))).to_be_visible()
    assert email not in page.content()
    check_page(page, screenshot_dir, "confirmation")
    page.get_by_role("link", name="Answer a few questions").click()
    page.get_by_role("group", name="May we send you text messages? (optional)") \
        .get_by_label("No", exact=True).check()
    page.get_by_role("button", name="Save my answers").click()
    expect(page.get_by_text("Thank you. Your therapist will read your answers")).to_be_visible()

    page.goto(base_url + manage_url_for(live_app, page.url.split("#")[0]))
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
    expect(page.get_by_text("Your consultation has been canceled")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel my consultation")).to_have_count(0)


def test_the_whole_request_works_without_javascript(browser, base_url, live_app):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        answer_eligibility(page, base_url, zip_code="94110-1234")
        # A therapist chosen: the page comes back at the times, that therapist's.
        choice = page.get_by_label("Who would you like to see?")
        choice.select_option(label=page.locator("#therapist-choice option",
                                                has_text="Daniel Okafor").inner_text().strip())
        page.get_by_role("button", name="Show times").click()
        expect(page).to_have_url(re.compile(r"/consultation/time\?therapist=\d+#times$"))
        expect(page.get_by_text("Showing free times for Daniel Okafor")).to_be_visible()
        expect(page.locator("#therapist-choice option:checked")).to_contain_text("Daniel Okafor")
        expect(page.get_by_role("alert")).to_have_count(0)
        page.get_by_label("None of these times work").check()
        page.get_by_label("Email me if an earlier time opens").check()
        page.get_by_role("button", name="Continue").click()
        email = f"nojs-{secrets.token_hex(4)}@example.com"
        answer_about(page, email, first="Sam", last="Lee",
                     phone=f"415 555 {secrets.randbelow(10000):04d}")
        agree_and_send(page)
        expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
        # "Change my email address" goes back with every answer kept, then to the check.
        page.get_by_role("button", name="Change my email address").click()
        expect(page.get_by_label("First name")).to_have_value("Sam")
        expect(page.get_by_label("Email address")).to_have_value(email)
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(re.compile(r"/consultation/check$"))
        agree_and_send(page)
        enter_code(page, emailed_code(live_app, email))
        expect(page.get_by_role("heading", name="received your request")).to_be_visible()
    finally:
        context.close()
