"""What makes a staff password acceptable: NIST SP 800-63B, not composition rules.

At least ``PASSWORD_MIN_LENGTH`` characters (12), at most 1,024, any visible
characters (spaces and emoji too, so pass phrases and password managers work),
and hard to guess: not one of the 10,000 most common passwords, not the
account's own email address, and scored at least 3 of 4 by ``zxcvbn`` with the
practice's name, the person's email and name as words it tries first. At a
12-character minimum a common list alone blocks almost nothing
(``password1234``, ``aaaaaaaaaaaa`` and ``qwertyuiopas`` are not on it).

A password is NFKC-normalised before it is checked and hashed, so the same
password typed on another keyboard (full-width letters, a composed accent) is
the same password; invisible characters (controls, zero-width and bidi marks,
fillers, variation selectors) are refused rather than dropped: twelve
zero-width spaces are not a password. The list ships in
``portal/data/common_passwords.txt`` and is read once; nothing is fetched at
run time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from zxcvbn import zxcvbn

COMMON_PASSWORDS_FILE = Path(__file__).parent.parent / "data" / "common_passwords.txt"
MAX_LENGTH = 1024
MIN_SCORE = 3  # zxcvbn: 3 is "safely unguessable" (about 10^10 guesses)
# zxcvbn's time grows with the length; the first characters decide a weak password.
SCORED_LENGTH = 100

# Controls, format characters (zero-width, bidi), separators and surrogates, and the
# other default-ignorable code points of Unicode's DerivedCoreProperties.txt (fillers
# and variation selectors are letters or marks by category, yet show nothing).
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


class WeakPassword(ValueError):
    """A new password that must not be used; ``str()`` says why, for the person."""


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().casefold() for line in lines
                     if line.strip() and not line.startswith("#"))


def normalise(password: str) -> str:
    """The form a password is checked and hashed in (NFKC)."""
    return unicodedata.normalize("NFKC", password)


def is_invisible(char: str) -> bool:
    if unicodedata.category(char) in INVISIBLE_CATEGORIES:
        return True
    point = ord(char)
    return any(low <= point <= high for low, high in DEFAULT_IGNORABLE)


def is_common(password: str) -> bool:
    # Case and surrounding spaces don't make "Password1234" any harder to guess.
    return password.strip().casefold() in common_passwords()


def context_words(texts: Iterable[str | None]) -> list[str]:
    """What an attacker tries first for this account: each text whole, its parts
    (an email's name and domain, a name's words) and the text without spaces."""
    words: set[str] = set()
    for text in texts:
        if not text:
            continue
        text = normalise(text).casefold().strip()
        words.update({text, text.replace(" ", "")})
        words.update(part for part in re.split(r"[\s@._+-]+", text) if len(part) >= 3)
    return sorted(words)


def check_new_password(password: str, *, minimum: int, email: str | None = None,
                       context: Iterable[str | None] = ()) -> None:
    """Raise :class:`WeakPassword` unless ``password`` may be set. ``context``: the
    practice's name, the person's name and the like (``email`` counts too)."""
    if any(is_invisible(char) for char in password + normalise(password)):
        raise WeakPassword("Your password contains an invisible character (such as a "
                           "zero-width space), which can come from copying and pasting. "
                           "Type it in again, using only characters you can see.")
    password = normalise(password)
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
    words = context_words([email, *context])
    result = zxcvbn(password[:SCORED_LENGTH], user_inputs=words)
    if result["score"] < MIN_SCORE:
        raise WeakPassword(why_guessable(result))


def why_guessable(result: dict) -> str:
    """zxcvbn's finding in words for the person at the form."""
    patterns = {match.get("dictionary_name") or match.get("pattern")
                for match in result.get("sequence", [])}
    if "user_inputs" in patterns:
        reason = ("It's built from your email address, your name or the practice's name, "
                  "which are the first things someone would try.")
    elif patterns & {"repeat"}:
        reason = "It repeats the same characters, which is quick to guess."
    elif patterns & {"sequence", "spatial"}:
        reason = ("It follows a sequence or a row of keys (like 1234 or qwerty), which is "
                  "quick to guess.")
    elif patterns & {"passwords", "english_wikipedia", "female_names", "male_names",
                     "surnames", "us_tv_and_film"}:
        reason = ("It's a common word or password with small changes (capitals, digits), "
                  "which guessing programs try early.")
    else:
        reason = "It follows a pattern that guessing programs try early."
    return (f"That password would be easy to guess. {reason} Choose another: three or four "
            "unrelated words make a strong one, or let your password manager make one.")
