"""The second sign-in step: enrolment at first sign-in, codes from an authenticator
app (each accepted once), recovery codes (each once), the lock counting wrong
codes, an admin's reset, a mistyped code tried again on the code step, and the rule
that every failed sign-in (unknown address, wrong password, locked account) gets
the same page in the same time."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest
from sqlalchemy import select, update

import portal.config
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, utcnow
from portal.staff.accounts import find_user, password_matches
from portal.staff.models import RecoveryCode, User
from tests.backoffice import (
    audit_actions,
    csrf_token,
    enrol,
    post_form,
    secret_on_page,
    sign_in,
    totp,
    wait_for_lock_waiters,
)
from tests.conftest import clear_database, make_app
from tests.factories import PASSWORD, make_user

MFA = {"REQUIRE_MFA": True}


@pytest.fixture
def app_config():
    return MFA


@pytest.fixture
def staff(app):
    with app.app_context():
        make_user("admin@example.com")
        make_user("second-admin@example.com")
        db.session.commit()
    return app


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_first_sign_in_sets_up_the_second_step(app, client, staff):
    response = sign_in(client, "admin@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login/enrol"
    assert not signed_in(client)  # the password alone opens nothing
    page = client.get("/admin/login/enrol").get_data(as_text=True)
    assert "<svg" in page and "<path" in page and 'id="totp-secret"' in page
    assert 'autocomplete="one-time-code"' in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "href" not in svg and "<img" not in page  # drawn here: nothing fetched elsewhere
    secret = secret_on_page(page)
    assert secret_on_page(client.get("/admin/login/enrol").get_data(as_text=True)) == secret

    wrong = client.post("/admin/login/enrol", data={"code": "000000"})
    assert wrong.status_code == 200 and "didn&#39;t match" in wrong.get_data(as_text=True)
    assert not signed_in(client)

    done = client.post("/admin/login/enrol", data={"code": totp(secret)})
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "only time they are shown" in done.get_data(as_text=True)
    assert signed_in(client)
    with app.app_context():
        user = find_user("admin@example.com")
        assert user.mfa_enrolled_at is not None and user.totp_secret == secret
        hashes = db.session.scalars(select(RecoveryCode.code_hash)).all()
        assert len(hashes) == 10 and not set(hashes) & set(codes)  # stored hashed
    assert audit_actions(app)[-2:] == ["auth.mfa_enrolled", "auth.login"]


def test_sign_in_asks_for_the_code_after_the_password(app, client, staff):
    secret, _ = enrol(client, "admin@example.com")
    client.post("/admin/logout")
    response = sign_in(client, "admin@example.com")
    assert response.headers["Location"] == "/admin/login/code"
    assert not signed_in(client)
    page = client.get("/admin/login/code").get_data(as_text=True)
    assert 'name="code"' in page and 'autocomplete="one-time-code"' in page
    # The code enrolment used is spent; the next one (the app's clock a step ahead) works.
    response = client.post("/admin/login/code", data={"code": totp(secret, 1)})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert signed_in(client)
    with app.app_context():
        detail = db.session.scalars(select(AuditEvent.detail).where(
            AuditEvent.action == "auth.login").order_by(AuditEvent.id.desc())).first()
        assert '"second_factor": "totp"' in detail


def test_a_code_is_not_accepted_twice(app, client, staff):
    secret, _ = enrol(client, "admin@example.com")
    client.post("/admin/logout")
    code = totp(secret, 1)
    sign_in(client, "admin@example.com")
    assert client.post("/admin/login/code", data={"code": code}).status_code == 302
    client.post("/admin/logout")
    sign_in(client, "admin@example.com")
    replay = client.post("/admin/login/code", data={"code": code})
    assert replay.status_code == 200
    assert "That code didn&#39;t work" in replay.get_data(as_text=True)
    assert not signed_in(client)
    # Nor an older one (still inside the drift window): only steps after the last used.
    sign_in(client, "admin@example.com")
    assert client.post("/admin/login/code", data={"code": totp(secret, -1)}).status_code == 200
    assert audit_actions(app).count("auth.failed") == 2


def test_a_recovery_code_works_once(app, client, staff):
    _, codes = enrol(client, "admin@example.com")
    client.post("/admin/logout")
    sign_in(client, "admin@example.com")
    # As printed, in capitals, or without the dashes: all the same code.
    response = client.post("/admin/login/code", data={"code": codes[3].upper()})
    assert response.status_code == 302
    assert "with a recovery code" in client.get("/admin/").get_data(as_text=True)
    client.post("/admin/logout")
    sign_in(client, "admin@example.com")
    again = client.post("/admin/login/code", data={"code": codes[3].replace("-", "")})
    assert again.status_code == 200 and not signed_in(client)
    with app.app_context():
        used = db.session.scalars(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None)))
        assert len(used.all()) == 1
    assert "auth.recovery_code_used" in audit_actions(app)
    # Another unused code still works.
    sign_in(client, "admin@example.com")
    assert client.post("/admin/login/code", data={"code": codes[4]}).status_code == 302


def test_wrong_codes_lock_the_account_and_tell_its_owner(app, client, staff):
    enrol(client, "admin@example.com")
    client.post("/admin/logout")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        sign_in(client, "admin@example.com")
        client.post("/admin/login/code", data={"code": "123456"})
    with app.app_context():
        user = find_user("admin@example.com")
        assert user.locked_until > utcnow()
        emails = db.session.scalars(select(OutboxEmail)).all()
        assert [(e.kind, e.recipient, e.request_id) for e in emails] == [
            ("staff_locked", "admin@example.com", None)]
    # Locked: even the right password and code get the same page as any failure.
    sign_in(client, "admin@example.com")
    assert not signed_in(client)


def test_the_code_step_needs_a_recent_password(app, client, staff):
    assert client.get("/admin/login/code").headers["Location"] == "/admin/login"
    assert client.get("/admin/login/enrol").headers["Location"] == "/admin/login"
    secret, _ = enrol(client, "admin@example.com")
    client.post("/admin/logout")
    sign_in(client, "admin@example.com")
    with client.session_transaction() as session:
        pending = session["pending_sign_in"]
        pending["at"] -= app.config["SIGN_IN_STEP_MINUTES"] * 60 + 5
        session["pending_sign_in"] = pending
    response = client.post("/admin/login/code", data={"code": totp(secret, 1)})
    assert response.headers["Location"] == "/admin/login" and not signed_in(client)


def test_a_secret_copied_by_someone_with_only_the_password_is_worthless(app, client, staff):
    """Someone who knows the password reaches the enrolment page first and copies the
    secret. The owner's own sign-in makes a new one, so the copy never passes step 2,
    and the copier's page no longer shows or accepts any secret."""
    thief = app.test_client()
    assert sign_in(thief, "admin@example.com").headers["Location"] == "/admin/login/enrol"
    copied = secret_on_page(thief.get("/admin/login/enrol").get_data(as_text=True))

    owner_secret, _ = enrol(client, "admin@example.com")
    assert owner_secret != copied
    # The thief's pending sign-in was for a secret that is gone: start again.
    for response in (thief.get("/admin/login/enrol"),
                     thief.post("/admin/login/enrol", data={"code": totp(copied)})):
        assert response.headers["Location"] == "/admin/login"
    # Signing in again gets the thief to the code step, where the copy is worthless.
    assert sign_in(thief, "admin@example.com").headers["Location"] == "/admin/login/code"
    for steps in (-1, 0, 1):
        thief.post("/admin/login/code", data={"code": totp(copied, steps)})
    assert not signed_in(thief)


