"""The request journey as a first-time client walks it in Chromium, counted: how many
answers it asks for before the code, how tall each page is on a phone (with the crisis
banner and the footer), in English and Spanish, with and without its error messages;
Back at every step; and a refresh after every POST. axe-core (WCAG 2.2 A and AA) and
screenshots at 375 and 1280 px on every step and its error state, in both languages
(test-artifacts/screenshots/journey-<language>-<step>-<width>.png)."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import ConsultationRequest
from tests.browser import check_page as axe_and_screenshots
from tests.test_browser_public import (
    answer_about,
    choose_first_time,
    emailed_code,
    to_time,
)

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 900}
MAX_HEIGHT, MAX_HEIGHT_WITH_ERRORS = 2000, 2600
MAX_REQUIRED = {"eligibility": 4, "time": 1, "about": 5, "check": 2}

WORDS = {
    "en": {"continue": "Continue", "send": "Send my request", "code": "Confirmation code",
           "agree": "I agree that the practice may store",
           "understand": "I understand that this form is not for emergencies",
           "booked": "Your consultation is booked"},
    "es": {"continue": "Continuar", "send": "Enviar mi solicitud",
           "code": "Código de confirmación", "agree": "Acepto que la consulta guarde",
           "understand": "Entiendo que este formulario no es para emergencias",
           "booked": "Su consulta está reservada"},
}


class Walk:
    """What the walk measured: required answers per step, taps, typed fields, heights."""

    def __init__(self, page: Page, language: str, screenshot_dir):
        self.page, self.language, self.screenshot_dir = page, language, screenshot_dir
        self.required: dict[str, int] = {}
        self.heights: dict[str, int] = {}
        self.taps = self.typed = 0

    def measure(self, name: str, *, errors: bool = False) -> None:
        """The page's height at 375 px, then axe and screenshots at both widths."""
        page = self.page
        expect(page.locator("html")).to_have_attribute("lang", self.language)
        page.set_viewport_size(PHONE)
        page.wait_for_load_state("load")
        height = page.evaluate("document.documentElement.scrollHeight")
        self.heights[name + (" (errors)" if errors else "")] = height
        axe_and_screenshots(page, f"{self.language} {name}", lambda width: (
            self.screenshot_dir / f"journey-{self.language}-{name}-{width}.png"))
        page.set_viewport_size(PHONE)

    def required_answers(self, step: str) -> None:
        """Send the step empty: the error summary lists every answer it requires."""
        self.page.get_by_role("button", name=WORDS[self.language]["continue"]
                              if step != "check" else WORDS[self.language]["send"]).click()
        summary = self.page.get_by_role("alert")
        expect(summary).to_be_visible()
        self.required[step] = summary.get_by_role("link").count()
        self.measure(f"{step}-errors", errors=True)

    def tap(self, locator) -> None:
        locator.check() if locator.evaluate("e => e.type") in ("radio", "checkbox") \
            else locator.click()
        self.taps += 1

    def type(self, locator, text: str) -> None:
        locator.fill(text)
        self.typed += 1

    def report(self) -> str:
        lines = [f"journey in {self.language}: {sum(self.required.values())} required answers "
                 f"before the code {self.required}, {self.taps} taps, {self.typed} typed fields"]
        lines += [f"  {name}: {height} px at 375 px" for name, height in self.heights.items()]
        return "\n".join(lines)


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_first_time_client_walks_the_journey_and_it_is_counted(
        browser, base_url, live_app, screenshot_dir, language):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    words = WORDS[language]
    walk = Walk(page, language, screenshot_dir)
    try:
        page.goto(f"{base_url}/?lang={language}")
        page.goto(f"{base_url}/consultation")
        walk.measure("eligibility")
        walk.required_answers("eligibility")
        yes = "Yes" if language == "en" else "Sí"
        for group in page.get_by_role("group").all():
            walk.tap(group.get_by_label(yes, exact=True))
        walk.type(page.locator("#zip_code"), "94110")
        walk.tap(page.get_by_role("button", name=words["continue"]))

        expect(page).to_have_url(re.compile(r"/consultation/time"))
        walk.measure("time")
        walk.required_answers("time")
        walk.tap(page.locator("details.slot-day[open] input[name=slot]").first)
        walk.tap(page.get_by_role("button", name=words["continue"]))

        expect(page).to_have_url(re.compile(r"/consultation/about"))
        walk.measure("about")
        walk.required_answers("about")
        email = f"journey-{secrets.token_hex(4)}@example.com"
        for field, text in (("#first_name", "Rosa"), ("#last_name", "Martinez"),
                            ("#email", email),
                            ("#phone", f"(415) 555-{secrets.randbelow(10000):04d}")):
            walk.type(page.locator(field), text)
        # No therapist here has a video room: phone is said, not asked.
        expect(page.locator("input[type=radio][name=meeting]")).to_have_count(0)
        expect(page.locator("main .statement")).to_be_visible()
        walk.tap(page.get_by_role("button", name=words["continue"]))

        expect(page).to_have_url(re.compile(r"/consultation/check$"))
        walk.measure("check")
        walk.required_answers("check")
        walk.tap(page.get_by_label(words["agree"]))
        walk.tap(page.get_by_label(words["understand"]))
        walk.tap(page.get_by_role("button", name=words["send"]))

        expect(page).to_have_url(re.compile(r"/consultation/verify$"))
        walk.measure("verify")
        code = emailed_code(live_app, email)
        walk.type(page.get_by_label(words["code"]), f"{(int(code) + 1) % 1_000_000:06d}")
        page.get_by_role("button", name=words["send"]).click()
        expect(page.get_by_role("alert")).to_be_visible()
        walk.measure("verify-errors", errors=True)
        walk.type(page.get_by_label(words["code"]), code)
        walk.tap(page.get_by_role("button", name=words["send"]))

        expect(page.get_by_role("heading", name=words["booked"])).to_be_visible()
        walk.measure("confirmation")
        print("\n" + walk.report())
        assert sum(walk.required.values()) <= 12, walk.report()
        for step, most in MAX_REQUIRED.items():
            assert walk.required[step] <= most, walk.report()
        for name, height in walk.heights.items():
            limit = MAX_HEIGHT_WITH_ERRORS if "(errors)" in name else MAX_HEIGHT
            assert height <= limit, f"{name}: {height} px > {limit} px\n{walk.report()}"
    finally:
        context.close()


