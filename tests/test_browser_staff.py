"""Staff accounts in a real Chromium, second step on: first sign-in sets up the
authenticator (the key read off the page, codes computed as a phone would), an
invite's link, recovery codes, a lock and its reset link, a password change that
ends another browser's session, one answer for every failed sign-in, and a
therapist account linked by create-user. axe-core and screenshots on every new page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages.models import OutboxEmail
from tests.backoffice import totp
from tests.browser import check_page as axe_and_screenshots
from tests.factories import PASSWORD, future_slot, make_request, make_user

pytestmark = pytest.mark.browser
LABELS = {1280: "desktop", 375: "phone"}
NEW_PASSWORD = "a quiet lake at dawn"
FAILURE = "We couldn't sign you in with those details."
WRONG_CODE = "That code didn't work. Try the newest code in your app."
TOKEN = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+')


@pytest.fixture(scope="module")
def staff_app(live_app):
    """The live server with the second step required, and this module's people."""
    live_app.config["REQUIRE_MFA"] = True
    with live_app.app_context():
        for email in ("mfa-admin@example.com", "mfa-locked@example.com",
                      "mfa-changer@example.com", "mfa-recovery@example.com"):
            make_user(email)
        db.session.commit()
    yield live_app
    live_app.config["REQUIRE_MFA"] = False


@pytest.fixture
def context(browser, staff_app):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def check_page(page, name: str, screenshot_dir) -> None:
    axe_and_screenshots(
        page, name, lambda width: screenshot_dir / f"staff-{name}-{LABELS[width]}.png")


