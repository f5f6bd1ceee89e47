"""Intake: the pause switch an admin flips, and the anonymous not-eligible count.

The back office writes the Setting rows "intake_paused" ("1" or "") and
"intake_pause_message"; the public flow only reads them.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.extensions import db
from portal.models import NotEligibleCount, Setting

PAUSED_KEY = "intake_paused"
MESSAGE_KEY = "intake_pause_message"
DEFAULT_MESSAGE = (
    "We're not taking new consultation requests at the moment. Please check back soon."
)


def pause_message() -> str | None:
    """The message to show while intake is paused, or None when it is open."""
    paused = db.session.get(Setting, PAUSED_KEY)
    if paused is None or paused.value != "1":
        return None
    message = db.session.get(Setting, MESSAGE_KEY)
    return (message.value.strip() if message else "") or DEFAULT_MESSAGE


def record_not_eligible(day: date) -> None:
    """Add one to the anonymous count for ``day``; safe when two requests race."""
    dialect = db.session.get_bind().dialect.name
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[dialect]
    statement = insert(NotEligibleCount).values(day=day, count=1).on_conflict_do_update(
        index_elements=[NotEligibleCount.day], set_={"count": NotEligibleCount.count + 1}
    )
    db.session.execute(statement)
