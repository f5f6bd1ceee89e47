"""Staff accounts by email: the lock's email with its reset link, invites, "Forgot
your password?", links that work once and die with any password change, changing
one's own password, the password rules, therapist accounts linked at creation,
and what admins see on the users page."""

from __future__ import annotations

import html
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages import outbox
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent
from portal.staff.accounts import find_user, password_matches
from portal.staff.models import User
from portal.staff.password_policy import common_passwords
from tests.backoffice import (
    audit_actions,
    enrol,
    make_cast,
    post_form,
    sign_in,
    totp,
    wait_for_lock_waiters,
)
from tests.conftest import clear_database, mail_app_config, make_app
from tests.factories import PASSWORD, make_therapist, make_user

app_config = mail_app_config  # the SMTP fixture's address, plus a test's own
LINK = re.compile(r"https://portal\.example\.com(/admin/password/set/[A-Za-z0-9_.\-]+)")
NEW_PASSWORD = "a quiet lake at dawn"


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def deliver(app) -> None:
    """Send the outbox through the real SMTP server."""
    with app.app_context():
        outbox.deliver_due()


def staff_emails(app) -> list[OutboxEmail]:
    with app.app_context():
        rows = db.session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
        db.session.expunge_all()
        return rows


def link_in(text: str) -> str:
    return LINK.search(text).group(1)


# -- the lock, told to the owner -------------------------------------------------------

def test_lock_emails_the_owner_a_reset_link_that_gets_them_back_in(app, client, cast,
                                                                   smtp_server):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        sign_in(client, cast.admin_email, "not the password at all")
    assert not signed_in(client)
    deliver(app)
    [message] = smtp_server.messages
    assert message["To"] == cast.admin_email
    assert message["Subject"] == "Your back-office account was locked"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "locked" in text and " PT" in text and PASSWORD not in text
    url = link_in(text)
    assert url in html
    assert [e.request_id for e in staff_emails(app)] == [None]

    form = client.get(url)
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert 'autocomplete="new-password"' in page and 'autocomplete="username"' in page
    response = client.post(url, data={"new_password": NEW_PASSWORD})
    assert response.headers["Location"] == "/admin/login"
    assert sign_in(client, cast.admin_email, NEW_PASSWORD).status_code == 302
    assert signed_in(client)
    assert audit_actions(app)[-2:] == ["auth.password_set", "auth.login"]
    # Used once, it is dead.
    assert client.get(url).status_code == 410


@pytest.mark.parametrize("app_config", [{"REQUIRE_MFA": True}], indirect=True)
def test_lock_reset_keeps_the_second_step(app, client, cast, smtp_server):
    secret, _ = enrol(client, cast.admin_email)
    client.post("/admin/logout")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        sign_in(client, cast.admin_email, "not the password at all")
    deliver(app)
    url = link_in(smtp_server.messages[0].get_body(("plain",)).get_content())
    client.post(url, data={"new_password": NEW_PASSWORD})
    # A new password is not a way around the code.
    assert sign_in(client, cast.admin_email, NEW_PASSWORD).headers["Location"] == \
        "/admin/login/code"
    assert client.post("/admin/login/code", data={"code": totp(secret, 1)}).status_code == 302
    assert signed_in(client)


# -- invites -----------------------------------------------------------------------------

@pytest.mark.parametrize("app_config", [{"REQUIRE_MFA": True}], indirect=True)
def test_invite_then_set_password_then_enrol(app, client, cast, smtp_server):
    admin = client
    enrol(admin, cast.admin_email)
    response = admin.post("/admin/users/new", data={
        "email": "Newcomer@Example.com", "role": "therapist",
        "therapist_id": cast.therapist_id, "active": "y"})
    assert response.status_code == 302
    assert "emailed newcomer@example.com" in admin.get("/admin/users").get_data(as_text=True)
    with app.app_context():
        user = find_user("newcomer@example.com")
        assert user.therapist_id == cast.therapist_id
    newcomer = app.test_client()
    # No password yet: nothing signs in (not even the marker stored in its place),
    # and the failure looks like any other.
    with app.app_context():
        marker = find_user("newcomer@example.com").password_hash
    for guess in ("a long enough guess", marker):
        page = sign_in(newcomer, "newcomer@example.com", guess).get_data(as_text=True)
        assert "couldn&#39;t sign you in" in page
    assert not signed_in(newcomer)
    deliver(app)
    [message] = smtp_server.messages
    assert message["To"] == "newcomer@example.com"
    assert message["Subject"] == "Your back-office account"
    text = message.get_body(("plain",)).get_content()
    assert "48 hours" in text and "admin@example.com" in text
    url = link_in(text)
    page = newcomer.get(url).get_data(as_text=True)
    assert "Choose your password" in page and "newcomer@example.com" in page
    weak = newcomer.post(url, data={"new_password": "short"})
    assert weak.status_code == 200 and "at least 12 characters" in weak.get_data(as_text=True)
    assert newcomer.post(url, data={"new_password": NEW_PASSWORD}).status_code == 302
    assert newcomer.get(url).status_code == 410  # once only
    secret, codes = enrol(newcomer, "newcomer@example.com", NEW_PASSWORD)
    assert signed_in(newcomer) and len(codes) == 10
    assert audit_actions(app).count("user_invited") == 1
    assert "auth.password_set" in audit_actions(app)