# -- Back at every step, and refresh after every POST -----------------------------------

def to_step(page: Page, base_url: str, step: str, email: str) -> None:
    """Answer the journey up to ``step`` (which is then on screen, loaded: a Back or a
    reload before the step's own page arrived would test the one before it)."""
    to_time(page, base_url)
    if step == "time":
        return
    choose_first_time(page)
    if step == "about":
        return
    answer_about(page, email, phone="(415) 555-0142", first="Noa", last="Levi")
    if step == "check":
        return
    page.get_by_label("I agree that the practice may store").check()
    page.get_by_label("I understand that this form is not for emergencies").check()
    page.get_by_role("button", name="Send my request").click()
    expect(page).to_have_url(re.compile(r"/consultation/verify$"))


BACK = {  # step on screen -> the step Back shows, and what must still be answered there
    "time": ("/consultation", lambda page: (
        expect(page.get_by_label("Your home ZIP code")).to_have_value("94110"),
        expect(page.get_by_role("group", name="Are you 18 or older?")
               .get_by_label("Yes", exact=True)).to_be_checked())),
    "about": ("/consultation/time", lambda page: expect(
        page.locator("details.slot-day[open] input[name=slot]").first).to_be_checked()),
    "check": ("/consultation/about", lambda page: (
        expect(page.get_by_label("First name")).to_have_value("Noa"),
        expect(page.get_by_label("Phone number")).to_have_value("(415) 555-0142"),
        expect(page.get_by_text("By phone: your therapist will call you")).to_be_visible())),
    "verify": ("/consultation/check", lambda page: (
        expect(page.get_by_text("Noa Levi")).to_be_visible(),
        expect(page.get_by_text("(415) 555-0142")).to_be_visible())),
}


@pytest.mark.parametrize("step", list(BACK))
def test_back_from_each_step_shows_the_step_before_with_its_answers(browser, base_url, step):
    context = browser.new_context()
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    try:
        to_step(page, base_url, step, f"back-{secrets.token_hex(4)}@example.com")
        previous, answered = BACK[step]
        page.go_back()
        expect(page).to_have_url(re.compile(re.escape(previous) + r"(\?.*)?(#.*)?$"))
        answered(page)
        expect(page.get_by_role("alert")).to_have_count(0)
        page.go_forward()  # and Forward: the step again, nothing asked
        expect(page).not_to_have_url(re.compile(re.escape(previous) + r"(\?.*)?$"))
        assert dialogs == []
    finally:
        context.close()


def stored(live_app, email: str) -> int:
    with live_app.app_context():
        return db.session.scalar(select(func.count()).select_from(ConsultationRequest).where(
            ConsultationRequest.email == email))


def test_refresh_after_every_post_resubmits_nothing(browser, base_url, live_app):
    context = browser.new_context()
    page = context.new_page()
    methods, dialogs = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: methods.append(request.method)
            if request.resource_type == "document" else None)
    email = f"refresh-{secrets.token_hex(4)}@example.com"
    try:
        for step in ("time", "about", "check", "verify"):
            page.context.clear_cookies()
            to_step(page, base_url, step, email)
            methods.clear()
            page.reload()
            page.wait_for_load_state("load")
            assert methods == ["GET"], (step, methods)
        assert dialogs == []
        assert stored(live_app, email) == 1  # the one request the last walk sent
    finally:
        context.close()
