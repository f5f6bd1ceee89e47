"""Rendered HTML kept and reused: the page chrome every public page repeats word for
word (``page_chrome``), and ``rendered``, which the details page's kept questions use
too (portal.public.details_page).

The "Exit this page" button, the crisis banner and the footer follow only from the
language, the app's settings (practice name, reply time, exit address), where the
app is mounted and, for the banner, its note ("This form is not for emergencies." on
pages with a form). Each is rendered once per such key and reused, instead of running a
dozen translations through Jinja on every page. Nothing of the visitor is in them.
"""

from __future__ import annotations

from flask import Flask, current_app, render_template, request
from markupsafe import Markup

from portal.i18n import current_language
from portal.lru_cache import LruCache


def init_app(app: Flask) -> None:
    # A global, not a context processor: base.html calls it on every page.
    app.jinja_env.globals["page_chrome"] = page_chrome


def page_chrome(part: str, note: str = "") -> Markup:
    """templates/chrome/<part>.html as this page shows it, rendered once per key."""
    config = current_app.config
    key = (part, current_language(), request.script_root, str(note),
           config["PRACTICE_NAME"], config["REPLY_WITHIN"], config["EXIT_URL"])
    kept = current_app.extensions.setdefault("page_chrome", LruCache(32))
    return kept.get_or_make(key, lambda: rendered(f"chrome/{part}.html", note=note))


def rendered(template: str, **context) -> Markup:
    """A template's output as markup, to be kept and placed in a page as the HTML it is.
    The one reviewed use of ``Markup`` on rendered text (tests/test_security.py): the
    template is autoescaped like every page, so what it holds is escaped already."""
    return Markup(render_template(template, **context))  # noqa: S704
