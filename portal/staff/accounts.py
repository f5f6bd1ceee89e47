"""Back-office accounts: creation and invites, passwords and the sign-in lock.

Passwords are hashed with scrypt at N=2^17 (OWASP's minimum; Werkzeug's
default is lower) and must pass :mod:`portal.staff.password_policy`. An invited user has no
usable password until they follow their link: their hash is a random marker
that no password matches. Functions add to the session and never commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, func, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from portal import audit
from portal.booking.therapists import Therapist
from portal.extensions import db
from portal.messages.staff_emails import queue_locked
from portal.models import AuditEvent, as_utc, utcnow
from portal.staff.models import ROLES, User, new_session_token
from portal.staff.password_policy import WeakPassword, check_new_password, normalise

# Checked against when the email is unknown, so both paths cost the same.
_DUMMY_HASHES: dict[str, str] = {}


FAILURE_ACTIONS = ("auth.failed", "auth.locked")
NO_PASSWORD_PREFIX = "!"  # noqa: S105 - an invited user's hash: no password matches it


class AccountError(ValueError):
    """A request about an account that cannot be carried out.

    ``message`` is for a person at the form, ``field`` the form field it belongs
    to; ``str()`` adds ``cli_hint`` for the command line.
    """

    def __init__(self, message: str, *, field: str | None = None, cli_hint: str = ""):
        super().__init__(f"{message} {cli_hint}".strip())
        self.message = message
        self.field = field


def staff_email_key(email: str) -> str:
    """A staff address as accounts are stored and found: stripped and lower-cased, the
    rule the database's own ``lower(email)`` applies to the stored column (SQL has no
    casefold). Clients' addresses are casefolded instead: models.client_email_key."""
    return email.strip().lower()


def find_user(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == staff_email_key(email)))


def check_password_strength(password: str, email: str | None = None,
                            name: str | None = None) -> None:
    """Refuse a password that is weak for this account: ``name`` is the person's (a
    therapist user's therapist), and the practice's name counts too."""
    try:
        check_new_password(password, minimum=current_app.config["PASSWORD_MIN_LENGTH"],
                           email=email, context=[current_app.config["PRACTICE_NAME"], name])
    except WeakPassword as error:
        raise AccountError(str(error), field="password") from error


def name_of(user: User | None = None, therapist_id: int | None = None) -> str | None:
    """The person's name, where the portal knows it: their therapist record's."""
    therapist_id = therapist_id or (user.therapist_id if user is not None else None)
    if therapist_id is None:
        return None
    return db.session.scalar(select(Therapist.name).where(Therapist.id == therapist_id))


def has_password(user: User) -> bool:
    """False for an invited user who has not chosen a password yet."""
    return bool(user.password_hash) and not user.password_hash.startswith(NO_PASSWORD_PREFIX)


def therapist_with_email(email: str) -> Therapist | None:
    """The active therapist whose email this is (a therapist user's own address)."""
    return db.session.scalar(
        select(Therapist).where(func.lower(Therapist.email) == staff_email_key(email),
                                Therapist.active.is_(True)).order_by(Therapist.id).limit(1))


def hash_password(password: str) -> str:
    # NFKC: the same password typed on another keyboard matches (NIST SP 800-63B).
    return generate_password_hash(normalise(password),
                                  method=current_app.config["PASSWORD_HASH_METHOD"])


def set_password(user: User, password: str) -> None:
    check_password_strength(password, user.email, name_of(user))
    user.password_hash = hash_password(password)
    user.session_token = new_session_token()  # signs out every other session
    unlock(user)