def test_each_enrolment_attempt_has_its_own_secret(app, client, staff):
    sign_in(client, "admin@example.com")
    first = secret_on_page(client.get("/admin/login/enrol").get_data(as_text=True))
    other = app.test_client()
    sign_in(other, "admin@example.com")
    second = secret_on_page(other.get("/admin/login/enrol").get_data(as_text=True))
    assert first != second
    # The newer attempt wins; the first, told to sign in again, gets a third secret.
    assert client.post("/admin/login/enrol", data={"code": totp(first)}).headers[
        "Location"] == "/admin/login"
    sign_in(client, "admin@example.com")
    third = secret_on_page(client.get("/admin/login/enrol").get_data(as_text=True))
    assert third not in (first, second)
    assert other.get("/admin/login/enrol").headers["Location"] == "/admin/login"
    assert client.post("/admin/login/enrol", data={"code": totp(third)}).status_code == 200
    assert signed_in(client)
    with app.app_context():
        assert find_user("admin@example.com").totp_secret == third


def test_showing_the_enrolment_page_is_audited(app, client, staff):
    sign_in(client, "admin@example.com")
    client.get("/admin/login/enrol")
    client.get("/admin/login/enrol")
    client.post("/admin/login/enrol", data={"code": "000000"})  # shown again, with the error
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "auth.enrollment_shown")).all()
        user_id = find_user("admin@example.com").id
    assert len(events) == 3
    assert {(e.actor, e.actor_id) for e in events} == {("admin@example.com", user_id)}
    with app.app_context():
        secret = find_user("admin@example.com").totp_secret
    assert all(secret not in e.detail for e in events)