def selected_role(page: str) -> str | None:
    select = re.search(r'<select[^>]*name="role"[^>]*>(.*?)</select>', page, re.S).group(1)
    found = re.search(r'<option selected value="([^"]*)"', select)
    return found.group(1) if found else None


def users_named(app, email: str) -> list[User]:
    with app.app_context():
        rows = db.session.scalars(select(User).where(User.email == email)).all()
        db.session.expunge_all()
        return rows


def test_an_invite_has_no_default_role(app, admin, cast):
    page = admin.get("/admin/users/new").get_data(as_text=True)
    assert selected_role(page) in (None, "")
    label = re.search(r'<label for="role">(.*?)</label>', page, re.S).group(1)
    assert "optional" not in label
    assert "sees every client" in page  # what each role means, before choosing
    response = admin.post("/admin/users/new", data={
        "email": "someone@example.com", "therapist_id": 0, "active": "y"})
    assert response.status_code == 200
    assert "Choose a role." in html.unescape(response.get_data(as_text=True))
    assert users_named(app, "someone@example.com") == []


def test_a_therapists_email_suggests_the_therapist_role(app, admin, cast):
    with app.app_context():
        therapist = db.session.get(Therapist, cast.therapist_id)
        email, name = therapist.email, therapist.name
    response = admin.post("/admin/users/new", data={
        "email": email.upper(), "therapist_id": 0, "active": "y"})
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200 and users_named(app, email) == []
    assert f"This is the email of {name}, a therapist" in page
    assert selected_role(page) == "therapist"
    linked = re.search(r'<select[^>]*name="therapist_id"[^>]*>(.*?)</select>', page, re.S)
    assert f'<option selected value="{cast.therapist_id}"' in linked.group(1)
    # Sent again as suggested: a therapist account, linked to them.
    assert admin.post("/admin/users/new", data={
        "email": email, "role": "therapist", "therapist_id": cast.therapist_id,
        "active": "y"}).status_code == 302
    [user] = users_named(app, email)
    assert (user.role, user.therapist_id) == ("therapist", cast.therapist_id)


def test_an_admin_linked_to_a_therapist_is_confirmed_explicitly(app, admin, cast):
    data = {"email": "owner@example.com", "role": "admin",
            "therapist_id": cast.therapist_id, "active": "y"}
    refused = admin.post("/admin/users/new", data=data)
    page = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 200 and users_named(app, "owner@example.com") == []
    assert "Tick the box to confirm, or choose Therapist" in page
    assert 'name="confirm_admin"' in page
    assert admin.post("/admin/users/new", data={**data, "confirm_admin": "y"}).status_code == 302
    [user] = users_named(app, "owner@example.com")
    assert (user.role, user.therapist_id) == ("admin", cast.therapist_id)
    # An admin linked to no therapist needs no more than choosing Admin.
    assert admin.post("/admin/users/new", data={
        "email": "office@example.com", "role": "admin", "therapist_id": 0,
        "active": "y"}).status_code == 302


