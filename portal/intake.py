"""Intake: the pause switch an admin flips, and the anonymous not-eligible count.

The back office writes the Setting rows "intake_paused" ("1" or "") and
"intake_pause_message" (through ``set_pause``); the public flow only reads them.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.extensions import db
from portal.models import NotEligibleCount, Setting

PAUSED_KEY = "intake_paused"
MESSAGE_KEY = "intake_pause_message"
DEFAULT_MESSAGE = (
    "We're not taking new consultation requests at the moment. Please check back soon."
)


def pause_state() -> tuple[bool, str]:
    """Whether intake is paused, and the pause message as the admin wrote it ("" if
    none), read in one query."""
    values = dict(db.session.execute(
        select(Setting.key, Setting.value).where(Setting.key.in_((PAUSED_KEY, MESSAGE_KEY)))
    ).tuples().all())
    return values.get(PAUSED_KEY) == "1", values.get(MESSAGE_KEY) or ""


def pause_message() -> str | None:
    """The message to show while intake is paused, or None when it is open."""
    paused, message = pause_state()
    if not paused:
        return None
    return message.strip() or DEFAULT_MESSAGE


def set_pause(paused: bool, message: str) -> None:
    """Pause (or open) intake with ``message`` to show meanwhile; the caller commits."""
    for key, value in ((PAUSED_KEY, "1" if paused else ""), (MESSAGE_KEY, message.strip())):
        row = db.session.get(Setting, key) or Setting(key=key)
        row.value = value
        db.session.add(row)


def record_not_eligible(day: date) -> None:
    """Add one to the anonymous count for ``day``; safe when two requests race."""
    dialect = db.session.get_bind().dialect.name
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[dialect]
    statement = insert(NotEligibleCount).values(day=day, count=1).on_conflict_do_update(
        index_elements=[NotEligibleCount.day], set_={"count": NotEligibleCount.count + 1}
    )
    db.session.execute(statement)
