"""Signed links for staff passwords: an invite (set your first password) and a
reset. Each link carries the user's id, its purpose and a fingerprint of the
password hash it was made for, so it stops working as soon as the password
changes: a used link is a dead link, and so is every older one."""

from __future__ import annotations

import hashlib

from flask import current_app

from portal.extensions import db
from portal.signed import Signed
from portal.staff.models import User

SALT = "staff-password"
PURPOSES = {"invite": "STAFF_INVITE_HOURS", "reset": "STAFF_RESET_MINUTES"}


def _fingerprint(user: User) -> str:
    return hashlib.sha256(f"{user.id}:{user.password_hash}".encode()).hexdigest()[:24]


def max_age_seconds(purpose: str) -> int:
    setting = PURPOSES[purpose]
    value = current_app.config[setting]
    return int(value * 3600 if setting.endswith("HOURS") else value * 60)


def _link(purpose: str) -> Signed:
    # One salt for both purposes (the purpose is inside), each with its own life.
    return Signed(SALT, max_age=lambda: max_age_seconds(purpose))


def make_token(user: User, purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    return _link(purpose).dumps({"u": user.id, "p": purpose, "f": _fingerprint(user)})


def user_for_token(token: str, purpose: str, *, lock: bool = False) -> User | None:
    """The active user a valid, unexpired, unused ``purpose`` link is for; else None.
    ``lock``: read the user's row afresh and lock it until the transaction ends, so
    that of two requests using one link at once the second sees the new password's
    fingerprint (on PostgreSQL; SQLite's write lock already serialises them)."""
    payload = _link(purpose).loads(token)
    if not isinstance(payload, dict) or payload.get("p") != purpose:
        return None
    user_id = payload.get("u")
    user = db.session.get(User, user_id, with_for_update=lock, populate_existing=lock) \
        if isinstance(user_id, int) else None
    if user is None or not user.active or payload.get("f") != _fingerprint(user):
        return None
    return user
