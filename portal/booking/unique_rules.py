"""The database's unique rules, named: a refused insert or update becomes the domain's
own error (``SlotTaken``, ``TimeTaken``...) in one place.

The partial unique indexes are the real guarantee that a time is booked once and an
address has one open request; a change they refuse runs in a savepoint, so the rest
of the transaction stays usable, and the row it touched is read again before the
caller hears which rule it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from portal.extensions import db

Row = TypeVar("Row")

# The short reference (7 of 32 symbols) can repeat among many requests: draw again.
IDENTIFIER_DRAWS = 5

_RULE_BY_INDEX = {
    "uq_booking_therapist_slot": "slot",
    "uq_open_request_email": "email",
    "uq_consultation_request_submission_token": "token",
    "uq_consultation_request_reference": "identifier",
    "uq_consultation_request_public_id": "identifier",
}
# SQLite's message names the columns (never the values): "UNIQUE constraint
# failed: consultation_request.therapist_id, consultation_request.slot_start".
_RULE_BY_SQLITE_COLUMN = {
    "consultation_request.slot_start": "slot",
    "consultation_request.email_normalised": "email",
    "consultation_request.submission_token": "token",
    "consultation_request.reference": "identifier",
    "consultation_request.public_id": "identifier",
}


def violated_rule(error: IntegrityError) -> str:
    """Which unique rule fired: "slot", "email", "token", "identifier" (a
    random reference or public id drawn twice) or "other".

    PostgreSQL names the index; its message also quotes the values, so only the
    name is trusted there. SQLite names the columns instead."""
    name = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
    if name:
        return _RULE_BY_INDEX.get(name, "other")
    if type(error.orig).__module__ != "sqlite3":
        return "other"
    columns = str(error.orig).partition("UNIQUE constraint failed:")[2]
    found = {rule for column, rule in _RULE_BY_SQLITE_COLUMN.items()
             if column in (c.strip() for c in columns.split(","))}
    return found.pop() if len(found) == 1 else "other"


@contextmanager
def refused_as(row: object | None,
               named_error: Callable[[str], BaseException | None]) -> Iterator[None]:
    """Run the block in a savepoint. When a unique rule refuses it: read ``row`` again
    (it may hold what the refused change set), then raise ``named_error(rule)``, or
    the database's own error when that gives None (a rule the caller never expects)."""
    try:
        with db.session.begin_nested():
            yield
    except IntegrityError as error:
        if row is not None:
            db.session.refresh(row)
        named = named_error(violated_rule(error))
        if named is None:
            raise
        raise named from None


def insert_fresh(make_row: Callable[[], Row]) -> Row | str:
    """Store ``make_row()`` (each call draws a fresh reference and public id), drawing
    again while an identifier was already taken: the stored row, or the name of the
    unique rule that refused it ("identifier" when every draw met a taken one)."""
    for _ in range(IDENTIFIER_DRAWS):
        row = make_row()
        try:
            with db.session.begin_nested():
                db.session.add(row)
                db.session.flush()
        except IntegrityError as error:
            rule = violated_rule(error)
            if rule != "identifier":
                return rule
        else:
            return row
    return "identifier"
