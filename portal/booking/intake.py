"""Intake: the pause switch an admin flips, and the anonymous daily counts (people
turned away at step 1; pending requests dropped unverified).

The back office writes the Setting rows "intake_paused" ("1" or "") and
"intake_pause_message" (through ``set_pause``); the public flow only reads them.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.booking import availability_version
from portal.booking.intake_tables import AnonymousCount, NotEligibleCount, Setting
from portal.extensions import db
from portal.i18n import lazy_gettext as _l

PAUSED_KEY = "intake_paused"
MESSAGE_KEY = "intake_pause_message"
DEFAULT_MESSAGE = _l(
    "We're not taking new consultation requests at the moment. Please check back soon."
)


# Read on every public page: a statement built once, not per request.
_PAUSE_SETTINGS = select(Setting.key, Setting.value).where(
    Setting.key.in_((PAUSED_KEY, MESSAGE_KEY)))


def pause_state() -> tuple[bool, str]:
    """Whether intake is paused, and the pause message as the admin wrote it ("" if
    none), read in one query."""
    values = dict(db.session.execute(_PAUSE_SETTINGS).tuples().all())
    return values.get(PAUSED_KEY) == "1", values.get(MESSAGE_KEY) or ""


def pause_message() -> str | None:
    """The message to show while intake is paused, or None when it is open: for the
    public pages, which ask on every visit, reused while the availability version
    stays the same (a change of either setting raises it)."""
    paused, message = availability_version.reuse("intake_pause", pause_state)
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
    """Add one to the anonymous not-eligible count for ``day``."""
    _add(NotEligibleCount, {"day": day}, 1)


def record_unverified(day: date, count: int = 1) -> None:
    """Add ``count`` pending requests dropped unverified on ``day`` (Pacific)."""
    if count:
        _add(AnonymousCount, {"day": day, "kind": "unverified"}, count)


def _add(model, key: dict, count: int) -> None:
    """Add ``count`` to the row of ``model`` at ``key``, creating it; safe when two
    requests race."""
    dialect = db.session.get_bind().dialect.name
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[dialect]
    statement = insert(model).values(**key, count=count).on_conflict_do_update(
        index_elements=[getattr(model, column) for column in key],
        set_={"count": model.count + count},
    )
    db.session.execute(statement)