def test_an_admin_resets_a_lost_second_factor(app, client, staff):
    enrol(client, "admin@example.com")  # this session will be ended by the reset
    other = app.test_client()
    enrol(other, "second-admin@example.com")
    with app.app_context():
        user_id = find_user("admin@example.com").id
        own_id = find_user("second-admin@example.com").id
    page = other.get(f"/admin/users/{user_id}").get_data(as_text=True)
    assert "Reset second step" in page
    assert other.post(f"/admin/users/{user_id}/second-factor/reset").status_code == 302
    assert not signed_in(client)
    with app.app_context():
        user = find_user("admin@example.com")
        assert user.totp_secret is None and user.mfa_enrolled_at is None
        assert db.session.scalar(select(RecoveryCode.id).where(
            RecoveryCode.user_id == user_id)) is None
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "user_mfa_reset")).one()
        assert event.actor == "second-admin@example.com" and str(user_id) in event.detail
    # They set it up again at their next sign-in, with a new key.
    assert sign_in(client, "admin@example.com").headers["Location"] == "/admin/login/enrol"
    # Nobody resets their own (someone at their unlocked computer could swap phones).
    other.post(f"/admin/users/{own_id}/second-factor/reset")
    with app.app_context():
        assert find_user("second-admin@example.com").mfa_enrolled_at is not None


def test_an_enrolled_user_is_asked_for_the_code_even_where_it_is_optional(app, client, staff):
    secret, _ = enrol(client, "admin@example.com")
    client.post("/admin/logout")
    app.config["REQUIRE_MFA"] = False
    assert sign_in(client, "admin@example.com").headers["Location"] == "/admin/login/code"
    assert sign_in(app.test_client(), "second-admin@example.com").headers["Location"] == "/admin/"


# -- every failure looks the same ------------------------------------------------------

ENUMERATION = {**MFA, "WTF_CSRF_ENABLED": True}
TOKEN_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')


def failed_attempt(app, email: str, password: str, code: str | None = None):
    """A sign-in from a fresh browser: the response to the last step it reached."""
    client = app.test_client()
    response = sign_in(client, email, password)
    if code is not None:
        assert response.headers["Location"] == "/admin/login/code"
        response = post_form(client, "/admin/login/code", {"code": code})
    return response


def comparable(response) -> tuple:
    body = TOKEN_VALUE.sub(r"\1TOKEN\2", response.get_data(as_text=True))
    headers = sorted((k, v) for k, v in response.headers.items() if k != "Set-Cookie")
    return response.status_code, headers, body


@pytest.fixture
def three_accounts(app):
    """An enrolled account, one locked (its password known to the attacker) and the
    secret of the first."""
    with app.app_context():
        make_user("known@example.com")
        make_user("locked@example.com")
        db.session.commit()
    secret, _ = enrol(app.test_client(), "known@example.com")
    with app.app_context():
        db.session.execute(update(User).where(User.email == "locked@example.com").values(
            locked_until=utcnow().replace(year=utcnow().year + 1)))
        db.session.commit()
    return secret


@pytest.mark.parametrize("app_config", [ENUMERATION])
def test_every_failed_sign_in_gets_the_same_page(app, three_accounts):
    responses = {
        "unknown address": failed_attempt(app, "nobody@example.com", PASSWORD),
        "wrong password": failed_attempt(app, "known@example.com", "not the password at all"),
        "locked account, right password": failed_attempt(app, "locked@example.com", PASSWORD),
        "deactivated": failed_attempt(app, "gone@example.com", PASSWORD),
    }
    first = comparable(responses["unknown address"])
    assert first[0] == 200 and "couldn&#39;t sign you in" in first[2]
    assert "locked" not in first[2].lower()
    for name, response in responses.items():
        assert comparable(response) == first, name


