"""Therapists (admins only): details and licence, weekly hours, time off, and
deactivation. Free times are computed from these rows on every request, so a
change shows on the public pages at once."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import audit
from portal.admin.access import actor, admin_required
from portal.admin.blueprint import bp
from portal.admin.forms import WEEKDAYS, ConfirmForm, HoursForm, TherapistForm, TimeOffForm
from portal.extensions import db
from portal.models import (
    OPEN_STATUSES,
    ConsultationRequest,
    Therapist,
    TimeOff,
    WeeklyHours,
    to_db,
)
from portal.scheduling import PACIFIC


def therapist_or_404(therapist_id: int) -> Therapist:
    return db.get_or_404(Therapist, therapist_id)


def to_therapist_page(therapist_id: int):
    # By id: after a commit the objects that led here may be deleted or detached.
    return redirect(url_for("admin.therapist_edit", therapist_id=therapist_id))


def render_therapist_form(therapist: Therapist | None, *, form: TherapistForm | None = None,
                          hours_form: HoursForm | None = None,
                          time_off_form: TimeOffForm | None = None):
    """The therapist page; a submitted form comes back with its errors (status 400)."""
    submitted = any(f is not None and f.is_submitted() for f in (form, hours_form, time_off_form))
    page = render_template(
        "admin/therapist_form.html", therapist=therapist,
        form=form if form is not None else TherapistForm(obj=therapist),
        hours_form=hours_form if hours_form is not None else HoursForm(),
        time_off_form=time_off_form if time_off_form is not None else TimeOffForm(),
        confirm_form=ConfirmForm(),
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
        audit.record("therapist_added", actor=actor(), therapist_id=therapist.id)
        db.session.commit()
        flash(f"{therapist.name} was added. Now add their weekly hours.", "info")
        return to_therapist_page(therapist.id)
    return render_therapist_form(None, form=form)


@bp.route("/therapists/<int:therapist_id>", methods=["GET", "POST"])
@admin_required
def therapist_edit(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    form = TherapistForm(obj=therapist)
    if form.validate_on_submit():
        form.populate_obj(therapist)
        audit.record("therapist_changed", actor=actor(), therapist_id=therapist.id)
        db.session.commit()
        flash("Changes saved.", "info")
        return to_therapist_page(therapist_id)
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
    audit.record("therapist_hours_added", actor=actor(), therapist_id=therapist.id)
    db.session.commit()
    flash("Hours added.", "info")
    return to_therapist_page(therapist_id)


@bp.post("/therapists/<int:therapist_id>/hours/<int:hours_id>/delete")
@admin_required
def therapist_hours_delete(therapist_id: int, hours_id: int):
    hours = db.session.get(WeeklyHours, hours_id)
    if hours is None or hours.therapist_id != therapist_id:
        abort(404)
    db.session.delete(hours)
    audit.record("therapist_hours_removed", actor=actor(), therapist_id=therapist_id)
    db.session.commit()
    flash("Hours removed.", "info")
    return to_therapist_page(therapist_id)


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
    audit.record("therapist_time_off_added", actor=actor(), therapist_id=therapist.id)
    db.session.commit()
    flash("Time off added.", "info")
    return to_therapist_page(therapist_id)


@bp.post("/therapists/<int:therapist_id>/time-off/<int:time_off_id>/delete")
@admin_required
def therapist_time_off_delete(therapist_id: int, time_off_id: int):
    item = db.session.get(TimeOff, time_off_id)
    if item is None or item.therapist_id != therapist_id:
        abort(404)
    db.session.delete(item)
    audit.record("therapist_time_off_removed", actor=actor(), therapist_id=therapist_id)
    db.session.commit()
    flash("Time off removed.", "info")
    return to_therapist_page(therapist_id)


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
    form = ConfirmForm()
    if form.validate_on_submit():
        therapist.active = False
        audit.record("therapist_deactivated", actor=actor(), therapist_id=therapist.id)
        db.session.commit()
        flash(f"{therapist.name} is inactive and no longer offered to clients.", "info")
        return redirect(url_for("admin.therapist_list"))
    return render_template("admin/therapist_deactivate.html", therapist=therapist, form=form,
                           upcoming=upcoming_for(therapist))


@bp.post("/therapists/<int:therapist_id>/activate")
@admin_required
def therapist_activate(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    therapist.active = True
    audit.record("therapist_activated", actor=actor(), therapist_id=therapist.id)
    db.session.commit()
    flash(f"{therapist.name} is active again.", "info")
    return to_therapist_page(therapist_id)
