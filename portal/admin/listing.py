"""The request list's filters, search, sort and pages, shared by the list page and the
CSV export.

Only whitelisted fields are filtered on, and each filter maps onto an index:
status and therapist onto (status|therapist_id, created_at), booked dates onto
slot_start, names onto the normalised name columns as a prefix range (which
an index can serve on SQLite and PostgreSQL alike, whatever the collation),
email onto email_normalised (a prefix too), phone onto its E.164 form, a
reference onto its unique index.

Pages are found by position ("keyset" or "seek" pagination), not by counting rows
from the top: a page's links carry the sort key and id of the row it ends or starts
at, and the next page is the rows after that, read from an index (``Seek``). A page
deep in 100,000 requests then costs what the first one does, and a request that
arrives between two pages neither pushes a row onto the next page twice nor hides one.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, tuple_

from portal.booking.scheduling import PACIFIC
from portal.booking.statuses import STATUS_LABELS
from portal.models import ConsultationRequest, normalise_name, normalise_search, to_db
from portal.phones import Phone
from portal.web.numbers import MAX_PAGE, arg_number, parse_id

Request = ConsultationRequest
PER_PAGE_DEFAULT = 50
PER_PAGE_MAX = 200
# Page numbers (and OFFSET) only while the filtered list is this short: counting the
# rows before a position costs what reading them would.
NUMBERED_UP_TO = 5000
END = "end"  # ``before=end``: the last page


@dataclass(frozen=True)
class Position:
    """Where a page starts or ends: a row's sort key (None: no booked time) and id."""

    key: datetime | None
    id: int
    _TEXT = re.compile(r"^(?:([0-9]{8}T[0-9]{6}\.[0-9]{6})|none)_([0-9]{1,10})$")

    def as_arg(self) -> str:
        """For a query string: "20261201T180000.000000_4242" (UTC, as stored)."""
        return f"{'none' if self.key is None else f'{self.key:%Y%m%dT%H%M%S.%f}'}_{self.id}"

    @classmethod
    def parse(cls, text: object) -> Position | None:
        """A position from a query string; None when ``text`` is not one."""
        match = cls._TEXT.match(text) if isinstance(text, str) else None
        if match is None or (row_id := parse_id(match.group(2))) is None:
            return None
        if match.group(1) is None:
            return cls(None, row_id)
        try:
            return cls(datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f"), row_id)
        except ValueError:  # "20261399T…": digits, not a time
            return None


@dataclass(frozen=True)
class Seek:
    """One order of the list, and how a page is read from a position in it: the rows
    after it by (sort key, id), the id breaking ties, straight from the key's index.
    With ``keyless_last`` the rows without a key (no booked time) follow the others,
    by id the same way round, as a second stretch read from the same index."""

    column: Any
    descending: bool = False
    keyless_last: bool = False

    def order_by(self) -> tuple:
        """The whole order, for ORDER BY with OFFSET."""
        if self.descending:
            key = self.column.desc().nulls_last() if self.keyless_last else self.column.desc()
            return key, Request.id.desc()
        key = self.column.asc().nulls_last() if self.keyless_last else self.column.asc()
        return key, Request.id.asc()

    def accepts(self, position: Position | None) -> bool:
        return position is not None and (position.key is not None or self.keyless_last)

    def stretches(self, position: Position | None, *, backwards: bool = False,
                  ) -> list[tuple[list[ColumnElement[bool]], tuple]]:
        """(conditions, ORDER BY) for each stretch of rows after ``position`` (None: from
        the start), or before it read backwards (None: from the end), in reading order.
        A page reads the first stretch, then the next while it still has room."""
        down = self.descending != backwards  # the way the key is read

        def further(column, value):
            return column < value if down else column > value

        def order(column):
            return column.desc() if down else column.asc()

        keyed: list | None = [self.column.is_not(None)] if self.keyless_last else []
        keyless: list | None = [self.column.is_(None)] if self.keyless_last else None
        if position is not None and position.key is None:  # among the keyless rows
            keyless = [*keyless, further(Request.id, position.id)]
            if not backwards:
                keyed = None
        elif position is not None:
            keyed = [*keyed,
                     self.column <= position.key if down else self.column >= position.key,
                     further(tuple_(self.column, Request.id), tuple_(position.key, position.id))]
            if backwards:
                keyless = None
        found = []
        if keyed is not None:
            found.append((keyed, (order(self.column), order(Request.id))))
        if keyless is not None:
            found.append((keyless, (order(Request.id),)))
        return found[::-1] if backwards else found

    def before(self, position: Position) -> ColumnElement[bool]:
        """Every row ahead of ``position`` in this order (for counting them)."""
        return or_(*(and_(*conditions) for conditions, _ in
                     self.stretches(position, backwards=True)))


SORTS = {
    "received": ("Newest first", Seek(Request.created_at, descending=True)),
    "received_asc": ("Oldest first", Seek(Request.created_at)),
    "booked": ("Booked time, soonest first", Seek(Request.slot_start, keyless_last=True)),
    "booked_desc": ("Booked time, latest first",
                    Seek(Request.slot_start, descending=True, keyless_last=True)),
}
_PHONE_LIKE = re.compile(r"^[\d\s().+\-]{7,}$")
# new_reference()'s alphabet: no 0/O or 1/I, so "C-" and seven of these.
_REFERENCE = re.compile(r"^(?:C-?)?([A-HJ-NP-Z2-9]{7})$")


@dataclass
class RequestQuery:
    """What the person asked the list for, already validated."""

    q: str = ""
    status: str = ""
    therapist: str = ""  # a therapist id, "none" (unassigned) or "" (any)
    received_from: date | None = None
    received_to: date | None = None
    booked_from: date | None = None
    booked_to: date | None = None
    sort: str = "received"

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.status in STATUS_LABELS:
            found.append(Request.status == self.status)
        if self.therapist == "none":
            found.append(Request.therapist_id.is_(None))
        elif (therapist_id := parse_id(self.therapist)) is not None:
            found.append(Request.therapist_id == therapist_id)
        found += date_range(Request.created_at, self.received_from, self.received_to)
        found += date_range(Request.slot_start, self.booked_from, self.booked_to)
        if self.q.strip():
            found.append(search_condition(self.q))
        return found

    @property
    def seek(self) -> Seek:
        return SORTS.get(self.sort, SORTS["received"])[1]

    def order_by(self) -> tuple:
        return self.seek.order_by()

    def as_args(self) -> dict[str, str]:
        """The filter as query-string values, for page and export links. Built from
        these validated fields only: a key copied from the request could be one
        that url_for treats specially (``_external``, ``_anchor``, ``_method``)."""
        return {key: value.isoformat() if isinstance(value, date) else value
                for key, value in vars(self).items() if value}

    def as_audit_detail(self) -> dict:
        # Filters only: a search term may be a client's name, so it is not kept.
        detail = {key: str(value) for key, value in vars(self).items() if value and key != "q"}
        if self.q.strip():
            detail["search"] = True
        return detail


def pacific_midnight(day: date) -> datetime:
    return to_db(datetime.combine(day, time(0), tzinfo=PACIFIC))


def date_range(column, start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    """Whole Pacific days, ``end`` included."""
    found = []
    if start is not None:
        found.append(column >= pacific_midnight(start))
    if end is not None:
        found.append(column < pacific_midnight(end + timedelta(days=1)))
    return found


def next_string(value: str) -> str | None:
    """The smallest string greater than every string starting with ``value``, or None
    when there is none (``value`` is all U+10FFFF). Surrogates are skipped: the
    database drivers cannot encode them."""
    value = value.rstrip(chr(sys.maxunicode))
    if not value:
        return None
    following = ord(value[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:
        following = 0xE000
    return value[:-1] + chr(following)


def prefix(column, value: str) -> ColumnElement[bool]:
    # The range is what an index can use (the search columns compare bytewise on
    # PostgreSQL); LIKE keeps the match exact.
    found = [column >= value, column.startswith(value, autoescape=True)]
    upper = next_string(value)
    if upper is not None:
        found.append(column < upper)
    return and_(*found)


def search_condition(q: str) -> ColumnElement[bool]:
    """What staff quote, each onto an index: a reference ("C-869WUMW" or "869WUMW"),
    a phone in any format, the start of an email ("jane.doe"), the start of a first
    or last name or both ("maria lop"), accents ignored ("maria lopez" finds "María
    López": names are stored through normalise_name)."""
    q = normalise_search(q)  # as the stored email column is made
    if not q:
        return false()
    if "@" in q:
        return prefix(Request.email_normalised, q)
    reference = as_reference(q)
    found = [] if reference is None else [Request.reference == reference]
    if _PHONE_LIKE.match(q):  # "2345678" may be a reference too
        if (e164 := phone_e164(q)) is not None:
            found.append(Request.phone == e164)
        return or_(*found) if found else false()
    # As the stored name columns are made; and as they were made before accents were
    # stripped, for rows stored then (see portal.booking.search_names).
    for name in dict.fromkeys((normalise_name(q), q)):
        found += name_conditions(name)
    if " " not in q:  # one word may be the start of an address: "jane.doe"
        found.append(prefix(Request.email_normalised, q))
    return or_(*found)


def name_conditions(name: str) -> list[ColumnElement[bool]]:
    found = [prefix(Request.first_name_normalised, name),
             prefix(Request.last_name_normalised, name)]
    first, _, rest = name.partition(" ")
    if rest.strip():  # "rosa garcia": first name, then last name
        found.append(and_(prefix(Request.first_name_normalised, first),
                          prefix(Request.last_name_normalised, rest.strip())))
    return found


def as_reference(q: str) -> str | None:
    """A request reference as stored ("C-869WUMW"), from what was typed with or without
    the "C-" and in any case; None when it cannot be one."""
    match = _REFERENCE.match(q.strip().upper().replace(" ", ""))
    return f"C-{match.group(1)}" if match else None


def phone_e164(q: str) -> str | None:
    """A phone number in any format ("(415) 555-0123", "415.555.0123", "+1 415 555
    0123") as the E.164 form it is stored in; None when it is not a number."""
    phone = Phone.parse(q)
    return phone.e164 if phone is not None else None


def page_numbers(args) -> tuple[int, int]:
    """``page`` and ``per_page`` from the query string, clamped to sane values."""
    return (arg_number(args, "page", 1, maximum=MAX_PAGE),
            arg_number(args, "per_page", PER_PAGE_DEFAULT, maximum=PER_PAGE_MAX))
