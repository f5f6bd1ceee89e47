"""Stored phone numbers (E.164, "+14155550123") written for people: staff pages and
the CSV export show them the way they are dialled from the practice."""

from __future__ import annotations

import phonenumbers

US_EXIT_CODE = "011"  # what a caller in the US dials before another country's code


def _parsed(e164: str | None) -> phonenumbers.PhoneNumber | None:
    if not e164:
        return None
    try:
        return phonenumbers.parse(e164, "US")
    except phonenumbers.NumberParseException:
        return None


def display_phone(e164: str | None) -> str:
    """ "(415) 555-0123" for a US number, "+44 20 7946 0958" for another country's, the
    stored text unchanged when it is not a number at all."""
    number = _parsed(e164)
    if number is None:
        return e164 or ""
    if number.country_code == 1:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def spreadsheet_phone(e164: str | None) -> str:
    """A phone for a CSV cell that spreadsheets keep as text and never run: a leading
    "+" would start a formula (and a quote to stop it would show), so a US number is
    written "(415) 555-0123" and another country's as dialled from here,
    "011 44 20 7946 0958"."""
    text = display_phone(e164)
    if text.startswith("+"):
        text = f"{US_EXIT_CODE} {text[1:]}"
    return text
