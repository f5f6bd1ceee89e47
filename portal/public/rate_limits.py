"""The rate limits on the public POSTs, and what a person sees when one is reached.

What counts. Every POST, answered or not, counts against the generous
CONSULTATION_ATTEMPT_LIMIT, so a flood of anything still stops. Only progress
that matters counts against the tight CONSULTATION_RATE_LIMIT: a POST that
redirects onwards — an eligible answer (on to the time), a stored request (on to
"check your email"), a cancellation or a new time. A not-eligible answer (it
redirects to the not-eligible page, stores nothing personal), an "under 18"
answer (the young people's page, nothing stored) and a bounce back to step 1
do not count, and neither does a form that comes back with errors (a redirect to the
same page, which shows them) or a step of the journey in between: a person
fixing mistakes round trip after round trip, or people sharing one address (a
clinic's Wi-Fi, a mobile carrier's), must not lose the form to a limit meant
for scripts. The not-eligible count a flood could inflate is anonymous and
still bounded by the attempt limit.

What a person sees. A limited form POST comes back as the same form, with what
was typed, and a message that says how long to wait in words (the same wait as
the Retry-After header), the practice's phone number and 988: status 429 all the
same. Pages register how to redraw themselves with :func:`when_limited`; any
other limited POST gets the rate-limit page with the same words.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Response, current_app, make_response, render_template, request, url_for
from flask_babel import gettext, ngettext

from portal.extensions import limiter

# Endpoint -> a function that redraws that page's form from the posted answers with
# a form-level message, returning the page's HTML.
_LIMITED_PAGES: dict[str, Callable[[str], str]] = {}

# Redirects that are no progress: they never count against the tight limit. The
# journey's middle steps (on to "about you", to "check your answers") are no progress
# either: a request counts once, at step 1 and when it is sent.
_NOT_PROGRESS = ("public.not_eligible", "public.eligibility", "public.young_people",
                 "public.about", "public.check")


def _completed_limit() -> str:
    return current_app.config["CONSULTATION_RATE_LIMIT"]


def _attempt_limit() -> str:
    return current_app.config["CONSULTATION_ATTEMPT_LIMIT"]


def _made_progress(response: Response) -> bool:
    if response.status_code not in (302, 303):
        return False
    target = urlsplit(response.location or "").path
    if target == request.path:  # the same page again, to show what needs fixing
        return False
    return target not in {url_for(endpoint) for endpoint in _NOT_PROGRESS}


def wait_in_words(seconds: float) -> str:
    """A wait as people say it, rounded up: "about 1 minute", "about 52 minutes",
    "about 2 hours"."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 90:
        return ngettext("about %(num)s minute", "about %(num)s minutes", minutes)
    hours = round(minutes / 60)
    return ngettext("about %(num)s hour", "about %(num)s hours", hours)


def seconds_to_wait() -> int:
    """The wait the Retry-After header will give: Flask-Limiter's header limit's reset."""
    current = limiter.current_limit
    try:
        return max(0, int(current.reset_at - time.time())) if current is not None else 60
    except Exception:  # noqa: BLE001 - the storage went away just now: a minute, as words
        return 60


def limited_message(wait: str) -> str:
    phone = current_app.config["PRACTICE_PHONE"]
    return gettext("This form has been sent many times from your internet connection, so "
                   "we've paused it for %(wait)s. Everything you typed is still here: you can "
                   "send it again after that. To talk with us sooner, call us at %(phone)s. If "
                   "you need help now, call or text 988.", wait=wait, phone=phone)


def _limited_page(_request_limit) -> Response:
    """Flask-Limiter's on_breach: the response for a limited POST (it raises
    RateLimitExceeded carrying it; portal.web.errors returns it as it is)."""
    wait = wait_in_words(seconds_to_wait())
    redraw = _LIMITED_PAGES.get(request.endpoint or "")
    page = redraw(limited_message(wait)) if redraw is not None else None
    if page is None:
        page = render_template("errors/rate_limited.html", wait=wait)
    return make_response(page, 429)


def when_limited(endpoint: str) -> Callable:
    """Register how ``endpoint`` redraws its form, with the posted answers and the
    given message, when a POST to it is limited. The function may return None (it
    can't redraw, e.g. a session that ran out): the plain rate-limit page then."""
    def register(redraw: Callable[[str], str | None]) -> Callable[[str], str | None]:
        _LIMITED_PAGES[endpoint] = redraw
        return redraw
    return register


_count_completed = limiter.limit(_completed_limit, methods=["POST"],
                                 deduct_when=_made_progress, on_breach=_limited_page)
# Its own scope, so the two counters never share a key even if configured alike.
_count_attempts = limiter.limit(_attempt_limit, methods=["POST"], on_breach=_limited_page,
                                scope=lambda endpoint: f"{endpoint}:attempts")


def limit_posts(view: Callable) -> Callable:
    return _count_completed(_count_attempts(view))


def limit_attempts(view: Callable) -> Callable:
    """Only the attempt limit: for the verify step, where a request was counted already
    when it was made, and wrong codes are capped per request."""
    return _count_attempts(view)
