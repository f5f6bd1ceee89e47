"""The back office's blueprint and what runs before each of its pages.

Every page needs a signed-in user within the session's limits (checked once,
before each request, so a new page cannot forget it); admin-only pages say so
with :func:`portal.admin.access.admin_required`. Every POST starts a write
transaction before it loads what it changes, so on SQLite a read-then-write
never meets another writer's commit halfway ("database is locked").
"""

from __future__ import annotations

from flask import Blueprint, request
from flask_login import current_user

from portal.auth.sessions import enforce_session_limits, send_to_sign_in
from portal.database import begin_write
from portal.models import as_utc
from portal.scheduling import PACIFIC, format_time

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.app_template_filter("pacific")
def pacific_datetime(value) -> str:
    """A stored (naive UTC) or aware time for staff, e.g. "Dec 1, 2026, 10:00 AM PT"."""
    if value is None:
        return "—"
    local = as_utc(value).astimezone(PACIFIC)
    return f"{local:%b} {local.day}, {local.year}, {format_time(local)} PT"


@bp.before_request
def require_sign_in():
    if not current_user.is_authenticated:
        return send_to_sign_in()
    expired = enforce_session_limits()
    if expired is not None:
        return expired
    if request.method == "POST":
        begin_write()
    return None
