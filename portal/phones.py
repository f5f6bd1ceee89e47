"""Phone numbers, parsed once: :class:`Phone` is the one value type the forms, the
pages, the staff search and the CSV export use. Numbers are stored in E.164
("+14155550123") and written for people the way they are dialled from the practice."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

US_EXIT_CODE = "011"  # what a caller in the US dials before another country's code
_FORMAT = phonenumbers.PhoneNumberFormat
# An E.164 number of the North American plan, which the phone library writes
# "(415) 555-0123": the export writes thousands, so these skip the parse.
_NANP = re.compile(r"\+1([2-9]\d\d)(\d{3})(\d{4})")


@dataclass(frozen=True, eq=False)
class Phone:
    """A parsed number. ``Phone.parse("(415) 555-0123")`` reads anything a person types
    (a number without a country code is taken as a US one); None when it is not a
    number at all."""

    number: phonenumbers.PhoneNumber

    @classmethod
    def parse(cls, text: str | None) -> Phone | None:
        if not text:
            return None
        try:
            return cls(phonenumbers.parse(text, "US"))
        except phonenumbers.NumberParseException:
            return None

    @property
    def is_us(self) -> bool:
        """A real number in the US (what the request form accepts)."""
        return phonenumbers.is_valid_number(self.number) \
            and phonenumbers.region_code_for_number(self.number) == "US"

    @property
    def e164(self) -> str:
        """As stored and dialled: "+14155550123"."""
        return phonenumbers.format_number(self.number, _FORMAT.E164)

    @property
    def national(self) -> str:
        """As written in the number's own country: "(415) 555-0123"."""
        return phonenumbers.format_number(self.number, _FORMAT.NATIONAL)

    @property
    def display(self) -> str:
        """ "(415) 555-0123" for a US number, "+44 20 7946 0958" for another country's."""
        if self.number.country_code == 1:
            return self.national
        return phonenumbers.format_number(self.number, _FORMAT.INTERNATIONAL)


def national_phone(e164: str) -> str:
    """A stored number as a person writes it, "(415) 555-0123"; the text unchanged
    when it is not a number."""
    phone = Phone.parse(e164)
    return phone.national if phone is not None else e164


def display_phone(e164: str | None) -> str:
    """:attr:`Phone.display`, or the stored text unchanged when it is not a number."""
    phone = Phone.parse(e164)
    return phone.display if phone is not None else e164 or ""


def spreadsheet_phone(e164: str | None) -> str:
    """A phone for a CSV cell that spreadsheets keep as text and never run: a leading
    "+" would start a formula (and a quote to stop it would show), so a US number is
    written "(415) 555-0123" and another country's as dialled from here,
    "011 44 20 7946 0958"."""
    match = _NANP.fullmatch(e164) if e164 else None
    if match is not None:
        area, exchange, line = match.groups()
        return f"({area}) {exchange}-{line}"
    text = display_phone(e164)
    if text.startswith("+"):
        text = f"{US_EXIT_CODE} {text[1:]}"
    return text
