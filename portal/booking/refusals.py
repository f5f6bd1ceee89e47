"""The base of changes staff ask for that the portal turns down, with a reason to show."""

from __future__ import annotations


class Refused(Exception):
    """A change that cannot be made; ``message`` says why, for staff."""

    message = "That change can't be made."  # for staff: the back office speaks English

    def __str__(self) -> str:
        return self.message
