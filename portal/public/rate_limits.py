"""The rate limit on the public POSTs.

Only a POST that did something (it redirects) counts against
CONSULTATION_RATE_LIMIT: a person fixing errors round trip after round trip must
never lose the form to a 429. Every POST, answered or not, counts against the far
more generous CONSULTATION_ATTEMPT_LIMIT, so a flood of invalid posts still stops.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app

from portal.extensions import limiter


def _completed_limit() -> str:
    return current_app.config["CONSULTATION_RATE_LIMIT"]


def _attempt_limit() -> str:
    return current_app.config["CONSULTATION_ATTEMPT_LIMIT"]


def _did_something(response: Response) -> bool:
    return response.status_code in (302, 303)


_count_completed = limiter.limit(_completed_limit, methods=["POST"], deduct_when=_did_something)
# Its own scope, so the two counters never share a key even if configured alike.
_count_attempts = limiter.limit(_attempt_limit, methods=["POST"],
                                scope=lambda endpoint: f"{endpoint}:attempts")


def limit_posts(view: Callable) -> Callable:
    return _count_completed(_count_attempts(view))


def limit_attempts(view: Callable) -> Callable:
    """Only the attempt limit: for the verify step, where a request was counted already
    when it was made, and wrong codes are capped per request."""
    return _count_attempts(view)
