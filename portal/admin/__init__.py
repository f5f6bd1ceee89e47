"""The back office: admins and therapists work the requests.

The blueprint lives in :mod:`portal.admin.blueprint`; importing the view
modules here registers their routes on it.
"""

from portal.admin import (  # noqa: F401  (importing a view module registers its routes)
    audit_log,
    calendars,
    dashboard,
    declines,
    export,
    outbox,
    request_actions,
    requests,
    therapists,
    users,
    waitlist,
    wording,
)
from portal.admin.blueprint import bp

__all__ = ["bp"]
