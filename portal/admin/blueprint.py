"""The back office's blueprint and what runs before each of its pages.

Every page needs a signed-in user within the session's limits (checked once,
before each request, so a new page cannot forget it); admin-only pages say so
with :func:`portal.admin.access.admin_required`. Every POST, and the request
detail page (each view of it writes an audit line), starts a write transaction
before anything is loaded, the signed-in user included: on SQLite a
read-then-write then never meets another writer's commit halfway ("database is
locked"), and nothing loaded in a read transaction has to be loaded again.

The blueprint owns that transaction (:class:`OwnedBlueprint`): each such page runs
inside :func:`portal.web.transaction.writes`, committed once when the view returns
and rolled back when it raises. A page that must end its transaction halfway (the
calendar test reads the network with no lock held) says so with
:func:`own_transactions` and uses :func:`~portal.web.transaction.writing` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, request, session, url_for

from portal.auth.sessions import require_signed_in
from portal.booking.scheduling import PACIFIC, format_time
from portal.models import as_utc
from portal.web.transaction import writes

#: GET pages that write (an audit line) and so begin a write transaction too.
WRITING_PAGES = frozenset({"admin.request_detail"})


def writes_here() -> bool:
    return request.method == "POST" or request.endpoint in WRITING_PAGES


def own_transactions(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view that begins and commits its writes itself (``with writing()``)."""
    view.owns_transactions = True  # type: ignore[attr-defined]
    return view


class OwnedBlueprint(Blueprint):
    """A blueprint whose POSTs and writing pages each run in one write transaction."""

    def add_url_rule(self, rule: str, endpoint: str | None = None,
                     view_func: Callable[..., Any] | None = None, **options: Any) -> None:
        if view_func is not None and not getattr(view_func, "owns_transactions", False):
            view_func = in_its_transaction(view_func)
        super().add_url_rule(rule, endpoint, view_func, **options)


def in_its_transaction(view: Callable[..., Any]) -> Callable[..., Any]:
    written = writes(view)

    @wraps(view)
    def page(*args: Any, **kwargs: Any) -> Any:
        return written(*args, **kwargs) if writes_here() else view(*args, **kwargs)

    return page


bp = OwnedBlueprint("admin", __name__, url_prefix="/admin")


@bp.app_template_filter("pacific")
def pacific_datetime(value) -> str:
    """A stored (naive UTC) or aware time for staff, e.g. "Dec 1, 2026, 10:00 AM PT"."""
    if value is None:
        return "—"
    local = as_utc(value).astimezone(PACIFIC)
    return f"{local:%b} {local.day}, {local.year}, {format_time(local)} PT"


#: Session key: the request a POST just changed and redirected back to.
CHANGED_KEY = "admin_changed_request"


@bp.after_request
def remember_change(response):
    """After a POST on a request that redirects to its page, mark it so the page that
    follows is not audited as another view (requests.just_changed)."""
    request_id = (request.view_args or {}).get("request_id")
    if (request.method == "POST" and request_id is not None and response.status_code in (302, 303)
            and urlsplit(response.location or "").path
            == url_for("admin.request_detail", request_id=request_id)):
        session[CHANGED_KEY] = request_id
    return response


@bp.before_request
def require_sign_in():
    return require_signed_in(write=writes_here())
