"""Therapists (admins only): details and licence, weekly hours, time off, and
deactivation. Free times are computed from these rows on every request, so a
change shows on the public pages at once."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import audit
from portal.admin.access import actor, admin_required
from portal.admin.blueprint import bp
from portal.admin.calendars import calendar_panel
from portal.admin.forms import CalendarForm, HoursForm, TherapistForm, TimeOffForm
from portal.booking import waitlist
from portal.booking.scheduling import PACIFIC, WEEKDAYS
from portal.booking.statuses import OPEN_STATUSES
from portal.booking.therapists import Therapist, TimeOff, WeeklyHours
from portal.extensions import db
from portal.models import ConsultationRequest, as_utc, to_db
from portal.web.transaction import flash_when_saved


def therapist_or_404(therapist_id: int) -> Therapist:
    return db.get_or_404(Therapist, therapist_id)


def to_therapist_page(therapist_id: int):
    # By id: after a commit the objects that led here may be deleted or detached.
    return redirect(url_for("admin.therapist_edit", therapist_id=therapist_id))


def _saved(therapist_id: int, action: str, message: str):
    """Audit the change, say so once it is committed, and go back to the therapist's page."""
    audit.record(action, actor=actor(), therapist_id=therapist_id)
    flash_when_saved(message, "info")
    return to_therapist_page(therapist_id)


def _remove_child(model: type[WeeklyHours] | type[TimeOff], item_id: int, therapist_id: int,
                  action: str, message: str):
    """Delete one of the therapist's hours or time-off rows (404 if not theirs)."""
    item = db.session.get(model, item_id)
    if item is None or item.therapist_id != therapist_id:
        abort(404)
    db.session.delete(item)
    return _saved(therapist_id, action, message)


def render_therapist_form(therapist: Therapist | None, *, form: TherapistForm | None = None,
                          hours_form: HoursForm | None = None,
                          time_off_form: TimeOffForm | None = None,
                          calendar_form: CalendarForm | None = None):
    """The therapist page; a submitted form comes back with its errors (status 400)."""
    submitted = any(f is not None and f.is_submitted()
                    for f in (form, hours_form, time_off_form, calendar_form))
    page = render_template(
        "admin/therapist_form.html", therapist=therapist,
        form=form if form is not None else TherapistForm(obj=therapist),
        hours_form=hours_form if hours_form is not None else HoursForm(),
        time_off_form=time_off_form if time_off_form is not None else TimeOffForm(),
        calendar=calendar_panel(therapist, calendar_form) if therapist else None,
        weekdays=WEEKDAYS)
    return page, 400 if submitted else 200


@bp.get("/therapists")
@admin_required
def therapist_list():
    therapists = db.session.scalars(select(Therapist).options(selectinload(Therapist.hours))
                                    .order_by(Therapist.active.desc(), Therapist.name)).all()
    return render_template("admin/therapists.html", therapists=therapists)


@bp.route("/therapists/new", methods=["GET", "POST"])
@admin_required
def therapist_new():
    form = TherapistForm(accepting_new=True)
    if form.validate_on_submit():
        therapist = Therapist(active=True)
        form.populate_obj(therapist)
        db.session.add(therapist)
        db.session.flush()
        return _saved(therapist.id, "therapist_added",
                      f"{therapist.name} was added. Now add their weekly hours.")
    return render_therapist_form(None, form=form)


@bp.route("/therapists/<int:therapist_id>", methods=["GET", "POST"])
@admin_required
def therapist_edit(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    form = TherapistForm(obj=therapist)
    if form.validate_on_submit():
        form.populate_obj(therapist)
        return _saved(therapist_id, "therapist_changed", "Changes saved.")
    return render_therapist_form(therapist, form=form)


@bp.post("/therapists/<int:therapist_id>/hours")
@admin_required
def therapist_hours_add(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    form = HoursForm()
    if not form.validate_on_submit():
        return render_therapist_form(therapist, hours_form=form)
    therapist.hours.append(WeeklyHours(weekday=form.weekday.data, start=form.start.data,
                                       end=form.end.data))
    return _saved(therapist_id, "therapist_hours_added", "Hours added.")


@bp.post("/therapists/<int:therapist_id>/hours/<int:hours_id>/delete")
@admin_required
def therapist_hours_delete(therapist_id: int, hours_id: int):
    return _remove_child(WeeklyHours, hours_id, therapist_id, "therapist_hours_removed",
                         "Hours removed.")


@bp.post("/therapists/<int:therapist_id>/time-off")
@admin_required
def therapist_time_off_add(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    form = TimeOffForm()
    if not form.validate_on_submit():
        return render_therapist_form(therapist, time_off_form=form)
    therapist.time_off.append(TimeOff(
        starts_at=to_db(form.starts_at.data.replace(tzinfo=PACIFIC)),
        ends_at=to_db(form.ends_at.data.replace(tzinfo=PACIFIC)), note=form.note.data or ""))
    return _saved(therapist_id, "therapist_time_off_added", "Time off added.")


@bp.post("/therapists/<int:therapist_id>/time-off/<int:time_off_id>/delete")
@admin_required
def therapist_time_off_delete(therapist_id: int, time_off_id: int):
    item = db.session.get(TimeOff, time_off_id)
    if item is None or item.therapist_id != therapist_id:
        abort(404)
    begins, ends = as_utc(item.starts_at), as_utc(item.ends_at)
    db.session.delete(item)
    db.session.flush()
    waitlist.range_freed(therapist_id, begins, ends)  # waitlisted clients hear of it
    return _saved(therapist_id, "therapist_time_off_removed", "Time off removed.")


def upcoming_for(therapist: Therapist) -> list[ConsultationRequest]:
    return db.session.scalars(select(ConsultationRequest).where(
        ConsultationRequest.therapist_id == therapist.id,
        ConsultationRequest.status.in_(OPEN_STATUSES),
        ConsultationRequest.slot_start >= to_db(datetime.now(UTC)),
    ).order_by(ConsultationRequest.slot_start)).all()


@bp.route("/therapists/<int:therapist_id>/deactivate", methods=["GET", "POST"])
@admin_required
def therapist_deactivate(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    if request.method == "POST":
        therapist.active = False
        audit.record("therapist_deactivated", actor=actor(), therapist_id=therapist.id)
        flash_when_saved(f"{therapist.name} is inactive and no longer offered to clients.",
                         "info")
        return redirect(url_for("admin.therapist_list"))
    return render_template("admin/therapist_deactivate.html", therapist=therapist,
                           upcoming=upcoming_for(therapist))


@bp.post("/therapists/<int:therapist_id>/activate")
@admin_required
def therapist_activate(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    therapist.active = True
    return _saved(therapist_id, "therapist_activated", f"{therapist.name} is active again.")