def create_user(
    email: str, password: str | None, role: str, *, therapist_id: int | None = None,
    reset_password: bool = False,
) -> tuple[User, bool]:
    """Create a user, or with ``reset_password`` set the password of an existing one.

    With ``password`` None the user is invited: created without a usable password
    (the caller queues the invite email). A therapist user with no
    ``therapist_id`` is linked to the active therapist with the same email, if
    any. Returns the user and whether it was created.
    """
    if role not in ROLES:
        raise AccountError(f"Role must be one of: {', '.join(ROLES)}.", field="role")
    email = staff_email_key(email)
    if "@" not in email:
        raise AccountError("Enter an email address.", field="email")
    user = find_user(email)
    if user is not None and not reset_password:
        raise AccountError(
            f"A user with the email {email} already exists.", field="email",
            cli_hint="Use --reset-password to give it a new password.",
        )
    if role == "therapist" and therapist_id is None and (user is None or user.therapist_id is None):
        match = therapist_with_email(email)
        therapist_id = match.id if match else None
    if password is not None:
        check_password_strength(password, email, name_of(user, therapist_id))
    created = user is None
    if created:
        user = User(email=email, role=role, therapist_id=therapist_id, password_hash="")
        db.session.add(user)
    else:
        user.role = role
        if therapist_id is not None:
            user.therapist_id = therapist_id
    if password is None:
        user.password_hash = NO_PASSWORD_PREFIX + new_session_token()
        user.session_token = new_session_token()
    else:
        set_password(user, password)
    db.session.flush()
    return user, created


def password_matches(user: User | None, password: str) -> bool:
    """Whether ``password`` is the user's; one full hash check whoever the user is
    (none, invited, locked), so the time taken tells nothing."""
    if user is None or not has_password(user):
        # Made once per hashing method, so it costs what a real user's check costs.
        method = current_app.config["PASSWORD_HASH_METHOD"]
        if method not in _DUMMY_HASHES:
            _DUMMY_HASHES[method] = hash_password("not-a-real-password")
        check_password_hash(_DUMMY_HASHES[method], normalise(password))
        return False
    if check_password_hash(user.password_hash, normalise(password)):
        return True
    # A password set before passwords were normalised was hashed as typed.
    return normalise(password) != password and check_password_hash(user.password_hash, password)


def is_locked(user: User) -> bool:
    return user.locked_until is not None and user.locked_until > utcnow()


def unlock(user: User) -> None:
    """End a sign-in lock and forget the failures that led to it."""
    user.failed_logins = 0
    user.locked_until = None


def record_failed_login(user: User) -> datetime | None:
    """Count a failed sign-in and audit it; returns the lock's end when this failure
    locked the account.

    The counter changes in single UPDATE statements, so concurrent failures each
    count. Failures older than the lock window are forgotten first (the audit
    trail says when the last one was): a few typos a month apart never lock. The
    failure that locks queues an email to the account's owner.
    Call inside a write transaction (``begin_write()``).
    """
    config = current_app.config
    now = utcnow()
    window = timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
    recent_failure = exists().where(
        AuditEvent.actor == user.email, AuditEvent.action.in_(FAILURE_ACTIONS),
        AuditEvent.at >= now - window)
    this_user = update(User).where(User.id == user.id)
    db.session.execute(this_user.where(~recent_failure).values(failed_logins=0))
    failures = db.session.scalar(this_user.values(
        failed_logins=func.coalesce(User.failed_logins, 0) + 1).returning(User.failed_logins))
    if failures < config["LOGIN_MAX_FAILURES"]:
        audit.record("auth.failed", actor=user)
        return None
    locked_until = now + window
    db.session.execute(this_user.values(locked_until=locked_until, failed_logins=0))
    audit.record("auth.locked", actor=user, until=as_utc(locked_until).isoformat())
    # The owner hears of it, with a way back in; the person at the keyboard doesn't.
    queue_locked(user, until=locked_until)
    return locked_until


def record_successful_login(user: User, **detail) -> None:
    """A completed sign-in: the lock's count starts again, and a new session token
    ends every session signed in before this one."""
    unlock(user)
    user.last_login_at = utcnow()
    user.session_token = new_session_token()
    db.session.flush()  # the user's row first, as at logout (see auth.views.logout)
    audit.record("auth.login", actor=user, **detail)
