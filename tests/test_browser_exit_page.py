""""Exit this page" in a real Chromium: the button and Shift pressed three times both
replace the page with EXIT_URL (Back skips the portal), the form's answers are
forgotten, and without JavaScript it is a plain link. The neutral site and a page
to start from are stubbed with ``page.route``: no network."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from portal import config
from tests.browser import check_page as axe_and_screenshots

pytestmark = pytest.mark.browser

EXIT_URL = config.EXIT_URL
START_URL = "https://start.example/"


def stub_sites(page: Page) -> None:
    """The neutral site and a page the person came from, answered locally."""
    def answer(route, title):
        route.fulfill(status=200, content_type="text/html",
                      body=f"<!doctype html><html lang=en><title>{title}</title><h1>{title}</h1>")
    page.route(EXIT_URL + "**", lambda route: answer(route, "Weather"))
    page.route(START_URL + "**", lambda route: answer(route, "Search results"))


def exit_button(page: Page):
    return page.get_by_role("button", name="Exit this page")


def open_from_elsewhere(page: Page, url: str) -> int:
    """Arrive at ``url`` from another site, so that Back has somewhere to go; the
    length of the tab's history then."""
    stub_sites(page)
    page.goto(START_URL)
    page.goto(url)
    expect(exit_button(page)).to_be_visible()
    return page.evaluate("history.length")


def assert_left_without_a_trace(page: Page, history_length: int) -> None:
    expect(page).to_have_url(EXIT_URL)
    expect(page.get_by_role("heading", name="Weather")).to_be_visible()
    # replace(): the portal's page is gone from the tab's history, not just behind us.
    assert page.evaluate("history.length") == history_length
    page.go_back()
    expect(page).to_have_url(START_URL)


def test_the_button_replaces_the_page_with_the_neutral_site(page: Page, base_url):
    history_length = open_from_elsewhere(page, f"{base_url}/consultation")
    link = exit_button(page)
    assert link.get_attribute("href") == EXIT_URL
    assert link.get_attribute("rel") == "nofollow noreferrer"
    page.get_by_label("ZIP code").fill("94110")
    link.click()
    assert_left_without_a_trace(page, history_length)


def test_shift_three_times_exits_even_while_typing(page: Page, base_url):
    history_length = open_from_elsewhere(page, f"{base_url}/consultation")
    zip_code = page.get_by_label("ZIP code")
    zip_code.fill("9411")
    status = page.locator("[data-exit-page-status]")
    page.keyboard.press("Shift")
    expect(status).to_have_text("Shift, press 2 more times to exit.")
    expect(page.locator(".exit-page-light-on")).to_have_count(1)
    page.keyboard.press("Shift")
    expect(status).to_have_text("Shift, press 1 more time to exit.")
    expect(page.locator(".exit-page-light-on")).to_have_count(2)
    page.keyboard.press("Shift")
    assert_left_without_a_trace(page, history_length)


def test_shift_held_for_capitals_or_broken_by_other_keys_does_not_exit(page: Page, base_url):
    open_from_elsewhere(page, f"{base_url}/consultation")
    page.get_by_label("ZIP code").focus()
    for _ in range(3):
        page.keyboard.press("Shift+A")  # typing a capital letter
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    page.keyboard.press("B")  # another key starts the count again
    page.keyboard.press("Shift")
    page.wait_for_timeout(300)
    expect(page).to_have_url(f"{page.url.split('/consultation')[0]}/consultation")
    expect(page.locator(".exit-page-light-on")).to_have_count(1)


def test_the_presses_expire_after_five_seconds(page: Page, base_url):
    page.clock.install()
    open_from_elsewhere(page, f"{base_url}/consultation")
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    page.clock.run_for(5001)
    expect(page.locator("[data-exit-page-status]")).to_have_text("Exit this page expired.")
    expect(page.locator(".exit-page-light-on")).to_have_count(0)
    page.keyboard.press("Shift")
    page.wait_for_timeout(300)
    expect(page.locator(".exit-page-light-on")).to_have_count(1)
    assert page.url.endswith("/consultation")


def test_back_after_exiting_finds_the_answers_forgotten(page: Page, base_url):
    history_length = open_from_elsewhere(page, f"{base_url}/consultation")
    page.get_by_label("Your home ZIP code").fill("94110")
    for question in ("Do you live in California?",
                     "Will you be in California during the consultation?",
                     "Are you 18 or older?"):
        page.get_by_role("group", name=question).get_by_label("Yes").check()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{base_url}/consultation/time")
    with page.expect_request(f"{base_url}/exit-this-page"):
        exit_button(page).click()
    expect(page).to_have_url(EXIT_URL)
    # Eligibility, then the time, which the neutral site took the place of.
    assert page.evaluate("history.length") == history_length + 1
    page.go_back()
    expect(page).to_have_url(f"{base_url}/consultation")
    # The eligibility page comes back empty: the session's answers are gone...
    expect(page.get_by_label("Your home ZIP code")).to_have_value("")
    expect(page.get_by_role("radio", checked=True)).to_have_count(0)
    # ...and so is the way to the time page.
    page.goto(f"{base_url}/consultation/time")
    expect(page).to_have_url(f"{base_url}/consultation")


def test_without_javascript_it_is_a_plain_link_that_works(browser: Browser, base_url):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        stub_sites(page)
        page.goto(f"{base_url}/consultation")
        link = exit_button(page)
        assert link.get_attribute("href") == EXIT_URL
        link.click()
        expect(page).to_have_url(EXIT_URL)
        expect(page.get_by_role("heading", name="Weather")).to_be_visible()
    finally:
        context.close()


def test_the_button_sits_top_right_and_covers_nothing(page: Page, base_url, screenshot_dir):
    page.goto(f"{base_url}/consultation")
    axe_and_screenshots(page, "exit-page",
                        lambda width: screenshot_dir / f"public-exit-page-{width}.png")
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        button = exit_button(page).bounding_box()
        assert button["y"] < 80 and button["height"] >= 44, (width, button)
        assert button["x"] + button["width"] >= width - 40, (width, button)  # at the right
        for selector in (".site-name", "main h1", ".crisis p", "main form"):
            box = page.locator(selector).first.bounding_box()
            overlaps = (box["x"] < button["x"] + button["width"]
                        and button["x"] < box["x"] + box["width"]
                        and box["y"] < button["y"] + button["height"]
                        and button["y"] < box["y"] + box["height"])
            assert not overlaps, (width, selector, box, button)
    # While counting, the lights show under the button.
    page.keyboard.press("Shift")
    expect(page.locator(".exit-page-indicator-visible")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "public-exit-page-counting-1280.png"))


def test_the_back_office_has_no_exit_button(page: Page, base_url):
    page.goto(f"{base_url}/admin/login")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(exit_button(page)).to_have_count(0)
