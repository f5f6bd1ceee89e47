"""The practice's promise to reply within one business day, as the pages, the
confirmation email and the dashboard state it. The calendar itself (business
days, holidays, the due moment) is ``portal.booking.business_days``; this module only
reads the configured ``HOLIDAYS`` and puts the due day into words."""

from __future__ import annotations

from datetime import date, datetime

from flask import current_app
from flask_babel import gettext

from portal.booking import business_days
from portal.booking.scheduling import format_day
from portal.i18n import in_language
from portal.models import as_utc


def holidays() -> frozenset[date]:
    """The practice's holidays from ``HOLIDAYS`` (checked once at start-up)."""
    return business_days.parse_holidays(current_app.config["HOLIDAYS"])


def reply_due(received_at: datetime) -> datetime:
    """When the reply to a request received at ``received_at`` (stored or aware) is due."""
    return business_days.reply_due(as_utc(received_at), holidays())


def reply_by(received_at: datetime, language: str = "en") -> str:
    """The promise's day in words: "the end of Monday, December 7"."""
    day = business_days.reply_due_day(as_utc(received_at), holidays())
    with in_language(language):
        return gettext("the end of %(day)s", day=format_day(day, language))


def reply_day(received_at: datetime, language: str = "en") -> str:
    """The promise's day in words, for a sentence that says "by the end of" itself."""
    return format_day(business_days.reply_due_day(as_utc(received_at), holidays()), language)