def test_links_expire(app, cast):
    with app.app_context():
        from portal.staff.tokens import make_token

        user = find_user(cast.own_email)
        invite, reset = make_token(user, "invite"), make_token(user, "reset")
    client = app.test_client()
    assert client.get(f"/admin/password/set/{invite}").status_code == 200
    with time_machine.travel(timedelta(minutes=31), tick=False):
        assert client.get(f"/admin/password/set/{reset}").status_code == 410
        assert client.get(f"/admin/password/set/{invite}").status_code == 200
    with time_machine.travel(timedelta(hours=48, minutes=1), tick=False):
        assert client.get(f"/admin/password/set/{invite}").status_code == 410
    # A made-up or tampered link is refused the same way, and a POST changes nothing.
    assert client.post(f"/admin/password/set/{reset}x",
                       data={"new_password": NEW_PASSWORD}).status_code == 410


def test_a_link_dies_when_the_password_changes_any_other_way(app, client, cast):
    with app.app_context():
        from portal.staff.tokens import make_token

        url = f"/admin/password/set/{make_token(find_user(cast.admin_email), 'reset')}"
    sign_in(client, cast.admin_email)
    assert post_form(client, "/admin/account/password", {
        "current_password": PASSWORD, "new_password": NEW_PASSWORD}).status_code == 302
    assert app.test_client().get(url).status_code == 410


@pytest.fixture
def postgres_app(postgres_url):
    """The app on PostgreSQL whatever the test's parameters."""
    app = make_app(postgres_url)
    yield app
    clear_database(app)


@pytest.mark.slow
@pytest.mark.postgres
def test_one_link_posted_by_three_browsers_at_once_sets_one_password(postgres_app):
    """Three posts of one reset link while another transaction holds the user's row:
    each has read the link as unused; exactly one sets a password, the others find
    the link dead."""
    import psycopg

    from portal.staff.tokens import make_token

    app = postgres_app
    with app.app_context():
        user = make_user("admin@example.com")
        db.session.commit()
        user_id, url = user.id, f"/admin/password/set/{make_token(user, 'reset')}"
    passwords = [f"{word} quiet lake at dawn" for word in ("first", "second", "third")]
    browsers = [app.test_client() for _ in passwords]
    database = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://",
                                                             "postgresql://")
    with psycopg.connect(database) as holder, \
            psycopg.connect(database, autocommit=True) as watcher, \
            ThreadPoolExecutor(len(browsers)) as pool:
        holder.execute('SELECT id FROM "user" WHERE id = %s FOR UPDATE', (user_id,))
        posts = [pool.submit(browser.post, url, data={"new_password": password})
                 for browser, password in zip(browsers, passwords, strict=True)]
        wait_for_lock_waiters(watcher, len(browsers))
        holder.rollback()
        responses = [post.result(timeout=60) for post in posts]
    assert sorted(r.status_code for r in responses) == [302, 410, 410]
    assert audit_actions(app).count("auth.password_set") == 1
    [winner] = [p for p, r in zip(passwords, responses, strict=True) if r.status_code == 302]
    assert sign_in(app.test_client(), "admin@example.com", winner).status_code == 302


# -- forgot your password ------------------------------------------------------------------

