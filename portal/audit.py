"""The audit trail: who viewed, exported or changed what. Rows are only inserted.

The trail outlives the requests it speaks of (deleting or purging a request
leaves its lines), so a line carries ids, statuses, times and the request's
reference, never a client's name, email, phone, message, ZIP or notes. ``record``
enforces that: a detail under a personal key, or a text that looks like an email
address or a phone number, is stored as "[withheld]" and logged (without the
value) so the call can be fixed.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from portal.extensions import db
from portal.models import AuditEvent
from portal.staff.models import User

log = logging.getLogger("portal.audit")

WITHHELD = "[withheld]"
PERSONAL_KEYS = frozenset({
    "first_name", "last_name", "name", "full_name", "preferred_name", "email", "phone",
    "message", "zip", "zip_code", "note", "notes", "body", "q", "query", "search_text",
    "recipient", "address", "code",
})
_LOOKS_PERSONAL = (
    re.compile(r"[^@\s]@[^@\s]"),  # an email address
    re.compile(r"\+\d{10,15}(?!\d)"),  # a phone number as stored (E.164)
    re.compile(r"(?<!\d)\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?!\d)"),  # as typed (not a date)
)


def record(action: str, *, actor: User | str | None = None, request_id: int | None = None,
           **detail: Any) -> AuditEvent:
    """Add an audit row to the session (the caller commits with its own change).

    ``actor`` is a back-office user, or a word for who acted otherwise
    ("client", "system"). ``detail`` is stored as JSON: ids, statuses, filters,
    times, the reference; anything personal in it is withheld (see the module).
    """
    if isinstance(actor, User):
        actor_id, actor_label = actor.id, actor.email
    else:
        actor_id, actor_label = None, actor or "system"
    detail = {key: _safe(action, key, value) for key, value in detail.items()}
    event = AuditEvent(
        actor_id=actor_id, actor=actor_label, action=action, request_id=request_id,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else "",
    )
    db.session.add(event)
    return event


def _safe(action: str, key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _safe(action, f"{key}.{k}", v) for k, v in value.items()}
    name = key.rpartition(".")[2]
    personal = name.lower() in PERSONAL_KEYS or (
        isinstance(value, str) and any(p.search(value) for p in _LOOKS_PERSONAL))
    if personal and value not in (None, "", True, False):
        log.error("audit %s: detail %r withheld (it may hold client data)", action, key)
        return WITHHELD
    return value
