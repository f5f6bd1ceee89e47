"""How the public pages sit on a phone and a desktop, in a real Chromium: room
around the page, the footer at the bottom, the time picker folded by day, error
summary links that show the question, tap targets and the small things (favicon,
phone numbers, the email typo button). axe and screenshots as everywhere else."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.browser import WIDTHS
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

PHONE = {"width": 390, "height": 844}  # the phone: the time page is measured here
SPACE_AROUND_PAGE = 24  # px between the crisis banner and the page; main's padding is 1.5rem
SPACE_ABOVE_FOOTER = 48  # px between the last thing on the page and the footer (3rem)


def box(page: Page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


def assert_room_around(page: Page, first: str) -> None:
    """``first`` (the step label, the h1 or the panel) clear of the crisis banner, the
    last thing in main clear of the footer, and the footer at the window's foot."""
    expect(page.locator("body")).to_have_css("display", "flex")  # the stylesheet is applied
    banner = box(page, "aside.crisis")
    top = box(page, first)
    assert top["y"] - (banner["y"] + banner["height"]) >= SPACE_AROUND_PAGE, (first, top, banner)
    last = page.evaluate("""() => { const kids = document.querySelector('main').children;
        const r = kids[kids.length - 1].getBoundingClientRect(); return r.bottom + scrollY }""")
    footer = box(page, "footer.site-footer")
    assert footer["y"] - last >= SPACE_ABOVE_FOOTER
    height = page.evaluate("document.documentElement.scrollHeight")
    viewport = page.viewport_size["height"]
    assert abs(footer["y"] + footer["height"] - max(height, viewport)) < 1  # no band below


def test_every_public_page_has_room_and_a_footer_at_the_bottom(page: Page, base_url, live_app):
    pages = [("/", "main h1"), ("/privacy", "main h1"), ("/nope", "main h1"),
             ("/consultation", "main .step"), ("/consultation/not-eligible", "main h1")]
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for url, first in pages:
            page.goto(base_url + url)
            assert_room_around(page, first)
        to_time(page, base_url)
        assert_room_around(page, "main .step")
    # A short page on a tall window: the footer still ends at the window's foot.
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.goto(base_url + "/nope")
    assert_room_around(page, "main h1")

    # The confirmation panel, after a whole booking.
    page.set_viewport_size({"width": 375, "height": 900})
    email = f"room-{secrets.token_hex(4)}@example.com"
    to_time(page, base_url)
    choose_first_time(page)
    assert_room_around(page, "main .step")
    answer_about(page, email, first="Robin", last="Park")
    assert_room_around(page, "main .step")
    agree_and_send(page)
    assert_room_around(page, "main h1")
    enter_code(page, emailed_code(live_app, email))
    expect(page.get_by_role("heading", name="Your consultation is booked")).to_be_visible()
    assert_room_around(page, "main .panel")