def test_forgot_password_says_the_same_for_any_address(app, client, cast, smtp_server):
    login = client.get("/admin/login").get_data(as_text=True)
    assert 'href="/admin/password/forgot"' in login and "Forgot your password?" in login
    known = client.post("/admin/password/forgot", data={"email": cast.own_email})
    unknown = app.test_client().post("/admin/password/forgot",
                                     data={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert "If that address has a back-office account" in known.get_data(as_text=True)
    assert [(e.kind, e.recipient) for e in staff_emails(app)] == [
        ("staff_reset", cast.own_email)]
    deliver(app)
    [message] = smtp_server.messages
    text = message.get_body(("plain",)).get_content()
    assert "30 minutes" in text
    url = link_in(text)
    assert client.post(url, data={"new_password": NEW_PASSWORD}).status_code == 302
    assert sign_in(client, cast.own_email, NEW_PASSWORD).status_code == 302
    assert "auth.reset_requested" in audit_actions(app)
    assert "auth.reset_unknown_address" in audit_actions(app)
    with app.app_context():
        assert not db.session.scalar(select(AuditEvent.id).where(
            AuditEvent.detail.contains("nobody@example.com")))


def test_forgot_password_does_the_same_work_for_any_address(app, cast):
    """A known address must not answer slower than an unknown one: both make the
    email (both parts rendered), write one audit row and commit; only the account's
    email is queued. Compared by what runs, not by a stopwatch."""
    from flask import template_rendered
    from sqlalchemy import event

    def work_for(email: str) -> tuple[list[str], list[str]]:
        templates, statements = [], []

        def rendered(sender, template, context, **extra):
            templates.append(template.name)

        def executed(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement.split()[0].upper())

        with app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", executed)
        template_rendered.connect(rendered, app)
        try:
            response = app.test_client().post("/admin/password/forgot", data={"email": email})
        finally:
            template_rendered.disconnect(rendered, app)
            event.remove(engine, "before_cursor_execute", executed)
        assert response.status_code == 200
        return templates, statements

    known_templates, known_statements = work_for(cast.own_email)
    unknown_templates, unknown_statements = work_for("nobody@example.com")
    assert known_templates == unknown_templates == [
        "email/staff/staff_reset.txt", "email/staff/staff_reset.html", "auth/forgot_sent.html"]
    # The same reads, the audit row and the commit; the queued email is the one INSERT more.
    assert [s for s in known_statements if s != "INSERT"] == \
        [s for s in unknown_statements if s != "INSERT"]
    assert known_statements.count("INSERT") == unknown_statements.count("INSERT") + 1
    assert [(e.kind, e.recipient) for e in staff_emails(app)] == [
        ("staff_reset", cast.own_email)]


# -- changing one's own password --------------------------------------------------------------

def test_changing_a_password_ends_every_other_session(app, cast):
    laptop = app.test_client()
    sign_in(laptop, cast.own_email)
    # Each sign-in ends the ones before it, so the other sessions still open are copies
    # of this one: another browser the cookie was carried to, or a stolen cookie.
    phone = app.test_client()
    phone.set_cookie("session", laptop.get_cookie("session").value)
    assert signed_in(laptop) and signed_in(phone)
    with app.app_context():
        token_before = find_user(cast.own_email).session_token

    page = laptop.get("/admin/account/password").get_data(as_text=True)
    for purpose in ("username", "current-password", "new-password"):
        assert f'autocomplete="{purpose}"' in page
    wrong = laptop.post("/admin/account/password", data={
        "current_password": "not it at all", "new_password": NEW_PASSWORD})
    assert "isn&#39;t your current password" in wrong.get_data(as_text=True)
    response = laptop.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.headers["Location"] == "/admin/"
    assert signed_in(laptop)
    assert not signed_in(phone)
    with app.app_context():
        assert find_user(cast.own_email).session_token != token_before
    assert audit_actions(app)[-1] == "auth.password_changed"
    assert "auth.password_change_refused" in audit_actions(app)
    assert sign_in(app.test_client(), cast.own_email, NEW_PASSWORD).status_code == 302


def test_guessing_the_current_password_locks_and_ends_the_session(app, cast):
    """Someone at a signed-in computer guesses the current password: each wrong guess
    counts toward the lock, as at sign-in; at the limit the session ends (every copy
    of it too), the account is locked and its owner told by email."""
    laptop = app.test_client()
    sign_in(laptop, cast.own_email)
    copy = app.test_client()
    copy.set_cookie("session", laptop.get_cookie("session").value)
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        wrong = laptop.post("/admin/account/password", data={
            "current_password": "not it at all", "new_password": NEW_PASSWORD})
        assert "isn&#39;t your current password" in wrong.get_data(as_text=True)
        assert signed_in(laptop)
    last = laptop.post("/admin/account/password", data={
        "current_password": "not it at all", "new_password": NEW_PASSWORD})
    assert last.status_code == 302 and last.headers["Location"] == "/admin/login"
    assert "signed out" in laptop.get("/admin/login").get_data(as_text=True)
    assert not signed_in(laptop) and not signed_in(copy)
    assert "auth.locked" in audit_actions(app)
    assert [(e.kind, e.recipient) for e in staff_emails(app)] == [
        ("staff_locked", cast.own_email)]
    # Locked: the right password gets the same page as any failed sign-in.
    page = sign_in(laptop, cast.own_email).get_data(as_text=True)
    assert "couldn&#39;t sign you in" in page and not signed_in(laptop)


def test_wrong_current_passwords_and_wrong_sign_ins_count_together(app, cast):
    client = app.test_client()
    sign_in(client, cast.own_email)
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        client.post("/admin/account/password", data={
            "current_password": "not it at all", "new_password": NEW_PASSWORD})
    sign_in(app.test_client(), cast.own_email, "not the password at all")
    with app.app_context():
        assert find_user(cast.own_email).locked_until is not None


def test_each_sign_in_rotates_the_session_token(app, cast):
    first, second = app.test_client(), app.test_client()
    sign_in(first, cast.admin_email)
    copied = first.get_cookie("session").value
    sign_in(second, cast.admin_email)
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert not signed_in(thief)  # the earlier session's token is gone
    assert signed_in(second)


# -- password rules (NIST SP 800-63B) -------------------------------------------------------

@pytest.mark.parametrize("password,accepted", [
    ("eleven char", False),
    ("twelve chars", True),
    ("correct horse battery staple", True),
    ("ĉu vi parolas 🐢 esperanton", True),  # any characters, no composition rules
    ("alllowercaseletters", True),
    ("admin@example.com", False),  # the address itself
    (" ADMIN@example.com ", False),
])
def test_password_rules(app, client, cast, password, accepted):
    sign_in(client, cast.admin_email)
    response = client.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": password})
    assert (response.status_code == 302) is accepted, response.get_data(as_text=True)


# What outside testing found accepted at the 12-character minimum with the common
# list alone, and why each is refused now, in words.
GUESSABLE = {
    "password1234": "common word or password",
    "Password1234": "common word or password",
    "aaaaaaaaaaaa": "repeats the same characters",
    "123456789012": "easy to guess",
    "qwertyuiopas": "easy to guess",
    "Woven Together Trauma Therapy": "practice's name",  # the practice's name (config)
    "woventogethertraumatherapy": "practice's name",
    "admin@example.com1": "your email address",
    "\u200b" * 12: "invisible character",
    "a quiet\u3164lake at dawn": "invisible character",  # a Hangul filler
    "a quiet lake\ufe0f at dawn": "invisible character",  # a variation selector
}


@pytest.mark.parametrize("password", list(GUESSABLE), ids=[repr(p) for p in GUESSABLE])
def test_guessable_passwords_are_refused_with_the_reason(app, client, cast, password):
    assert app.config["PRACTICE_NAME"] == "Woven Together Trauma Therapy"
    sign_in(client, cast.admin_email)
    response = client.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": password})
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert GUESSABLE[password] in page and 'id="new_password-error"' in page
    with app.app_context():
        assert password_matches(find_user(cast.admin_email), PASSWORD)


def test_a_therapists_own_name_makes_a_weak_password(app, client, cast):
    sign_in(client, cast.own_email)  # linked to the therapist Maya Alvarez
    response = client.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": "Maya Alvarez 1980"})
    assert "your name" in html.unescape(response.get_data(as_text=True))
    assert sign_in(app.test_client(), cast.admin_email).status_code == 302
    admin = app.test_client()
    sign_in(admin, cast.admin_email)
    accepted = admin.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": "Maya Alvarez 1980"})
    assert accepted.status_code == 302  # not the admin's name


def test_passwords_are_compared_in_nfkc(app, client, cast):
    sign_in(client, cast.admin_email)
    full_width = "\uff43\uff4f\uff52\uff52\uff45\uff43\uff54 lake at dawn"  # ｃｏｒｒｅｃｔ
    assert client.post("/admin/account/password", data={
        "current_password": PASSWORD, "new_password": full_width}).status_code == 302
    assert sign_in(app.test_client(), cast.admin_email, "correct lake at dawn").status_code == 302


@pytest.mark.parametrize("password", ["password1234", "admin@example.com1", "\u200b" * 12])
def test_create_user_refuses_a_guessable_password(app, runner, monkeypatch, password):
    monkeypatch.setenv("PORTAL_PASSWORD", password)
    result = runner.invoke(args=["create-user", "admin@example.com", "--role", "admin"])
    assert result.exit_code != 0
    assert GUESSABLE[password] in result.output
    with app.app_context():
        assert find_user("admin@example.com") is None


def test_the_most_common_passwords_are_refused_whatever_their_case(app, client, cast):
    listed = sorted(p for p in common_passwords() if len(p) >= 12)
    assert len(common_passwords()) == 10_000 and listed
    sign_in(client, cast.admin_email)
    for password in (listed[0], listed[-1].upper()):
        response = client.post("/admin/account/password", data={
            "current_password": PASSWORD, "new_password": password})
        assert "use most often" in response.get_data(as_text=True), password
    with app.app_context():
        from portal.staff.accounts import AccountError, set_password

        with pytest.raises(AccountError):
            set_password(find_user(cast.admin_email), listed[1])


def test_password_fields_allow_paste_and_password_managers(app, client, cast):
    pages = [client.get("/admin/login").get_data(as_text=True)]
    sign_in(client, cast.admin_email)
    pages.append(client.get("/admin/account/password").get_data(as_text=True))
    for page in pages:
        fields = re.findall(r'<input[^>]*type="password"[^>]*>', page)
        assert fields
        for field in fields:  # nothing that blocks pasting or cuts a long pass phrase short
            assert "onpaste" not in field and "readonly" not in field
            assert int((re.findall(r'maxlength="(\d+)"', field) or ["1024"])[0]) >= 64


# -- therapist accounts ----------------------------------------------------------------------

def test_create_user_links_the_therapist_with_that_email(app, runner, monkeypatch):
    monkeypatch.setenv("PORTAL_PASSWORD", NEW_PASSWORD)
    with app.app_context():
        maya = make_therapist("Maya Alvarez", email="maya@example.com")
        other = make_therapist("Daniel Okafor", email="daniel@example.com")
        db.session.commit()
        maya_id, other_id = maya.id, other.id
    result = runner.invoke(args=["create-user", "Maya@Example.com", "--role", "therapist"])
    assert result.exit_code == 0, result.output
    assert f"Linked to therapist Maya Alvarez (id {maya_id}, same email)" in result.output
    result = runner.invoke(args=["create-user", "assistant@example.com", "--role", "therapist",
                                 "--therapist", str(other_id)])
    assert f"Linked to therapist Daniel Okafor (id {other_id}, as asked)" in result.output
    result = runner.invoke(args=["create-user", "stranger@example.com", "--role", "therapist"])
    assert result.exit_code == 0
    assert "sees no requests until it is linked" in result.output
    missing = runner.invoke(args=["create-user", "x@example.com", "--role", "therapist",
                                  "--therapist", "999"])
    assert missing.exit_code != 0 and "no therapist with id 999" in missing.output
    with app.app_context():
        links = dict(db.session.execute(select(User.email, User.therapist_id)).all())
    assert links == {"maya@example.com": maya_id, "assistant@example.com": other_id,
                     "stranger@example.com": None}


def test_an_auto_linked_therapist_sees_their_requests_at_once(app, runner, monkeypatch):
    cast = make_cast(app)
    monkeypatch.setenv("PORTAL_PASSWORD", NEW_PASSWORD)
    with app.app_context():
        email = db.session.get(Therapist, cast.therapist_id).email
    runner.invoke(args=["create-user", email, "--role", "therapist"])
    client = app.test_client()
    sign_in(client, email, NEW_PASSWORD)
    assert client.get(f"/admin/requests/{cast.mine}").status_code == 200


def test_the_users_page_warns_about_unlinked_therapists_and_shows_locks(app, admin, cast):
    with app.app_context():
        make_user("unlinked@example.com", role="therapist")
        db.session.commit()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        sign_in(app.test_client(), cast.other_email, "not the password at all")
    page = admin.get("/admin/users").get_data(as_text=True)
    assert 'id="unlinked-therapists"' in page and "unlinked@example.com" in page
    assert "sees no requests until linked" in page
    assert "Locked until" in page and "Unlock" in page


def test_a_therapist_opening_someone_elses_request_is_told_so(app, client, cast):
    sign_in(client, cast.own_email)
    response = client.get(f"/admin/requests/{cast.theirs}")
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "isn't assigned to you" in page and "ask an admin" in page
    assert "Luis" not in page and "Chen" not in page


@pytest.mark.parametrize("app_config", [{"REQUIRE_MFA": True}], indirect=True)
def test_the_only_admin_gets_a_reset_from_the_command_line(app, client, cast, runner):
    enrol(client, cast.admin_email)
    result = runner.invoke(args=["reset-second-factor", "Admin@Example.com"])
    assert result.exit_code == 0 and "Reset the second sign-in step" in result.output
    assert not signed_in(client)
    assert sign_in(client, cast.admin_email).headers["Location"] == "/admin/login/enrol"
    assert audit_actions(app)[-1] == "user_mfa_reset"
    missing = runner.invoke(args=["reset-second-factor", "nobody@example.com"])
    assert missing.exit_code != 0 and "no user" in missing.output
