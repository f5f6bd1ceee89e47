"""The audit log (admins only): read-only, newest first, filterable."""

from __future__ import annotations

from flask import render_template, request, url_for
from sqlalchemy import func, select

from portal.admin import bp
from portal.admin.access import admin_required
from portal.admin.forms import AuditFilterForm
from portal.admin.listing import page_numbers
from portal.extensions import db
from portal.models import AuditEvent


@bp.get("/audit")
@admin_required
def audit_log():
    form = AuditFilterForm(request.args)
    form.validate()
    page, per_page = page_numbers(request.args)
    stmt = select(AuditEvent)
    if form.action.data:
        stmt = stmt.where(AuditEvent.action == form.action.data.strip())
    if form.actor.data:
        stmt = stmt.where(func.lower(AuditEvent.actor) == form.actor.data.strip().lower())
    if (form.request_id.data or "").strip().isdigit():
        stmt = stmt.where(AuditEvent.request_id == int(form.request_id.data))
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    events = db.session.scalars(stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                .limit(per_page).offset((page - 1) * per_page)).all()
    args = request.args.to_dict()
    return render_template(
        "admin/audit.html", form=form, events=events, total=total, page=page, per_page=per_page,
        page_url=lambda n: url_for("admin.audit_log", **{**args, "page": n}),
    )