def test_the_time_picker_is_short_on_a_phone(page: Page, base_url, screenshot_dir):
    page.set_viewport_size(PHONE)
    to_time(page, base_url)
    height = page.evaluate("document.documentElement.scrollHeight")
    picker = page.locator("fieldset:has(details.slot-day)").bounding_box()["height"]
    # The page was 5,279 px tall before the times folded, with 34 time buttons before
    # "About you". The time page holds the therapists and the times alone now.
    print(f"\ntime page at 390 px: {height} px tall, time picker {picker:.0f} px")
    assert picker < 1800  # unfolded, the same times take about 3,000 px
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    days = page.locator("details.slot-day")
    assert days.count() > 3
    # The first day with free times is open, and later days are folded.
    assert days.first.get_attribute("open") is not None
    assert days.last.get_attribute("open") is None
    # The first days stay open until they hold 8 times (templates/public/_slots.html),
    # whatever the hour: a late evening leaves today one time and opens tomorrow too.
    folds = page.evaluate("""() => [...document.querySelectorAll('details.slot-day')]
        .map(d => [d.open, d.querySelectorAll('input[name=slot]').length])""")
    before = 0
    for number, (is_open, count) in enumerate(folds):
        assert is_open == (number == 0 or before < 8), folds
        before += count
    visible_times = page.locator("details.slot-day[open] input[name=slot]").count()
    assert 0 < visible_times < 8 + max(count for _, count in folds)
    # Each day's count stays on one line, even on a narrow phone.
    for width in (390, 320):
        page.set_viewport_size({"width": width, "height": 844})
        assert page.evaluate("""() => [...document.querySelectorAll('.slot-count')]
            .every(s => s.getClientRects().length === 1)""")
    page.set_viewport_size(PHONE)

    # A time is a range, and its accessible name says the day too.
    first_day = page.locator("details.slot-day summary").first.inner_text()
    day_name = re.match(r"(\w+day, \w+ \d+)", first_day).group(1)
    first_time = page.locator("details.slot-day[open] label.choice-label").first
    assert re.fullmatch(r"\d{1,2}:\d\d(\s[AP]M)?\u2013\d{1,2}:\d\d\s[AP]M",
                        first_time.evaluate("label => label.firstChild.textContent.trim()"))
    expect(page.get_by_role("radio", name=re.compile(
        rf"^\d{{1,2}}:\d\d.*[AP]M PT, {day_name}$")).first).to_be_visible()

    # A time chosen in a folded day stays in view when the visitor comes back to it.
    later = page.locator("details.slot-later")
    expect(later).not_to_have_attribute("open", "")  # later dates fold into one
    later.locator("> summary").click()
    last_day = days.last
    last_day.locator("summary").click()
    last_day.get_by_role("radio").last.check()
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/consultation/about"))
    page.go_back()
    assert page.locator("details.slot-later").get_attribute("open") is not None
    assert page.locator("details.slot-day").last.get_attribute("open") is not None
    expect(page.locator("details.slot-day").last.get_by_role("radio").last).to_be_checked()
    check_page(page, screenshot_dir, "time-folded-days")


def summary_links_show_their_question(page: Page) -> int:
    links = page.get_by_role("alert").get_by_role("link")
    count = links.count()
    assert count > 0
    for index in range(count):
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        page.get_by_role("alert").scroll_into_view_if_needed()
        link = links.nth(index)
        target = link.get_attribute("href")[1:]
        link.click()
        expect(page.locator(f"#{target}")).to_be_focused()
        # The question: the legend of a group of choices, or else the input's label.
        question = page.evaluate("""(id) => {
            const input = document.getElementById(id);
            const fieldset = input.closest('fieldset');
            const legend = fieldset && fieldset.querySelector('legend');
            const q = legend || document.querySelector('label[for="' + id + '"]');
            const r = q.getBoundingClientRect(), i = input.getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, inputTop: i.top, inputBottom: i.bottom,
                    height: innerHeight} }""", target)
        assert question["top"] >= 0 and question["bottom"] <= question["height"], (target, question)
        assert question["inputTop"] >= 0 and question["inputBottom"] <= question["height"], target
    return count


def test_error_summary_links_land_on_the_question(page: Page, base_url):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 700})
        to_time(page, base_url)
        choose_first_time(page)
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_contain_text("There is a problem")
        texts = page.get_by_role("alert").get_by_role("link").all_inner_texts()
        # Page order: the names first, the phone last (with no video room, how to meet
        # is said, not asked).
        assert texts[0].startswith("Enter your first name")
        assert texts[-1].startswith("Enter your phone number")
        assert summary_links_show_their_question(page) == 4
        page.context.clear_cookies()  # a new visitor: step 1 unanswered
        page.goto(f"{base_url}/consultation")
        page.get_by_role("button", name="Continue").click()
        assert summary_links_show_their_question(page) == 4


