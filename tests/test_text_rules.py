"""The text rules on their own: which names, one-line answers and messages pass,
and what kind of problem each refused one has."""

from __future__ import annotations

import unicodedata

import pytest

from portal import text_rules
from portal.text_rules import (
    DIGIT,
    INVISIBLE,
    LINE_BREAK,
    NO_LETTER,
    SYMBOL,
    flattened,
    multi_line_problem,
    name_problem,
    nfc,
    normalise_line_endings,
    one_line_problem,
)

GOOD_NAMES = [
    "Jos\u00e9", "Nguy\u1ec5n", "O'Brien", "O\u2019Brien", "Mary-Jane", "\u674e\u5c0f\u9f8d",
    "St. John", "Zo\u00eb", "\u0141ukasz", "Ng\u0169g\u0129",
    "\u0391\u03bb\u03ad\u03be\u03b1\u03bd\u03b4\u03c1\u03bf\u03c2",
    "\u0414\u043c\u0438\u0442\u0440\u0438\u0439", "\u0645\u062d\u0645\u062f", "\u05e9\u05e8\u05d4",
    "\u092a\u094d\u0930\u093f\u092f\u093e", "\uae40\ubbfc\uc900", "\u02bbOlena",
    "\u5c71\u7530\u3000\u592a\u90ce", "Jean-Fran\u00e7ois", "J. R. R.",
]

# U+200B-U+200F, U+202A-U+202E, U+2066-U+2069 (SECURITY.md), the BOM, the soft hyphen,
# and a few more of Unicode's format category.
FORMAT_CHARACTERS = [chr(c) for c in (*range(0x200B, 0x2010), *range(0x202A, 0x202F),
                                      *range(0x2066, 0x206A), 0xFEFF, 0x00AD, 0x061C, 0x2060,
                                      0x180E)]
LINE_BREAKING = ["\r", "\n", "\r\n", "\t", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85",
                 "\u2028", "\u2029"]
OTHER_CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\x9b"]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_names_of_any_script_pass(name):
    assert unicodedata.is_normalized("NFC", name)
    assert name_problem(name) is None


def test_a_name_typed_with_separate_accents_is_composed_then_passes():
    typed = "Zoe\u0308"  # "e" then a combining diaeresis, as some keyboards send it
    assert name_problem(typed) is None and nfc(typed) == "Zo\u00eb"
    assert len(nfc("e\u0301" * 80)) == 80


@pytest.mark.parametrize("name, problem", [
    ("Ana\r\nBcc: x@example.com", LINE_BREAK), ("Ana\u2028Lee", LINE_BREAK),
    ("Ana\tLee", LINE_BREAK), ("Ana\x00Lee", INVISIBLE), ("Ana\u202eeeL", INVISIBLE),
    ("Ana2", DIGIT), ("Ana \u0663", DIGIT), ("Ana \u2167", DIGIT), ("\u00bd", DIGIT),
    ("<script>alert(1)</script>", SYMBOL), ("Ana \U0001F600", SYMBOL), ("Ana & Bo", SYMBOL),
    ("Ana_Lee", SYMBOL), ("ana@example.com", SYMBOL), ("=HYPERLINK", SYMBOL),
    ("Ana\u00a9", SYMBOL), ("Ana\U000e0041", INVISIBLE),
    ("---", NO_LETTER), (".", NO_LETTER), ("'\u2019", NO_LETTER), ("\u0301Ana", NO_LETTER),
])
def test_names_that_are_not_names_say_why(name, problem):
    assert name_problem(name) == problem


@pytest.mark.parametrize("char", LINE_BREAKING)
def test_a_line_break_or_tab_is_a_line_break_on_one_line(char):
    assert one_line_problem(f"94110{char}x") == LINE_BREAK
    assert name_problem(f"Ana{char}Lee") == LINE_BREAK


@pytest.mark.parametrize("char", FORMAT_CHARACTERS + OTHER_CONTROLS)
def test_format_and_control_characters_are_refused_everywhere(char):
    assert one_line_problem(f"casey{char}@example.com") == INVISIBLE
    assert name_problem(f"Ana{char}Lee") == INVISIBLE
    assert multi_line_problem(f"Hello{char}there") == INVISIBLE


def test_a_message_keeps_its_line_breaks_and_tabs():
    text = normalise_line_endings("Hello,\r\n\r\nI work\tnights.\rThanks")
    assert text == "Hello,\n\nI work\tnights.\nThanks"
    assert multi_line_problem(text) is None
    assert multi_line_problem("Ana\u2028Lee") == INVISIBLE  # not a line break we keep


def test_every_forbidden_character_is_one_the_categories_name():
    # The ranges SECURITY.md lists are all in the categories the rules refuse.
    for char in FORMAT_CHARACTERS + LINE_BREAKING[:2] + OTHER_CONTROLS:
        assert unicodedata.category(char) in text_rules.FORBIDDEN_CATEGORIES


def test_flattened_puts_a_stored_value_on_one_line():
    assert flattened("Ana\r\nBcc: x\u202e") == "Ana  Bcc: x "
    assert flattened("Zo\u00eb O\u2019Brien") == "Zo\u00eb O\u2019Brien"


def test_filters_leave_what_is_not_text_alone():
    assert nfc(None) is None and normalise_line_endings(None) is None


# Names drawn as nothing, or as a name with something invisible after it: Hangul
# fillers (letters by category), variation selectors and the grapheme joiner (marks).
NAMES_OF_NOTHING = [
    "\u3164", "\u115f\u115f", "\uffa0", "\u1160", "\u3164 \u3164", "Ana\ufe0f\ufe0f\ufe0f",
    "Ana\u034f", "Ana\u034fLee", "A\u180bna", "Ana\U000e0100", "\u17b4", "Ana \u3164",
]


@pytest.mark.parametrize("name", NAMES_OF_NOTHING)
def test_default_ignorable_characters_are_no_name(name):
    assert name_problem(name) == INVISIBLE


def test_the_default_ignorable_table_has_the_characters_the_issue_names():
    for char in "\u3164\u115f\u1160\uffa0\ufe00\ufe0f\u034f\u00ad\u200b\u2060\ufeff":
        assert text_rules.is_default_ignorable(char)
    for char in "AaZ\u00e9\u3131\uac00\u4e00 -'.\u0301":
        assert not text_rules.is_default_ignorable(char)


def test_what_did_not_arrive_as_text_is_unreadable():
    assert text_rules.unreadable("Ana\ufffd") and text_rules.unreadable("\ud800")
    assert not text_rules.unreadable("Jos\u00e9 \u674e")
