"""What makes a staff password acceptable: NIST SP 800-63B, not composition rules.

At least ``PASSWORD_MIN_LENGTH`` characters (12), at most 1,024, any characters
(spaces and emoji too, so pass phrases and password managers work), and not one
of the 10,000 most common passwords, nor the account's own email address. The
list ships in ``portal/data/common_passwords.txt`` and is read once; nothing is
fetched at run time.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common_passwords.txt"
MAX_LENGTH = 1024


class WeakPassword(ValueError):
    """A new password that must not be used; ``str()`` says why, for the person."""


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines
                     if line.strip() and not line.startswith("#"))


def is_common(password: str) -> bool:
    # Case and surrounding spaces don't make "Password1234" any harder to guess.
    return password.strip().casefold() in common_passwords()


def check_new_password(password: str, *, minimum: int, email: str | None = None) -> None:
    """Raise :class:`WeakPassword` unless ``password`` may be set."""
    if len(password) < minimum:
        raise WeakPassword(f"Use a password of at least {minimum} characters. "
                           "A few unrelated words make a good one.")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"Use a password of at most {MAX_LENGTH} characters.")
    if is_common(password):
        raise WeakPassword("That password is on a list of passwords people use most often, "
                           "so it's among the first ones guessed. Please choose another.")
    if email and password.strip().casefold() == email.strip().casefold():
        raise WeakPassword("Your password can't be your email address.")