def password_step(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/admin/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def enrol(page, screenshot_dir=None) -> tuple[str, list[str]]:
    """On the set-up page: read the key shown as text, enter the app's code, and read
    the recovery codes. Returns both."""
    expect(page.get_by_role("heading", name="Set up your second step")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    if screenshot_dir:
        check_page(page, "enrol", screenshot_dir)
    page.get_by_label("6-digit code").fill(totp(secret))
    page.get_by_role("button", name="Turn on the second step").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    if screenshot_dir:
        check_page(page, "recovery-codes", screenshot_dir)
    page.get_by_role("link", name="I've saved them: continue").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return secret, codes


def code_step(page, code: str) -> None:
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("6-digit code from your authenticator app").fill(code)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the back office")).to_be_visible()


def newest_link(app, kind: str, recipient: str) -> str:
    """The link in the newest email of ``kind`` to ``recipient``, made relative."""
    with app.app_context():
        body = db.session.scalars(select(OutboxEmail.body_text).where(
            OutboxEmail.kind == kind, OutboxEmail.recipient == recipient)
            .order_by(OutboxEmail.id.desc())).first()
    return re.search(r"https://portal\.example\.com(/admin/password/set/\S+)", body).group(1)


def test_enrol_then_sign_in_with_a_code_and_invite_someone(context, base_url, staff_app,
                                                          screenshot_dir):
    page = context.new_page()
    password_step(page, base_url, "mfa-admin@example.com")
    secret, _ = enrol(page, screenshot_dir)
    sign_out(page)
    password_step(page, base_url, "mfa-admin@example.com")
    check_page(page, "code", screenshot_dir)
    code_step(page, totp(secret, 1))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # Invite a new therapist: they get an email, not a password.
    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Invite a user").click()
    check_page(page, "invite", screenshot_dir)
    page.get_by_label("Email address").fill("invited@example.com")
    page.get_by_label("Role").select_option("therapist")
    with staff_app.app_context():
        therapist = db.session.scalars(select(Therapist).order_by(Therapist.id)).first()
        therapist_name = therapist.name
    page.get_by_label("Linked therapist").select_option(label=therapist_name)
    page.get_by_role("button", name="Send invite").click()
    expect(page.get_by_role("status")).to_contain_text("emailed invited@example.com")
    expect(page.get_by_role("cell", name="Invited", exact=True)).to_be_visible()
    check_page(page, "users", screenshot_dir)

    newcomer = context.browser.new_context().new_page()
    newcomer.goto(base_url + newest_link(staff_app, "staff_invite", "invited@example.com"))
    expect(newcomer.get_by_role("heading", name="Choose your password")).to_be_visible()
    check_page(newcomer, "set-password", screenshot_dir)
    newcomer.get_by_label("New password").fill("password")
    newcomer.get_by_role("button", name="Save password").click()
    expect(newcomer.get_by_role("alert")).to_contain_text("at least 12 characters")
    newcomer.get_by_label("New password").fill(NEW_PASSWORD)
    newcomer.get_by_role("button", name="Save password").click()
    expect(newcomer.get_by_role("status")).to_contain_text("Your password is set")
    password_step(newcomer, base_url, "invited@example.com", NEW_PASSWORD)
    enrol(newcomer)
    newcomer.context.close()


def test_a_recovery_code_works_once_and_a_code_only_once(context, base_url, staff_app):
    page = context.new_page()
    password_step(page, base_url, "mfa-recovery@example.com")
    secret, codes = enrol(page)
    sign_out(page)
    code = totp(secret, 1)
    for used in (codes[0], code):  # each works once; then the code step asks again
        password_step(page, base_url, "mfa-recovery@example.com")
        code_step(page, used)
        expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
        sign_out(page)
        password_step(page, base_url, "mfa-recovery@example.com")
        code_step(page, used)
        expect(page.get_by_role("alert")).to_contain_text(WRONG_CODE)
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()


def test_lock_then_the_emailed_reset_then_sign_in(context, base_url, staff_app,
                                                   screenshot_dir):
    page = context.new_page()
    password_step(page, base_url, "mfa-locked@example.com")
    secret, _ = enrol(page)
    sign_out(page)
    for _ in range(staff_app.config["LOGIN_MAX_FAILURES"]):
        password_step(page, base_url, "mfa-locked@example.com", "not the password at all")
        expect(page.get_by_role("alert")).to_contain_text(FAILURE)
    # The right password now gets the very same answer: the lock is not announced here.
    password_step(page, base_url, "mfa-locked@example.com")
    expect(page.get_by_role("alert")).to_contain_text(FAILURE)
    expect(page.get_by_text("locked")).to_have_count(0)

    page.goto(base_url + newest_link(staff_app, "staff_locked", "mfa-locked@example.com"))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Save password").click()
    password_step(page, base_url, "mfa-locked@example.com", NEW_PASSWORD)
    code_step(page, totp(secret, 1))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_forgot_password_and_the_same_answer_for_everyone(context, base_url, staff_app,
                                                          screenshot_dir):
    page = context.new_page()
    page.goto(f"{base_url}/admin/login")
    page.get_by_role("link", name="Forgot your password?").click()
    check_page(page, "forgot", screenshot_dir)
    page.get_by_label("Email address").fill("nobody-here@example.com")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    check_page(page, "forgot-sent", screenshot_dir)
    unknown = page.locator("main").inner_html()

    page.goto(f"{base_url}/admin/password/forgot")
    page.get_by_label("Email address").fill("mfa-admin@example.com")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    assert page.locator("main").inner_html() == unknown

    answers = []
    for email, password in (("nobody-here@example.com", PASSWORD),
                            ("mfa-admin@example.com", "not the password at all")):
        password_step(page, base_url, email, password)
        answers.append(TOKEN.sub(r"\1TOKEN", page.locator("main").inner_html()))
    assert answers[0] == answers[1]
    check_page(page, "login-failed", screenshot_dir)

    page.goto(base_url + "/admin/password/set/made-up")
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    check_page(page, "link-invalid", screenshot_dir)


def test_password_change_ends_the_other_browsers_session(browser, context, base_url,
                                                         staff_app, screenshot_dir):
    page = context.new_page()
    password_step(page, base_url, "mfa-changer@example.com")
    enrol(page)
    other = browser.new_context()
    other.add_cookies(context.cookies())  # the same session, carried to another browser
    elsewhere = other.new_page()
    elsewhere.goto(f"{base_url}/admin/")
    expect(elsewhere.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.get_by_role("link", name="Your password").click()
    check_page(page, "change-password", screenshot_dir)
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("signed out everywhere else")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    elsewhere.goto(f"{base_url}/admin/")
    expect(elsewhere.get_by_role("heading", name="Sign in to the back office")).to_be_visible()
    other.close()


def test_a_therapist_linked_by_create_user_sees_their_requests(context, base_url, staff_app,
                                                               monkeypatch, screenshot_dir):
    with staff_app.app_context():
        mine, theirs = db.session.scalars(select(Therapist).order_by(Therapist.id)).all()[:2]
        # Days and hours no other browser test books (the live database is shared).
        own = make_request(mine, future_slot(days=15, hour_utc=21), first_name="Harper",
                           last_name="Linked")
        other = make_request(theirs, future_slot(days=16, hour_utc=21), first_name="Rowan",
                             last_name="Else")
        db.session.commit()
        email, own_id, other_id = mine.email, own.id, other.id
    monkeypatch.setenv("PORTAL_PASSWORD", NEW_PASSWORD)
    result = staff_app.test_cli_runner().invoke(args=["create-user", email.upper(),
                                                      "--role", "therapist"])
    assert "Linked to therapist" in result.output and "same email" in result.output

    page = context.new_page()
    password_step(page, base_url, email, NEW_PASSWORD)
    enrol(page)
    page.goto(f"{base_url}/admin/requests/{own_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Harper Linked")
    page.goto(f"{base_url}/admin/requests/{other_id}")
    expect(page.get_by_role("heading", name="This request isn't assigned to you")).to_be_visible()
    expect(page.get_by_text("Rowan")).to_have_count(0)
    check_page(page, "not-yours", screenshot_dir)
