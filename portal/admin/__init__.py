"""The back office: admins and therapists work the requests.

Every page here needs a signed-in user (checked once, before each request,
so a new page cannot forget it); admin-only pages say so with
:func:`portal.admin.access.admin_required`.
"""

from flask import Blueprint
from flask_login import current_user

from portal.extensions import login_manager
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
        return login_manager.unauthorized()
    from portal.auth.views import enforce_idle_timeout

    return enforce_idle_timeout()


from portal.admin import (  # noqa: E402,F401  (routes register on bp)
    audit_log,
    dashboard,
    export,
    outbox,
    request_actions,
    requests,
    therapists,
    users,
)
