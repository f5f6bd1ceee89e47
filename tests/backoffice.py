"""Helpers for the back-office tests: sign in as a person would, and a small cast
of users and requests (an admin, two therapists with a user each)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent
from tests.factories import PASSWORD, future_slot, make_request, make_therapist, make_user

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str | None:
    found = TOKEN.search(html)
    return found.group(1) if found else None


def sign_in(client, email: str, password: str = PASSWORD, next_url: str | None = None,
            **environ):
    """Fill in the login page (with its CSRF token when CSRF is on) and submit it."""
    page = client.get("/admin/login", environ_base=environ)
    data = {"email": email, "password": password}
    token = csrf_token(page.get_data(as_text=True))
    if token:
        data["csrf_token"] = token
    url = "/admin/login" + (f"?next={quote(next_url, safe='')}" if next_url else "")
    return client.post(url, data=data, environ_base=environ)


@dataclass
class Cast:
    admin_email: str
    own_email: str  # therapist user for `mine`
    other_email: str
    therapist_id: int
    other_therapist_id: int
    mine: int  # request ids
    theirs: int
    admin_id: int


def make_cast(app) -> Cast:
    with app.app_context():
        therapist, other = make_therapist("Maya Alvarez"), make_therapist("Daniel Okafor")
        admin = make_user("admin@example.com")
        make_user("maya@example.com", role="therapist", therapist=therapist)
        make_user("daniel@example.com", role="therapist", therapist=other)
        mine = make_request(therapist, future_slot(days=3), first_name="Rosa",
                            last_name="Garcia")
        theirs = make_request(other, future_slot(days=4), first_name="Luis", last_name="Chen")
        db.session.commit()
        return Cast("admin@example.com", "maya@example.com", "daniel@example.com",
                    therapist.id, other.id, mine.id, theirs.id, admin.id)


def audit_actions(app, request_id: int | None = None) -> list[str]:
    with app.app_context():
        stmt = select(AuditEvent.action).order_by(AuditEvent.id)
        if request_id is not None:
            stmt = stmt.where(AuditEvent.request_id == request_id)
        return list(db.session.scalars(stmt))


def database_snapshot(app) -> dict[str, list]:
    """Every row of every table (in a stable order), so a test can say exactly what changed."""
    with app.app_context():
        return {table.name: sorted(map(tuple, db.session.execute(table.select())), key=repr)
                for table in db.metadata.sorted_tables}


# -- the second step -------------------------------------------------------------------

SECRET = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<')
RECOVERY = re.compile(r"<li><code>([a-z0-9-]+)</code></li>")


def secret_on_page(html: str) -> str:
    """The TOTP key the enrolment page shows as text (as a person would type it)."""
    return SECRET.search(html).group(1).replace(" ", "")


def totp(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or ``steps_ahead`` steps of 30 s later)."""
    import time

    import pyotp

    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def post_form(client, url: str, data: dict):
    """POST ``data`` to ``url`` with the CSRF token of the page at ``url`` (when CSRF is on)."""
    token = csrf_token(client.get(url).get_data(as_text=True))
    return client.post(url, data={**data, **({"csrf_token": token} if token else {})})


def enrol(client, email: str, password: str = PASSWORD) -> tuple[str, list[str]]:
    """Sign in for the first time with the second step required and set it up: the
    secret and the recovery codes, as the pages showed them."""
    response = sign_in(client, email, password)
    assert response.headers["Location"] == "/admin/login/enrol"
    secret = secret_on_page(client.get("/admin/login/enrol").get_data(as_text=True))
    page = post_form(client, "/admin/login/enrol", {"code": totp(secret)})
    codes = RECOVERY.findall(page.get_data(as_text=True))
    assert len(codes) == 10, page.get_data(as_text=True)
    return secret, codes


# -- races on PostgreSQL ----------------------------------------------------------------

def wait_for_lock_waiters(conn, count: int, patience: float = 20.0) -> int:
    """Until ``count`` other sessions of this database wait for a lock (or patience
    runs out); how many do. Synchronisation only: the outcome is asserted elsewhere."""
    deadline = time.monotonic() + patience
    while True:
        waiting = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchone()[0]
        if waiting >= count or time.monotonic() > deadline:
            return waiting
        time.sleep(0.02)
