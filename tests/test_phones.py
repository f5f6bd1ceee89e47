"""portal.phones.Phone: the one phone value type (forms, pages, search, export)."""

from __future__ import annotations

import random

import pytest

from portal.phones import (
    US_EXIT_CODE,
    Phone,
    display_phone,
    national_phone,
    spreadsheet_phone,
)


@pytest.mark.parametrize("typed", ["(415) 555-0123", "415.555.0123", "415 555 0123",
                                   "+1 415 555 0123", "1-415-555-0123", "4155550123"])
def test_a_us_number_in_any_format_is_one_number(typed):
    phone = Phone.parse(typed)
    assert phone is not None and phone.is_us
    assert phone.e164 == "+14155550123"
    assert phone.national == phone.display == "(415) 555-0123"
    assert spreadsheet_phone(phone.e164) == "(415) 555-0123"


def test_another_countrys_number_is_read_but_is_not_a_us_one():
    phone = Phone.parse("+44 20 7946 0958")
    assert phone is not None and not phone.is_us
    assert phone.e164 == "+442079460958"
    assert phone.display == "+44 20 7946 0958"
    assert spreadsheet_phone("+442079460958") == "011 44 20 7946 0958"  # never a formula


@pytest.mark.parametrize("typed", ["555-0123", "(415) 555-012", "+1 999 555 0123"])
def test_a_number_that_cannot_be_dialled_in_the_us_is_not_a_us_one(typed):
    phone = Phone.parse(typed)
    assert phone is None or not phone.is_us


@pytest.mark.parametrize("hostile", [None, "", " ", "abc", "\x00", "+", "1" * 300,
                                     "=cmd|' /C calc'!A0", "٤١٥٥٥٥٠١٢٣x" * 20, "++1"])
def test_what_is_not_a_number_parses_to_none_or_a_harmless_value(hostile):
    phone = Phone.parse(hostile)
    if phone is not None:  # phonenumbers is lenient; what it returns still formats
        assert phone.e164.startswith("+")
    # Shown back unchanged when it is not a number: never an error.
    assert isinstance(display_phone(hostile), str)
    assert isinstance(spreadsheet_phone(hostile), str)
    if hostile:
        assert isinstance(national_phone(hostile), str)


def test_text_stored_before_that_is_not_a_number_is_shown_as_it_is():
    assert display_phone("call the front desk") == "call the front desk"
    assert national_phone("call the front desk") == "call the front desk"
    assert display_phone(None) == ""


def test_the_export_shortcut_for_us_numbers_writes_what_the_phone_library_writes():
    """spreadsheet_phone skips the parse for a North American number (the export writes
    thousands): what it writes is what the library would."""
    rng = random.Random(24)  # noqa: S311 - test data
    numbers = [f"+1{rng.randint(2000000000, 9999999999)}" for _ in range(3000)]
    numbers += ["+12015550123", "+19999999999", "+14155550123", "+1415555012", "+141555501234",
                "+10155550123", "+11155550123", "+442079460958", "+33142685300", "", None,
                "not a number", "4155550123", "+1 415 555 0123"]
    for number in numbers:
        phone = Phone.parse(number)
        written = phone.display if phone is not None else number or ""
        if written.startswith("+"):
            written = f"{US_EXIT_CODE} {written[1:]}"
        assert spreadsheet_phone(number) == written, number
