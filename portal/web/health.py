"""Liveness and database check for load balancers and monitors.

``GET /healthz`` stays minimal for everyone. ``GET /healthz?detail=1`` adds the
checks of ``flask --app portal check`` for operators who send
``Authorization: Bearer <HEALTHZ_TOKEN>``. A token and not "from loopback only":
behind a reverse proxy every request comes from the proxy's loopback address,
so loopback would open the detail to the whole internet. Without HEALTHZ_TOKEN
the detail is off. The detail also says whether Redis, the rate limits' storage,
answers: while it does not, each process counts on its own (see extensions).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from portal import readiness
from portal.extensions import db, limiter

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz():
    # Only detail=1 asks for it: detail=0 (or a monitor's empty detail=) is the minimal answer.
    if request.args.get("detail") == "1":
        return detail()
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


def detail():
    if not _has_token():
        return ({"status": "unauthorized"}, 401,
                {"WWW-Authenticate": 'Bearer realm="healthz"'})
    problems = readiness.run_checks(current_app._get_current_object())
    unreachable = any(problem.id == "database.E001" for problem in problems)
    failed = readiness.has_errors(problems)
    body = {
        "status": "error" if failed else "warning" if problems else "ok",
        "database": "unreachable" if unreachable else "ok",
        "redis": _redis_state(),
        "problems": [problem.as_dict() for problem in problems],
    }
    return body, 503 if failed else 200


def _redis_state() -> str:
    """"ok", "unreachable", or "not used" (rate limits off or counted in memory)."""
    uri = str(current_app.config.get("RATELIMIT_STORAGE_URI") or "")
    if not limiter.enabled or not uri.startswith(("redis://", "rediss://")):
        return "not used"
    try:
        return "ok" if limiter.storage.check() else "unreachable"
    except Exception:  # noqa: BLE001 - whatever the client raises, it did not answer
        return "unreachable"


def _has_token() -> bool:
    expected = current_app.config.get("HEALTHZ_TOKEN") or ""
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), str(expected).encode())
