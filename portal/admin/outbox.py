"""The email outbox (admins only): what was queued, sent or failed, and a retry
for failed messages. Lists show no message bodies: those hold client details."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from portal import audit
from portal.admin.access import actor, admin_required
from portal.admin.blueprint import bp
from portal.admin.listing import page_numbers
from portal.extensions import db
from portal.messages import upkeep
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import OUTBOX_STATES, OutboxState
from portal.web.transaction import flash_when_saved


@bp.get("/outbox")
@admin_required
def outbox_list():
    state = request.args.get("status", "")
    page, per_page = page_numbers(request.args)
    stmt = select(OutboxEmail)
    if state in OUTBOX_STATES:
        stmt = stmt.where(OutboxEmail.status == state)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    emails = db.session.scalars(stmt.order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
                                .limit(per_page).offset((page - 1) * per_page)).all()
    counts = dict(db.session.execute(select(OutboxEmail.status, func.count())
                                     .group_by(OutboxEmail.status)).all())
    return render_template("admin/outbox.html", emails=emails, total=total, page=page,
                           per_page=per_page, state=state, states=OUTBOX_STATES, counts=counts,
                           page_url=lambda n: url_for("admin.outbox_list", status=state, page=n))


@bp.post("/outbox/<int:email_id>/retry")
@admin_required
def outbox_retry(email_id: int):
    email = db.get_or_404(OutboxEmail, email_id)
    if email.status != OutboxState.FAILED:
        flash("Only a failed email can be retried.", "error")
        return redirect(url_for("admin.outbox_list"))
    if email.body_text is None:
        flash(f"Email {email.id} can't be sent again: its content was already deleted.", "error")
        return redirect(url_for("admin.outbox_list", status=OutboxState.FAILED))
    # A fresh run of attempts, due now, once someone has looked at the failure.
    upkeep.retry_failed(email.id)
    audit.record("email_retried", actor=actor(), request_id=email.request_id, email_id=email.id)
    flash_when_saved(f"Email {email.id} is queued again.", "info")
    return redirect(url_for("admin.outbox_list", status=OutboxState.FAILED))


@bp.post("/outbox/retry-failed")
@admin_required
def outbox_retry_all():
    count = upkeep.retry_failed()
    audit.record("emails_retried", actor=actor(), count=count)
    flash_when_saved(f"{count} failed email{'s are' if count != 1 else ' is'} queued again.",
                     "info")
    return redirect(url_for("admin.outbox_list", status=OutboxState.QUEUED))
