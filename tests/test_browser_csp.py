"""The strict Content-Security-Policy in a real Chromium: every page's own CSS and
script load, and nothing on any page is refused by the policy."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Page, expect

from portal.extensions import db
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser

PUBLIC_PAGES = ["/", "/consultation", "/consultation/not-eligible", "/nope", "/admin/login"]


def watch_for_violations(page: Page) -> list[str]:
    """Collect CSP refusals as the browser reports them (console and DOM event)."""
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => console.error('Content Security Policy violation: ' + e.violatedDirective));"
    )
    return refused


def assert_own_assets_applied(page: Page) -> None:
    header = page.locator(".site-header")
    expect(header).to_have_css("background-color", "rgb(34, 84, 90)")  # portal.css loaded


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_load_only_their_own_assets(page: Page, base_url, path):
    refused = watch_for_violations(page)
    page.goto(base_url + path)
    assert_own_assets_applied(page)
    assert refused == []


def test_the_script_runs_under_the_policy(page: Page, base_url):
    """portal.js focuses the error summary: proof the script was allowed to run."""
    refused = watch_for_violations(page)
    page.goto(base_url + "/consultation")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_be_focused()
    assert refused == []


def test_back_office_pages_load_only_their_own_assets(page: Page, base_url, live_app):
    email = f"csp-{secrets.token_hex(3)}@example.com"
    with live_app.app_context():
        make_user(email, role="admin")
        db.session.commit()
    refused = watch_for_violations(page)
    page.goto(base_url + "/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    for path in ["/admin/", "/admin/requests", "/admin/therapists", "/admin/outbox",
                 "/admin/audit"]:
        page.goto(base_url + path)
        assert_own_assets_applied(page)
    assert refused == []
