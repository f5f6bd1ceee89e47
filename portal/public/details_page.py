"""The time page's questions (public/_time_fields.html), and the copy of them
that a fresh visit reuses.

Most of the details page's cost is writing out its questions: a hundred time radios,
the other radio groups and inputs through the form macros, each label through gettext.
On a fresh visit (a GET, no pending request of this browser, nothing typed, no
errors) those questions hold nothing of the visitor: they follow only from the
language, the therapist choice, the bookable therapists and the free times shown. So
that HTML is kept, keyed by exactly those, and reused; the per-visitor parts of the
page (the CSRF and form tokens, the error summary) are outside it and rendered each
time.

The free times shown are part of the key (worked out from the database, or reused while
its availability version says nothing changed: portal.booking.availability), so a
booking made a moment ago changes the key: a reused copy never shows a time that the
database has since given away, and never hides a time it has freed. Nothing a visitor
typed is ever kept (a page that shows their answers is rendered afresh and not stored).
Booking itself does not rely on the page: the POST checks the chosen time again under
the write lock (portal.booking.consultations).
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import current_app, request
from markupsafe import Markup

from portal.booking.therapists import Therapist
from portal.i18n import current_language
from portal.lru_cache import LruCache
from portal.public.slot_choices import SlotDay
from portal.web.fragments import rendered

# Copies kept per app: one per (language, therapist choice) for the current free times,
# and a few stale ones that age out as bookings change the times.
KEPT = 64


def fragment_cache() -> LruCache[Markup]:
    """This app's cache (each app its own: its settings and translations shape the HTML)."""
    return current_app.extensions.setdefault("details_questions", LruCache(KEPT))


def fresh_key(choice: str, therapists: Sequence[Therapist], days: Sequence[SlotDay]) -> tuple:
    """Everything a fresh visit's questions follow from. A time's words follow from its
    value and the language; a therapist's from their id, name and license."""
    config = current_app.config
    return (
        current_language(), request.script_root, choice,
        tuple((t.id, t.name, t.licence_type, t.licence_number) for t in therapists),
        tuple(time.value for day in days for time in day.times),
        config["PRIVACY_NOTICE_VERSION"], config["REPLY_WITHIN"],
    )


def render_questions(context: dict, *, fresh: bool) -> Markup:
    """The form's questions. ``fresh``: a GET with nothing typed and no errors, whose
    HTML may be kept and reused (see the module's note); anything else is rendered afresh."""
    def render() -> Markup:
        return rendered("public/_time_fields.html", **context)

    if not fresh:
        return render()
    key = fresh_key(context["choice"], context["therapists"], context["days"])
    return fragment_cache().get_or_make(key, render)
