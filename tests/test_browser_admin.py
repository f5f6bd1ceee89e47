"""The back office in a real Chromium: sign in, filter, open a request, change its
status and add a note; axe-core on each page; screenshots at desktop and phone widths."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.booking.therapists import Therapist
from portal.extensions import db
from tests.browser import check_page as axe_and_screenshots
from tests.factories import PASSWORD, future_slot, make_request, make_user

pytestmark = pytest.mark.browser
LABELS = {1280: "desktop", 375: "phone"}  # the screenshots' names


@pytest.fixture(scope="module")
def back_office(live_app):
    with live_app.app_context():
        therapist = db.session.query(Therapist).order_by(Therapist.id).first()
        make_user("browser-admin@example.com")
        for n in range(3):
            make_request(therapist, future_slot(days=6 + n), first_name="Avery",
                         last_name=f"Browser{n}", email=f"avery{n}@example.com")
        make_request(first_name="Quinn", last_name="Other", email="quinn@example.com")
        make_request(therapist, future_slot(days=9), first_name="Wren", last_name="Longaddress",
                     email="wren.longaddress.with.many.parts.for-testing@clinic-example-mail.com",
                     interests="kap,depression,trauma,anxiety,other")
        db.session.commit()
    return live_app


@pytest.fixture
def admin_page(browser, base_url, back_office):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}/admin/login")
    page.get_by_label("Email address").fill("browser-admin@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    yield page
    context.close()


def check_page(page, name: str, screenshot_dir) -> None:
    """No axe violations at 1280 and 375 px; screenshots admin-<name>-<desktop|phone>.png."""
    axe_and_screenshots(
        page, name, lambda width: screenshot_dir / f"admin-{name}-{LABELS[width]}.png")


def test_login_page_is_accessible(browser, base_url, back_office, screenshot_dir):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base_url}/admin/login")
    check_page(page, "login", screenshot_dir)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter your email address")
    context.close()


def test_work_a_request_from_the_list(admin_page, base_url, screenshot_dir):
    page = admin_page
    check_page(page, "dashboard", screenshot_dir)
    page.get_by_role("link", name="Requests").click()
    page.get_by_label("Name, email, phone or reference").fill("avery")
    page.get_by_label("Status").select_option("new")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("1–3 of 3")).to_have_count(2)
    expect(page.get_by_role("link", name="Quinn Other")).to_have_count(0)
    check_page(page, "requests", screenshot_dir)

    page.get_by_role("link", name="Avery Browser0").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Avery Browser0")
    check_page(page, "request-detail", screenshot_dir)
    page.get_by_label("New status").select_option("contacted")
    page.get_by_label("Note (optional)").fill("Called, will ring back Tuesday.")
    page.get_by_role("button", name="Save status").click()
    expect(page.get_by_role("status")).to_contain_text("Contacted")
    page.get_by_label("Internal note", exact=True).fill("Prefers mornings.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator(".notes")).to_contain_text("Called, will ring back Tuesday.")
    expect(page.locator(".notes")).to_contain_text("Prefers mornings.")
    # Two changes, one visit: the history says what changed, in words.
    history = page.locator(".history")
    expect(history).to_contain_text("Status changed (new \u2192 contacted)")
    expect(history.get_by_text("Viewed")).to_have_count(1)
    page.screenshot(path=str(screenshot_dir / "admin-request-detail-history-desktop.png"),
                    full_page=True)

    page.get_by_role("link", name="Therapists").click()
    expect(page.get_by_role("heading", name="Therapists")).to_be_visible()
    check_page(page, "therapists", screenshot_dir)


@pytest.mark.parametrize("width", [1280, 1440])
def test_a_long_email_stays_inside_the_client_card(admin_page, base_url, screenshot_dir,
                                                   width):
    page = admin_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{base_url}/admin/requests?q=wren")
    page.get_by_role("link", name="Wren Longaddress").click()
    card = page.locator("section.card", has=page.locator("#client-title"))
    box = card.bounding_box()
    for value in card.locator("dd").all():
        inner = value.bounding_box()
        assert inner["x"] + inner["width"] <= box["x"] + box["width"] + 0.5, value.inner_text()
        scroll, client = value.evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert scroll <= client, value.inner_text()
    page.screenshot(path=str(screenshot_dir / f"admin-request-long-email-{width}.png"),
                    full_page=True)


def test_a_missing_request_keeps_the_back_office(admin_page, base_url, screenshot_dir):
    page = admin_page
    page.goto(f"{base_url}/admin/requests/999999")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.get_by_role("navigation", name="Back office")).to_be_visible()
    check_page(page, "not-found", screenshot_dir)
    page.get_by_role("link", name="Go to the requests").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Consultation requests")
