"""The second factor for staff: TOTP (RFC 6238, what phone authenticator apps do)
and single-use recovery codes for a lost phone.

A code is accepted for the time-step it belongs to, one step either side (phones'
clocks drift), and only for a step later than the last one accepted: a code seen
over someone's shoulder, or replayed from a proxy log, is refused. Recovery codes
carry 80 random bits each, so a plain SHA-256 of them is as good as a slow hash
and lets ten be checked at once. Functions on users add to the session and never
commit; the QR code is drawn here as an SVG path (no service is asked for it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy import or_, select, update

from portal.extensions import db
from portal.models import utcnow
from portal.staff.models import RecoveryCode, User

RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes
RECOVERY_GROUPS, RECOVERY_GROUP_LENGTH = 4, 4
TOTP_DIGITS = re.compile(r"[0-9]{6}")
DRIFT_STEPS = 1
TOTP_INTERVAL = 30  # seconds; what every authenticator app uses


@dataclass(frozen=True)
class QrCode:
    """A QR code as one SVG path: ``size`` modules square, quiet zone included."""

    size: int
    path: str


def new_secret() -> str:
    return pyotp.random_base32()  # 32 characters: 160 bits, RFC 4226's recommendation


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def qr_code(uri: str, border: int = 4) -> QrCode:
    """The QR code of ``uri``, for an inline ``<svg>`` that needs no third party."""
    matrix = segno.make(uri, error="m", micro=False).matrix
    steps = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            run = next((n for n in range(x, len(row)) if not row[n]), len(row)) - x
            # One rectangle per run of dark modules: no seams between them when scaled.
            steps.append(f"M{x + border} {y + border}h{run}v1h-{run}z")
            x += run
    return QrCode(size=len(matrix) + 2 * border, path="".join(steps))


def grouped_secret(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def current_step(now: float | None = None) -> int:
    return int(now if now is not None else time.time()) // TOTP_INTERVAL


def matching_step(secret: str, code: str, *, last_step: int | None,
                  now: float | None = None) -> int | None:
    """The time-step ``code`` belongs to, if it is valid now and newer than ``last_step``."""
    code = "".join(code.split())
    if not TOTP_DIGITS.fullmatch(code):
        return None
    totp, step = pyotp.TOTP(secret), current_step(now)
    for candidate in range(step - DRIFT_STEPS, step + DRIFT_STEPS + 1):
        if last_step is not None and candidate <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.casefold() if ch not in " -\t")


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(normalise_recovery_code(code).encode()).hexdigest()


def new_recovery_code() -> str:
    groups = ("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
              for _ in range(RECOVERY_GROUPS))
    return "-".join(groups)


# -- on users ------------------------------------------------------------------------

def begin_enrolment(user: User) -> str:
    """A new secret for a user who has not enrolled yet; returns it. Made afresh at
    every sign-in that leads to enrolment, so a secret someone copied from an
    earlier attempt (having only the password) dies as soon as the owner signs in;
    the attempt keeps its :func:`enrolment_fingerprint` to find its own secret."""
    user.totp_secret = new_secret()
    user.mfa_enrolled_at = None
    return user.totp_secret


def enrolment_fingerprint(secret: str) -> str:
    """What a pending sign-in keeps of the secret it made (the cookie is signed, not
    encrypted, so never the secret itself)."""
    return hashlib.sha256(f"enrollment:{secret}".encode()).hexdigest()[:32]


def is_own_enrolment(user: User, fingerprint: object) -> bool:
    """Whether ``user``'s stored secret is the one this pending sign-in made."""
    return (isinstance(fingerprint, str) and bool(user.totp_secret)
            and hmac.compare_digest(enrolment_fingerprint(user.totp_secret), fingerprint))


def finish_enrolment(user: User, code: str) -> list[str] | None:
    """Enrol the user if ``code`` comes from their new secret: their new recovery
    codes (to show once), or None when the code is wrong or the secret was replaced
    or enrolled meanwhile (one conditional UPDATE decides, on any database)."""
    if user.mfa_enrolled_at is not None or not user.totp_secret:
        return None
    step = matching_step(user.totp_secret, code, last_step=None)
    if step is None:
        return None
    won = db.session.execute(
        update(User).where(User.id == user.id, User.mfa_enrolled_at.is_(None),
                           User.totp_secret == user.totp_secret)
        .values(totp_last_step=step, mfa_enrolled_at=utcnow())).rowcount
    if won != 1:
        return None
    return replace_recovery_codes(user)


def replace_recovery_codes(user: User) -> list[str]:
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    user.recovery_codes.clear()
    db.session.flush()
    user.recovery_codes.extend(RecoveryCode(code_hash=hash_recovery_code(code)) for code in codes)
    return codes


def use_second_factor(user: User, code: str) -> str | None:
    """Check a code at sign-in and use it up: "totp" or "recovery_code" when it was
    accepted, None when not. Using up is one conditional UPDATE whose row count
    decides (the step must still be newer than the last one used; the recovery
    code still unused), so of two requests with one code only one wins, on
    PostgreSQL too, where ``begin_write()`` serialises nothing."""
    if not user.mfa_enrolled:
        return None
    step = matching_step(user.totp_secret, code, last_step=user.totp_last_step)
    if step is not None:
        won = db.session.execute(
            update(User).where(User.id == user.id, or_(User.totp_last_step.is_(None),
                                                       User.totp_last_step < step))
            .values(totp_last_step=step)).rowcount
        return "totp" if won == 1 else None
    unused = db.session.scalar(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None),
        RecoveryCode.code_hash == hash_recovery_code(code)))
    if unused is None:
        return None
    won = db.session.execute(
        update(RecoveryCode).where(RecoveryCode.id == unused, RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())).rowcount
    return "recovery_code" if won == 1 else None


def unused_recovery_codes(user: User) -> int:
    return sum(1 for code in user.recovery_codes if code.used_at is None)


def reset_second_factor(user: User) -> None:
    """Forget the user's authenticator and recovery codes: they enrol again at their
    next sign-in."""
    user.totp_secret = None
    user.totp_last_step = None
    user.mfa_enrolled_at = None
    user.recovery_codes.clear()
