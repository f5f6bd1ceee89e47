"""The waitlist in the back office: who is waiting for an earlier time, since when, and
the last time offered to them (see portal.booking.waitlist). Admins see everyone; a therapist
sees the waiting requests assigned to them, as on the request list."""

from __future__ import annotations

from flask import render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.admin.access import visible_requests
from portal.admin.blueprint import bp
from portal.admin.listing import page_numbers
from portal.booking import waitlist
from portal.extensions import db
from portal.models import ConsultationRequest


@bp.get("/waitlist")
def waitlist_list():
    page, per_page = page_numbers(request.args)
    waiting = visible_requests(waitlist.waiting())
    total = db.session.scalar(select(func.count()).select_from(waiting.order_by(None).subquery()))
    rows = db.session.scalars(
        waiting.options(joinedload(ConsultationRequest.therapist))
        .limit(per_page).offset((page - 1) * per_page)).all()
    return render_template(
        "admin/waitlist.html", rows=rows, total=total, page=page, per_page=per_page,
        offers=waitlist.last_offers(r.id for r in rows),
        page_url=lambda n: url_for("admin.waitlist_list", per_page=per_page, page=n))