def test_a_mistyped_code_stays_on_the_code_step_and_counts(app, client, staff):
    """Someone at the code step gave the right password: a wrong code (a typo, or the
    code that just expired) is theirs to try again, not a reason to blame the password.
    Each still counts toward the lock, and the lock ends the attempt like any failure."""
    secret, _ = enrol(client, "admin@example.com")
    client.post("/admin/logout")
    assert sign_in(client, "admin@example.com").headers["Location"] == "/admin/login/code"
    wrong = client.post("/admin/login/code", data={"code": "000000"})
    page = wrong.get_data(as_text=True)
    assert wrong.status_code == 200
    assert "That code didn&#39;t work. Try the newest code in your app." in page
    assert "Forgot your password" not in page and 'name="password"' not in page
    assert 'id="code-error"' in page and 'aria-invalid="true"' in page
    assert 'value="000000"' not in page
    assert audit_actions(app)[-1] == "auth.failed"
    # Still on the code step: the right code now signs in, without the password again.
    assert client.post("/admin/login/code", data={"code": totp(secret, 1)}).status_code == 302
    assert signed_in(client)
    client.post("/admin/logout")
    sign_in(client, "admin@example.com")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        assert "That code didn" in client.post("/admin/login/code",
                                               data={"code": "000000"}).get_data(as_text=True)
    last = client.post("/admin/login/code", data={"code": "000000"})
    assert "couldn&#39;t sign you in" in last.get_data(as_text=True)  # locked: start again
    assert audit_actions(app)[-1] == "auth.locked"
    assert client.get("/admin/login/code").headers["Location"] == "/admin/login"


@pytest.mark.parametrize("app_config", [{**ENUMERATION, "LOGIN_MAX_FAILURES": 1000,
                                         "PASSWORD_HASH_METHOD":
                                         portal.config.PASSWORD_HASH_METHOD}])
def test_every_failed_sign_in_takes_about_as_long(app, three_accounts):
    """One full (production-cost) password hash on every path: an unknown address or a
    locked account answers no faster than a wrong password."""
    attempts = {
        "unknown": ("nobody@example.com", PASSWORD),
        "wrong password": ("known@example.com", "not the password at all"),
        "locked": ("locked@example.com", PASSWORD),
    }
    # An unknown address checked earlier under a cheaper hashing setting (another
    # app in this process) must not leave a cheap stand-in hash behind.
    production = app.config["PASSWORD_HASH_METHOD"]
    with app.app_context():
        app.config["PASSWORD_HASH_METHOD"] = "scrypt:16384:8:1"
        password_matches(None, "warming up")
        app.config["PASSWORD_HASH_METHOD"] = production
    times: dict[str, list[float]] = {name: [] for name in attempts}
    for _ in range(4):
        for name, (email, password) in attempts.items():
            client = app.test_client()
            token = csrf_token(client.get("/admin/login").get_data(as_text=True))
            started = time.perf_counter()
            client.post("/admin/login", data={"email": email, "password": password,
                                              "csrf_token": token})
            times[name].append(time.perf_counter() - started)
    # The fastest of each: other work on a shared machine only ever adds time. Skipping
    # the hash makes a path about a hundred times faster, so the margin can be generous.
    fastest = {name: min(values) for name, values in times.items()}
    assert max(fastest.values()) < 2.5 * min(fastest.values()), fastest


def test_the_qr_code_encodes_the_key_shown_as_text(app, client, staff):
    import segno  # noqa: F401  (the portal draws it; here only the URI is checked)

    from portal.staff import mfa

    sign_in(client, "admin@example.com")
    secret = secret_on_page(client.get("/admin/login/enrol").get_data(as_text=True))
    uri = mfa.provisioning_uri(secret, "admin@example.com", app.config["PRACTICE_NAME"])
    assert pyotp.parse_uri(uri).secret == secret
    page = client.get("/admin/login/enrol").get_data(as_text=True)
    assert mfa.qr_code(uri).path in page