def test_without_javascript_a_summary_link_still_reaches_its_field(browser, base_url):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 375, "height": 700})
    page = context.new_page()
    try:
        page.goto(f"{base_url}/consultation")
        page.get_by_role("button", name="Continue").click()
        link = page.get_by_role("alert").get_by_role("link").last
        target = link.get_attribute("href")
        link.click()
        expect(page).to_have_url(re.compile(re.escape(target) + "$"))
        expect(page.locator(target)).to_be_in_viewport()
    finally:
        context.close()


def test_choices_are_big_enough_to_tap(page: Page, base_url):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{base_url}/consultation")
        for question in ("Do you live in California?",
                         "Will you be in California during the consultation?",
                         "Are you 18 or older?"):
            group = page.get_by_role("group", name=question)
            for answer in ("Yes", "No"):
                label = group.locator("label", has_text=re.compile(f"^{answer}$"))
                size = label.bounding_box()
                assert size["width"] >= 44 and size["height"] >= 44, (question, answer, size)
                # The whole row answers: a tap near the label's right edge picks it.
                label.click(position={"x": size["width"] - 3, "y": size["height"] - 3})
                expect(group.get_by_label(answer)).to_be_checked()
        to_time(page, base_url)
        for label in page.locator("label.choice-label").all():
            if label.is_visible():
                size = label.bounding_box()
                assert size["width"] >= 44 and size["height"] >= 44, (label.inner_text(), size)


def test_no_page_asks_for_a_missing_file(page: Page, base_url):
    """The favicon (a 404 and a console error on every page before)."""
    failures = []
    page.on("response", lambda r: failures.append(r.url) if r.status >= 400 else None)
    page.on("console", lambda m: failures.append(m.text) if m.type == "error" else None)
    for url in ("/", "/consultation", "/privacy", "/consultation/not-eligible"):
        page.goto(base_url + url)
        page.wait_for_load_state("networkidle")
    assert failures == []
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert page.request.get(icon).ok and page.request.get(base_url + "/favicon.ico").ok


def test_phone_numbers_never_wrap_inside(page: Page, base_url):
    page.goto(f"{base_url}/consultation/not-eligible")
    for width in (320, 375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        for link in page.locator('main a[href^="tel:"]').all():
            assert link.evaluate("a => a.getClientRects().length") == 1, link.inner_text()


def to_about(page: Page, base_url: str) -> None:
    to_time(page, base_url)
    choose_first_time(page)


def test_the_typo_hint_fixes_the_address_in_one_click(browser, base_url, screenshot_dir):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        to_about(page, base_url)
        page.get_by_label("First name").fill("Casey")
        page.get_by_label("Email address").fill("casey.rivera@gmial.com")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("alert")).to_contain_text("Did you mean casey.rivera@gmail.com?")
        use = page.get_by_role("button", name="Use casey.rivera@gmail.com")
        expect(use).to_be_visible()
    finally:
        context.close()
    # axe and screenshots with the button showing, then one click (with scripts on).
    page = browser.new_page()
    try:
        to_about(page, base_url)
        page.get_by_label("First name").fill("Casey")
        page.get_by_label("Email address").fill("casey.rivera@gmial.com")
        page.get_by_role("button", name="Continue").click()
        check_page(page, screenshot_dir, "about-email-typo")
        page.get_by_role("button", name="Use casey.rivera@gmail.com").click()
        expect(page.get_by_label("Email address")).to_have_value("casey.rivera@gmail.com")
        expect(page.get_by_label("First name")).to_have_value("Casey")
        expect(page.get_by_role("button", name=re.compile("^Use "))).to_have_count(0)
        expect(page.get_by_role("alert")).not_to_contain_text("Did you mean")
    finally:
        page.close()


def test_wrong_method_page(page: Page, base_url, screenshot_dir):
    response = page.request.get(base_url + "/admin/logout")
    assert response.status == 405 and "POST" in response.headers["allow"]
    page.goto(base_url + "/admin/logout")
    expect(page).to_have_title(re.compile("^That can\u2019t be done from this page|^That can't"))
    check_page(page, screenshot_dir, "error-405")
