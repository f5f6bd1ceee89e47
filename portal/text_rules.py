"""What the portal accepts as text that a person typed: one-line answers, names and
multi-line messages. Pure functions, no Flask: the forms use them to refuse an
answer, and the mail code uses them so that nothing that breaks a line ever
reaches an email header.

Answers are refused, never quietly cleaned: a line break, a tab, a zero-width or a
bidi control character in a name is either an accident of copying and pasting,
which the person can fix when told kindly, or an attempt to make text read
differently from what it is (names reach emails sent to addresses nobody has
verified, and the back office). Each check returns the kind of problem it found
(one of the ``*`` constants below) or None; the forms word the message.
"""

from __future__ import annotations

import unicodedata

LINE_BREAK = "line_break"
INVISIBLE = "invisible"
DIGIT = "digit"
SYMBOL = "symbol"
NO_LETTER = "no_letter"
UNREADABLE = "unreadable"

# Never in a one-line answer: controls (Cc: CR, LF, tab, NUL, ...), format characters
# (Cf: zero-width U+200B-U+200F, bidi embeddings and overrides U+202A-U+202E, bidi
# isolates U+2066-U+2069, the byte-order mark, the soft hyphen), line and paragraph
# separators (Zl, Zp) and lone surrogates (Cs, which PostgreSQL refuses).
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# What Python's str.splitlines() (and so the email package) treats as ending a line.
LINE_BREAKS = frozenset("\n\r\t\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# In a message, line breaks and tabs are part of the text (after normalise_line_endings).
MESSAGE_WHITESPACE = frozenset("\n\t")
# Names: letters of any script, combining marks and spaces (by category), and these.
NAME_PUNCTUATION = frozenset("-\u2010\u2011'\u2019.")
# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt, 16.0):
# characters a renderer draws as nothing. Most are format characters, refused anyway;
# the rest pass for letters or marks (the Hangul fillers U+115F, U+1160, U+3164 and
# U+FFA0 are letters, variation selectors and U+034F are marks) and would let a name of
# nothing, or a name that looks like another, through. Python's unicodedata has no
# such property, hence the table.
DEFAULT_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# What a decoder puts where the bytes sent were not UTF-8 (the request parser's
# errors="replace"): never typed by a person, and what they meant is lost.
REPLACEMENT_CHARACTER = "\ufffd"


def nfc(value):
    """The composed (NFC) form: "Zoe" + combining diaeresis is stored as one "Zoë",
    so it is counted, compared and searched like the same name typed on another
    keyboard. Anything that is not text passes through (a WTForms filter)."""
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


def normalise_line_endings(value):
    """``\\r\\n`` (what browsers send for a textarea) and a lone ``\\r`` become ``\\n``,
    so a line break counts as one character against the length limit."""
    if not isinstance(value, str):
        return value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def is_default_ignorable(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in DEFAULT_IGNORABLE_RANGES)


def unreadable(text: str) -> bool:
    """True when ``text`` holds what was not readable text when it arrived: the
    replacement character of a broken UTF-8 sequence, or a lone surrogate."""
    return REPLACEMENT_CHARACTER in text or any(
        unicodedata.category(char) == "Cs" for char in text)


def _forbidden(text: str, allowed: frozenset[str] = frozenset()) -> list[str]:
    return [char for char in text
            if unicodedata.category(char) in FORBIDDEN_CATEGORIES and char not in allowed]


def one_line_problem(text: str) -> str | None:
    """LINE_BREAK or INVISIBLE when ``text`` holds a character that has no place on
    one line; None when it is fine."""
    found = _forbidden(text)
    if not found:
        return None
    return LINE_BREAK if any(char in LINE_BREAKS for char in found) else INVISIBLE


def multi_line_problem(text: str) -> str | None:
    """INVISIBLE when ``text`` holds a control or format character other than a line
    break (``\\n``, after normalise_line_endings) or a tab."""
    return INVISIBLE if _forbidden(text, MESSAGE_WHITESPACE) else None


def name_problem(text: str) -> str | None:
    """Why ``text`` (NFC, stripped) is not a person's name, or None: names are
    letters of any script, combining marks, spaces, hyphens, apostrophes and
    periods, with at least one visible letter, and not starting with a mark (a lone
    mark would sit on whatever is printed before the name). Default-ignorable
    characters (fillers, variation selectors, the grapheme joiner) are refused as
    invisible: a name drawn as nothing, or as another name, is no name."""
    problem = one_line_problem(text)
    if problem:
        return problem
    if any(is_default_ignorable(char) for char in text):
        return INVISIBLE
    categories = [unicodedata.category(char) for char in text]
    for char, category in zip(text, categories, strict=True):
        if category[0] == "N":
            return DIGIT
        if category[0] not in "LM" and category != "Zs" and char not in NAME_PUNCTUATION:
            return SYMBOL
    if not any(category[0] == "L" for category in categories) or categories[0][0] == "M":
        return NO_LETTER
    return None


def flattened(text: str) -> str:
    """``text`` with each character a one-line answer may not hold replaced by a space:
    for putting a stored value on one line (an email greeting) whatever its age."""
    return "".join(" " if unicodedata.category(char) in FORBIDDEN_CATEGORIES else char
                   for char in text)
