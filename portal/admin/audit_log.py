"""The audit log (admins only): read-only, newest first, filterable."""

from __future__ import annotations

from flask import render_template, request, url_for
from sqlalchemy import func, select

from portal.admin.access import admin_required
from portal.admin.blueprint import bp
from portal.admin.forms import AuditFilterForm
from portal.admin.listing import page_numbers
from portal.admin.wording import therapist_names
from portal.extensions import db
from portal.models import AuditEvent
from portal.staff.accounts import staff_email_key
from portal.web.numbers import parse_id


def audit_filters(form: AuditFilterForm) -> dict[str, str]:
    """The validated filter values, by field name; also what page links carry."""
    values = {name: (form[name].data or "").strip() for name in ("action", "actor", "request_id")}
    values["actor"] = staff_email_key(values["actor"])  # as users' emails are stored
    request_id = parse_id(values["request_id"])
    values["request_id"] = str(request_id) if request_id is not None else ""
    return {name: value for name, value in values.items() if value and not form[name].errors}


@bp.get("/audit")
@admin_required
def audit_log():
    form = AuditFilterForm(request.args)
    form.validate()
    filters = audit_filters(form)
    page, per_page = page_numbers(request.args)
    stmt = select(AuditEvent)
    if "action" in filters:
        stmt = stmt.where(AuditEvent.action == filters["action"])
    if "actor" in filters:
        # Equality uses the actor index; without "@" it is the start of an email.
        actor = filters["actor"]
        stmt = stmt.where(AuditEvent.actor == actor if "@" in actor
                          else AuditEvent.actor.startswith(actor, autoescape=True))
    if "request_id" in filters:
        stmt = stmt.where(AuditEvent.request_id == parse_id(filters["request_id"]))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    events = db.session.scalars(stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                .limit(per_page).offset((page - 1) * per_page)).all()
    return render_template(
        "admin/audit.html", form=form, events=events, total=total, page=page, per_page=per_page,
        therapist_names=therapist_names(),
        page_url=lambda n: url_for("admin.audit_log", **filters, per_page=per_page, page=n),
    )