# -- the pure parts -------------------------------------------------------------------------

def test_the_qr_path_draws_exactly_the_dark_modules():
    import segno

    from portal.staff import mfa

    uri = mfa.provisioning_uri(mfa.new_secret(), "maya@example.com", "A Practice")
    qr = mfa.qr_code(uri)
    drawn = set()
    for x, y, run in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", qr.path):
        drawn |= {(int(x) + i, int(y)) for i in range(int(run))}
    matrix = segno.make(uri, error="m", micro=False).matrix
    dark = {(x + 4, y + 4) for y, row in enumerate(matrix) for x, on in enumerate(row) if on}
    assert drawn == dark and qr.size == len(matrix) + 8


def test_codes_are_accepted_one_step_either_side_and_only_after_the_last_used():
    from portal.staff import mfa

    secret, now = mfa.new_secret(), 1_800_000_000
    step = mfa.current_step(now)
    code_at = {offset: pyotp.TOTP(secret).at(now + 30 * offset) for offset in (-2, -1, 0, 1, 2)}
    assert mfa.matching_step(secret, code_at[0], last_step=None, now=now) == step
    assert mfa.matching_step(secret, code_at[-1], last_step=None, now=now) == step - 1
    assert mfa.matching_step(secret, code_at[1], last_step=None, now=now) == step + 1
    assert mfa.matching_step(secret, code_at[2], last_step=None, now=now) is None
    assert mfa.matching_step(secret, code_at[-2], last_step=None, now=now) is None
    assert mfa.matching_step(secret, code_at[0], last_step=step, now=now) is None
    assert mfa.matching_step(secret, code_at[1], last_step=step, now=now) == step + 1
    spaced = f"{code_at[0][:3]} {code_at[0][3:]}"
    assert mfa.matching_step(secret, spaced, last_step=None, now=now) == step
    for junk in ("", "12345", "1234567", "١٢٣٤٥٦", "abcdef", "12345\n"):
        assert mfa.matching_step(secret, junk, last_step=None, now=now) is None, junk


# -- one code, one sign-in, on PostgreSQL too ----------------------------------------------

BROWSERS = 3


@pytest.fixture
def postgres_app(postgres_url):
    """The app on PostgreSQL whatever the test's parameters: where ``begin_write()``
    serialises nothing and only the statements themselves can keep a code single-use."""
    app = make_app(postgres_url, **MFA)
    yield app
    clear_database(app)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["totp", "recovery code"])
def test_one_code_posted_by_three_browsers_at_once_signs_in_once(postgres_app, kind):
    """Three browsers past the password post the same code while another transaction
    holds the user's row (as outside testing reproduced it): each reads the code as
    unused, then all wait. Exactly one gets a session; the others are told the code
    didn't work."""
    import psycopg

    app = postgres_app
    with app.app_context():
        make_user("admin@example.com")
        db.session.commit()
        user_id = find_user("admin@example.com").id
    secret, codes = enrol(app.test_client(), "admin@example.com")
    code = totp(secret, 1) if kind == "totp" else codes[0]
    browsers = [app.test_client() for _ in range(BROWSERS)]
    for browser in browsers:
        assert sign_in(browser, "admin@example.com").headers["Location"] == "/admin/login/code"
    logins_before = audit_actions(app).count("auth.login")

    url = app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as holder, psycopg.connect(url, autocommit=True) as watcher, \
            ThreadPoolExecutor(BROWSERS) as pool:
        holder.execute('SELECT id FROM "user" WHERE id = %s FOR UPDATE', (user_id,))
        posts = [pool.submit(browser.post, "/admin/login/code", data={"code": code})
                 for browser in browsers]
        wait_for_lock_waiters(watcher, BROWSERS)
        holder.rollback()
        responses = [post.result(timeout=60) for post in posts]

    assert sorted(r.status_code for r in responses) == [200] * (BROWSERS - 1) + [302]
    for response in responses:
        if response.status_code == 200:
            assert "That code didn&#39;t work" in response.get_data(as_text=True)
    assert audit_actions(app).count("auth.login") - logins_before == 1
    with app.app_context():
        used = db.session.scalars(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None)))
        assert len(used.all()) == (kind == "recovery code")
