"""Why a calendar could not be read: a code word stored on the calendar, and the words
staff read on the dashboard and the therapist's page."""

from __future__ import annotations

ERRORS = {
    "unauthorized": "Wrong user name or password: the calendar server refused them (401).",
    "forbidden": "The calendar server refused access to this calendar (403).",
    "not_found": "Not found: nothing answers at this address any more (404). "
                 "The calendar may have been deleted, or its secret address reset.",
    "not_found_host": "Not found: this server name does not exist.",
    "timeout": "Timeout: the calendar server did not answer in time.",
    "connection": "Could not connect to the calendar server.",
    "tls": "The calendar server's certificate could not be verified.",
    "too_large": "Too large: the calendar is bigger than the portal reads; it was cut off.",
    "too_many_events": "Too many events: the calendar holds more events than the portal reads.",
    "too_slow": "Too many events to read in time: the coming weeks of this calendar hold "
                "more events than the portal can read in one go.",
    "not_calendar": "What this address returns is not a calendar.",
    "bad_address": "This is not a calendar address the portal can use.",
    "not_https": "The address must start with https://.",
    "refused_address": "Refused: this address is on a private network.",
    "too_many_redirects": "The address redirects too many times.",
    "server_error": "The calendar server answered with an error.",
}


class CalendarError(Exception):
    """A calendar that could not be read; ``code`` is a key of ERRORS."""

    def __init__(self, code: str, status: int | None = None):
        super().__init__(describe(code))  # what the outbox page shows a failed write
        self.code = code
        self.status = status

    @property
    def words(self) -> str:
        return describe(self.code)


def describe(code: str | None) -> str:
    if not code:
        return ""
    return ERRORS.get(code, "The calendar could not be read.")


def for_status(status: int) -> CalendarError:
    """An HTTP error status as a CalendarError."""
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 410: "not_found",
            413: "too_large"}.get(status, "server_error")
    return CalendarError(code, status)
