"""The language a client reads: English or Spanish (Flask-Babel).

The visitor's choice (the "Español" / "English" link on every public page, kept in
the session) wins, then the browser's ``Accept-Language``, then English. The back
office and the staff's own pages stay in English whatever the browser says. A
request stores the language it was made in, so the emails sent about it later (a
reminder, a change, a decline) speak it too (see ``in_language``), and so does every
page opened from one of them (see ``follow_request``): a Spanish client's manage link
opened in a phone's mail app, whose browser says English, is in Spanish until the
visitor switches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from flask import Flask, current_app, g, has_app_context, has_request_context, request, session
from flask_babel import force_locale, get_locale, get_translations, gettext, refresh
from flask_babel.speaklater import LazyString
from markupsafe import escape

from portal.extensions import babel

LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"
# Pages for staff: English only.
ENGLISH_ONLY_BLUEPRINTS = frozenset({"admin", "auth", "health"})
CHOICE_ARG = "lang"


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_language,
                   default_translation_directories="translations")
    # {% trans %} blocks read as one line, so a template's line breaks don't reach the
    # catalog (babel.cfg extracts them the same way).
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: catalog().ugettext(s),
        ngettext=lambda s, p, n: catalog().ungettext(s, p, n),
        pgettext=lambda c, s: catalog().upgettext(c, s),
        npgettext=lambda c, s, p, n: catalog().unpgettext(c, s, p, n),
        newstyle=True)
    app.before_request(remember_choice)
    app.after_request(vary_on_language)
    # Globals, not a context processor: imported macros see them too.
    app.jinja_env.globals.update(current_language=current_language,
                                 language_links=language_links, translate=translate)


def _for_clients() -> bool:
    return request.blueprint not in ENGLISH_ONLY_BLUEPRINTS


def offered() -> list[str]:
    """The languages clients may choose (the setting ``CLIENT_LANGUAGES``)."""
    return [code for code in current_app.config["CLIENT_LANGUAGES"] if code in LANGUAGES]


def select_language() -> str:
    if not has_request_context() or not _for_clients():
        return DEFAULT_LANGUAGE
    languages = offered()
    chosen = request.args.get(CHOICE_ARG) or session.get(CHOICE_ARG)
    if chosen in languages:
        return chosen
    stored = g.get("request_language")
    if stored in languages:
        return stored
    return request.accept_languages.best_match(languages, DEFAULT_LANGUAGE)


def follow_request(language: str | None) -> None:
    """This page is about a stored request (its manage, cancel, reschedule, waitlist
    offer or rebook page, opened from one of its emails): speak the request's language
    rather than the browser's, unless the visitor has chosen one."""
    if g.get("request_language") != language:
        g.request_language = language
        refresh()  # the locale may have been read already in this request


def remember_choice() -> None:
    """``?lang=es`` on any public page switches the language and keeps it."""
    chosen = request.args.get(CHOICE_ARG)
    if chosen in offered() and _for_clients() and session.get(CHOICE_ARG) != chosen:
        session[CHOICE_ARG] = chosen


def vary_on_language(response):
    if _for_clients() and not session.get(CHOICE_ARG):
        response.vary.add("Accept-Language")
    return response


def catalog():
    """The translations of the language being rendered. Flask-Babel finds them through
    several context lookups and the locale's name for every string; a page of forty
    strings paid that forty times. They are kept beside the locale they are for (the
    one Flask-Babel keeps for this request), so a change of language inside a request
    (``force_locale`` for an email, ``refresh`` in ``follow_request``) finds its own."""
    state = g.get("_flask_babel") if has_app_context() else None
    locale = getattr(state, "babel_locale", None)
    if locale is None:
        return get_translations()  # the locale is chosen and kept by this first call
    kept = getattr(state, "portal_catalog", None)
    if kept is not None and kept[0] is locale:
        return kept[1]
    translations = get_translations()
    state.portal_catalog = (locale, translations)
    return translations


def fast_gettext(string: str, **variables) -> str:
    """Flask-Babel's ``gettext``, through ``catalog``."""
    translated = catalog().ugettext(string)
    return translated % variables if variables else translated


def current_language() -> str:
    locale = get_locale()
    language = locale.language if locale is not None else DEFAULT_LANGUAGE
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def language_links() -> list[dict]:
    """The other languages, each a link to this same page in it (a GET: the answers
    already in the session stay)."""
    if not has_request_context() or not _for_clients():
        return []
    args = request.args.to_dict(flat=False)
    links = []
    for code in offered():
        name = LANGUAGES[code]
        if code == current_language():
            continue
        query = urlencode({**args, CHOICE_ARG: [code]}, doseq=True)
        links.append({"code": code, "name": name, "url": f"{request.path}?{query}"})
    return links


@contextmanager
def in_language(language: str | None) -> Iterator[None]:
    """Render in ``language`` (a stored request's), whatever the current request's is."""
    with force_locale(language if language in LANGUAGES else DEFAULT_LANGUAGE):
        yield


def translate(text: str) -> str:
    """``text`` (marked with ``N_`` or from a setting) in the current language, as plain
    text: Jinja's ``_()`` marks what it returns as safe markup, which text from a
    setting is not."""
    return gettext(text) if text else ""


class LazyText(LazyString):
    """Text translated when it is shown. Unlike Flask-Babel's own lazy strings, which
    Jinja takes as markup as they are, it is escaped like any other text: a message
    may carry what a visitor typed (``%(suggestion)s``)."""

    def __html__(self) -> str:
        return str(escape(str(self)))


def lazy_gettext(string: str, **variables) -> LazyText:
    return LazyText(fast_gettext, string, **variables)


_l = lazy_gettext


def N_(text: str) -> str:  # noqa: N802 (gettext's name for it)
    """Mark ``text`` for the catalog and leave it as it is: the page that shows it
    translates it (``_l(text)`` or ``_(text)``), the back office and exports keep English."""
    return text


# Text that reaches templates from settings, marked here so that it is extracted.
SETTINGS_TEXT = (_l("one business day"),
                 # how a client asked to be contacted, as emails name it
                 _l("email"), _l("phone call"), _l("text message"))
