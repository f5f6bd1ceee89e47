"""What happens next, in one sentence: who calls whom, at which number or video link,
and when (DESIGN "The request flow", step 6). The confirmation page, the client's
confirmation email and the calendar file say it alike.

A booked time is the promise: the sentence gives it, and no reply promise that could
fall after it. Only a request without a time gets the reply promise (business days,
``HOLIDAYS``: portal.booking.reply_promise). Every sentence is translated whole, with
placeholders, in the request's language.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext
from markupsafe import Markup, escape

from portal.booking import reply_promise
from portal.booking.answers import CONTACT_METHODS
from portal.booking.scheduling import PACIFIC, format_day, format_time
from portal.i18n import in_language, translate
from portal.models import ConsultationRequest, as_utc
from portal.phones import display_phone


def video_link(consultation: ConsultationRequest) -> str | None:
    """The video room of a consultation to be held by video, or None."""
    therapist = consultation.therapist
    if consultation.meeting != "video" or therapist is None:
        return None
    return therapist.video_url or None


def location(consultation: ConsultationRequest) -> str:
    """The calendar file's LOCATION: the video link, or "Phone call" (translated by
    the caller's language)."""
    return video_link(consultation) or gettext("Phone call")


def sentence(consultation: ConsultationRequest, *, html: bool = False) -> str:
    """What happens next, in the request's language. ``html``: the link is a link and
    everything else is escaped (a Markup)."""
    language = consultation.language
    with in_language(language):
        return _sentence(consultation, language, html)


def _say(html: bool):
    """gettext for a whole sentence whose placeholders are filled after translating:
    in HTML the sentence is escaped and so is every value but a Markup link."""
    def say(message: str, **values) -> str:
        translated = gettext(message)
        return escape(translated) % values if html else translated % values
    return say


def _sentence(consultation: ConsultationRequest, language: str, html: bool) -> str:
    gettext = _say(html)
    start = consultation.starts_at
    if start is None:
        return _reply_promise(consultation, language, gettext)
    when = {"day": format_day(as_utc(start).astimezone(PACIFIC).date(), language),
            "time": format_time(as_utc(start), language)}
    therapist = consultation.therapist
    name = therapist.name if therapist else None
    link = video_link(consultation)
    if link:
        shown = Markup('<a href="{0}">{0}</a>').format(link) if html else link
        if name:
            return gettext("Join %(therapist)s by video at %(link)s on %(day)s, %(time)s PT.",
                           therapist=name, link=shown, **when)
        return gettext("Join by video at %(link)s on %(day)s, %(time)s PT.", link=shown, **when)
    if consultation.meeting == "phone":
        phone = display_phone(consultation.phone)
        if name:
            return gettext("%(therapist)s will call you at %(phone)s on %(day)s, %(time)s PT.",
                           therapist=name, phone=phone, **when)
        return gettext("Your therapist will call you at %(phone)s on %(day)s, %(time)s PT.",
                       phone=phone, **when)
    # Made before the journey asked how to meet.
    if name:
        return gettext("Your consultation with %(therapist)s is on %(day)s, %(time)s PT.",
                       therapist=name, **when)
    return gettext("Your consultation is on %(day)s, %(time)s PT.", **when)


def _reply_promise(consultation: ConsultationRequest, language: str, gettext) -> str:
    within = translate(current_app.config["REPLY_WITHIN"])
    day = reply_promise.reply_day(consultation.created_at, language)
    method = CONTACT_METHODS.get(consultation.preferred_contact or "")
    if method:
        return gettext("We'll reply within %(within)s, by the end of %(day)s: we'll contact you "
                       "by %(method)s to find a time that works for you.",
                       within=within, day=day, method=translate(method).lower())
    return gettext("We'll reply within %(within)s, by the end of %(day)s, to find a time that "
                   "works for you.", within=within, day=day)
