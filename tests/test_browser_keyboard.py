"""A consultation booked from the landing page with the keyboard alone, in Chromium:
Tab, Shift+Tab, Space, Enter and the arrow keys, nothing else (typing the answers
aside). Each step's controls must be reachable in order and work from the keyboard."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect

from tests.test_browser_public import emailed_code

pytestmark = pytest.mark.browser

MAX_TABS = 80


def focused(page: Page, selector: str) -> bool:
    return page.evaluate("s => document.activeElement && document.activeElement.matches(s)",
                         selector)


def tab_to(page: Page, selector: str, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the element matching ``selector`` has the focus."""
    for _ in range(MAX_TABS):
        if focused(page, selector):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{selector} never took the focus with the keyboard")


def type_into(page: Page, selector: str, text: str) -> None:
    tab_to(page, selector)
    page.keyboard.type(text)


def test_a_consultation_is_booked_with_the_keyboard_alone(page: Page, base_url, live_app):
    page.goto(f"{base_url}/")
    tab_to(page, 'main a[href="/consultation"]')
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base_url}/consultation")

    # Radios: Tab into the group, Space to choose, arrows to change the answer.
    tab_to(page, "input[name=ca_resident]")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    expect(page.locator("input[name=ca_resident][value=no]")).to_be_checked()
    page.keyboard.press("ArrowLeft")
    expect(page.locator("input[name=ca_resident][value=yes]")).to_be_checked()
    type_into(page, "#zip_code", "94110")
    tab_to(page, "input[name=in_california]")
    page.keyboard.press("Space")
    tab_to(page, "input[name=adult]")
    page.keyboard.press("Space")
    # Shift+Tab goes back: the ZIP is still there, then on to Continue.
    tab_to(page, "#zip_code", backwards=True)
    expect(page.locator("#zip_code")).to_have_value("94110")
    tab_to(page, "main button[type=submit]")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/consultation/time"))
    tab_to(page, "input[name=slot]")
    page.keyboard.press("Space")
    expect(page.locator("input[name=slot]:checked")).to_have_count(1)
    tab_to(page, "#times button[type=submit]")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/consultation/about"))
    email = f"keys-{secrets.token_hex(4)}@example.com"
    type_into(page, "#first_name", "Kai")
    type_into(page, "#last_name", "Tanaka")
    type_into(page, "#email", email)
    type_into(page, "#phone", f"415 555 {secrets.randbelow(10000):04d}")
    # Phone is the only way to meet (no video room here): a statement, nothing to choose.
    expect(page.locator("input[type=radio][name=meeting]")).to_have_count(0)
    tab_to(page, "main form button[type=submit]:not(.visually-hidden)")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/consultation/check$"))
    tab_to(page, "#consent_privacy")
    page.keyboard.press("Space")
    tab_to(page, "#ack_not_emergency")
    page.keyboard.press("Space")
    tab_to(page, "main form button[type=submit]")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/consultation/verify$"))
    type_into(page, "#code", emailed_code(live_app, email))
    page.keyboard.press("Enter")  # Enter in the code box sends the form's first button
    expect(page.get_by_role("heading", name="Your consultation is booked")).to_be_visible()
