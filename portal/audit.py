"""The audit trail: who viewed, exported or changed what. Rows are only inserted."""

from __future__ import annotations

import json
from typing import Any

from portal.extensions import db
from portal.models import AuditEvent, User


def record(action: str, *, actor: User | str | None = None, request_id: int | None = None,
           **detail: Any) -> AuditEvent:
    """Add an audit row to the session (the caller commits with its own change).

    ``actor`` is a back-office user, or a word for who acted otherwise
    ("client", "system"). ``detail`` is stored as JSON and must hold no
    client details beyond ids and filters.
    """
    if isinstance(actor, User):
        actor_id, actor_label = actor.id, actor.email
    else:
        actor_id, actor_label = None, actor or "system"
    event = AuditEvent(
        actor_id=actor_id, actor=actor_label, action=action, request_id=request_id,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else "",
    )
    db.session.add(event)
    return event
