"""Whole numbers that strangers type: pages, page sizes and ids in query strings and URLs.

``"¹".isdigit()`` is true and ``int("¹")`` raises; ``int("٣")`` is 3 and ``int(" +1_0 ")``
is 10; and a database raises rather than compare a column with a number past its
size (SQLite: "Python int too large", PostgreSQL: "out of range"). So every such
number is read here, one way: ASCII digits only, no sign, space or underscore,
and never past a bound the database can hold.
"""

from __future__ import annotations

from collections.abc import Mapping

from werkzeug.routing import IntegerConverter, ValidationError

MAX_ID = 2**31 - 1  # an INTEGER column on PostgreSQL (and well inside SQLite's)
MAX_PAGE = 1_000_000  # past any real list, and (MAX_PAGE - 1) * 200 is a safe OFFSET


def _digits(text: object) -> str | None:
    if isinstance(text, str) and text.isascii() and text.isdigit():
        return text.lstrip("0") or "0"
    return None


def parse_number(text: object, *, maximum: int) -> int | None:
    """``text`` as a whole number from 0 to ``maximum``, or None when it is anything else."""
    digits = _digits(text)
    if digits is None or len(digits) > len(str(maximum)):
        return None
    value = int(digits)
    return value if value <= maximum else None


def parse_id(text: object) -> int | None:
    """A row id, or None: a value no row can have is no id at all."""
    value = parse_number(text, maximum=MAX_ID)
    return value if value else None


def arg_number(args: Mapping[str, str], name: str, default: int, *,
               minimum: int = 1, maximum: int) -> int:
    """``args[name]`` clamped to ``minimum``..``maximum``; ``default`` when it is missing
    or not written in ASCII digits. Too large means "as far as it goes", not an error."""
    digits = _digits(args.get(name, ""))
    if digits is None:
        return default
    if len(digits) > len(str(maximum)):
        return maximum
    return min(max(int(digits), minimum), maximum)


class IdConverter(IntegerConverter):
    """``<int:...>`` in a URL: ASCII digits up to MAX_ID, else the URL matches nothing
    (a 404) instead of reaching the database."""

    regex = r"[0-9]+"

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> int:
        if len(value) > len(str(MAX_ID)):  # before int(): Python refuses 4,300+ digits
            raise ValidationError()
        return super().to_python(value)
