"""Rendered HTML kept and reused: the page chrome every public page repeats word for
word (``page_chrome``), and the small cache the details page's questions use too
(portal.public.details_page).

The "Exit this page" button, the crisis banner and the footer follow only from the
language, the app's settings (practice name, reply time, exit address), where the
app is mounted and, for the banner, its note ("This form is not for emergencies." on
pages with a form). Each is rendered once per such key and reused, instead of running a
dozen translations through Jinja on every page. Nothing of the visitor is in them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from threading import Lock

from flask import Flask, current_app, render_template, request
from markupsafe import Markup

from portal.i18n import current_language

# The chrome's parts: templates/chrome/<part>.html.
PARTS = frozenset({"exit_page", "crisis", "footer"})


class FragmentCache:
    """A small least-recently-used map of rendered HTML, safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Markup] = OrderedDict()
        self._lock = Lock()

    def get_or_render(self, key: Hashable, render: Callable[[], Markup]) -> Markup:
        with self._lock:
            html = self._items.get(key)
            if html is not None:
                self._items.move_to_end(key)
                return html
        html = render()
        with self._lock:
            self._items[key] = html
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return html

    def __len__(self) -> int:
        return len(self._items)


def init_app(app: Flask) -> None:
    # A global, not a context processor: base.html calls it on every page.
    app.jinja_env.globals["page_chrome"] = page_chrome


def page_chrome(part: str, note: str = "") -> Markup:
    """templates/chrome/<part>.html as this page shows it, rendered once per key."""
    if part not in PARTS:
        raise ValueError(f"no page chrome called {part!r}")
    config = current_app.config
    key = (part, current_language(), request.script_root, str(note),
           config["PRACTICE_NAME"], config["REPLY_WITHIN"], config["EXIT_URL"])
    cache = current_app.extensions.setdefault("page_chrome", FragmentCache(32))
    return cache.get_or_render(key, lambda: rendered(f"chrome/{part}.html", note=note))


def rendered(template: str, **context) -> Markup:
    """A template's output as markup, to be kept and placed in a page as the HTML it is.
    The one reviewed use of ``Markup`` on rendered text (tests/test_security.py): the
    template is autoescaped like every page, so what it holds is escaped already."""
    return Markup(render_template(template, **context))  # noqa: S704
