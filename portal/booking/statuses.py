"""The statuses of a consultation request, as one type, with the groups the rest of the
portal asks about (open, released, over, …) and their SQL for the partial indexes.

The values are what the ``status`` column stores; a member compares equal to its
value, so rows read back as plain text still match. No other module spells a status
out: the test ``tests/test_vocabulary.py`` looks for stray ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from portal.i18n import N_


class RequestStatus(StrEnum):
    # Stored at the request flow's check step, waiting for the code emailed to the
    # address given. It holds its time but is not open (staff never see it) and goes
    # unless verified.
    PENDING = "pending"
    NEW = "new"
    CONTACTED = "contacted"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    NOT_A_FIT = "not_a_fit"


# Requests staff work on; one per email address (uq_open_request_email).
OPEN_STATUSES = (RequestStatus.NEW, RequestStatus.CONTACTED, RequestStatus.SCHEDULED)
# The consultation took place, or the client did not come.
OVER_STATUSES = (RequestStatus.COMPLETED, RequestStatus.NO_SHOW)
# A request in these no longer holds its therapist's time.
RELEASED_STATUSES = (RequestStatus.CANCELLED, RequestStatus.NOT_A_FIT)
# What staff see and set, in the order of the status select; never "pending".
STAFF_STATUSES = (*OPEN_STATUSES, *OVER_STATUSES, *RELEASED_STATUSES)
ALL_STATUSES = (RequestStatus.PENDING, *STAFF_STATUSES)
# Still waiting for a time from the waitlist (portal.booking.waitlist).
WAITING_STATUSES = (RequestStatus.NEW, RequestStatus.CONTACTED)
# The consultation is over or will not happen: retention may delete them.
CLOSED_STATUSES = (*OVER_STATUSES, *RELEASED_STATUSES)

# What staff read for each (translatable); "pending" has none: staff never see it.
STATUS_LABELS = {
    RequestStatus.NEW: N_("New"),
    RequestStatus.CONTACTED: N_("Contacted"),
    RequestStatus.SCHEDULED: N_("Scheduled"),
    RequestStatus.COMPLETED: N_("Completed"),
    RequestStatus.NO_SHOW: N_("No-show"),
    RequestStatus.CANCELLED: N_("Canceled"),
    RequestStatus.NOT_A_FIT: N_("Not a fit"),
}


def sql_list(statuses: Iterable[RequestStatus]) -> str:
    """``('new', 'contacted')``: statuses as an SQL list, for index conditions."""
    return "(" + ", ".join(f"'{status}'" for status in statuses) + ")"


# The partial indexes' conditions (also read by raw SQL that must match them).
OPEN_SQL = f"status IN {sql_list(OPEN_STATUSES)}"
HOLDS_SLOT_SQL = f"status NOT IN {sql_list(RELEASED_STATUSES)} AND slot_start IS NOT NULL"
