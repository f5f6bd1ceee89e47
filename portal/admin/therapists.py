"""Therapists (admins only): details and licence, weekly hours, time off, and
deactivation. Free times are computed from these rows on every request, so a
change shows on the public pages at once."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from portal import audit
from portal.admin import bp
from portal.admin.access import admin_required
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


def actor():
    return current_user._get_current_object()


def to_therapist_page(therapist: Therapist):
    return redirect(url_for("admin.therapist_edit", therapist_id=therapist.id))


@bp.get("/therapists")
@admin_required
def therapist_list():
    therapists = db.session.scalars(select(Therapist).order_by(
        Therapist.active.desc(), Therapist.name)).all()
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
        return to_therapist_page(therapist)
    return render_template("admin/therapist_form.html", form=form, therapist=None)


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
        return to_therapist_page(therapist)
    return render_template(
        "admin/therapist_form.html", form=form, therapist=therapist, hours_form=HoursForm(),
        time_off_form=TimeOffForm(), confirm_form=ConfirmForm(), weekdays=WEEKDAYS,
    )


@bp.post("/therapists/<int:therapist_id>/hours")
@admin_required
def therapist_hours_add(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    form = HoursForm()
    if not form.validate_on_submit():
        return render_template(
            "admin/therapist_form.html", form=TherapistForm(obj=therapist), therapist=therapist,
            hours_form=form, time_off_form=TimeOffForm(), confirm_form=ConfirmForm(),
            weekdays=WEEKDAYS), 400
    therapist.hours.append(WeeklyHours(weekday=form.weekday.data, start=form.start.data,
                                       end=form.end.data))
    audit.record("therapist_hours_added", actor=actor(), therapist_id=therapist.id)
    db.session.commit()
    flash("Hours added.", "info")
    return to_therapist_page(therapist)


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
    return to_therapist_page(hours.therapist)


@bp.post("/therapists/<int:therapist_id>/time-off")
@admin_required
def therapist_time_off_add(therapist_id: int):
    therapist = therapist_or_404(therapist_id)
    form = TimeOffForm()
    if not form.validate_on_submit():
        return render_template(
            "admin/therapist_form.html", form=TherapistForm(obj=therapist), therapist=therapist,
            hours_form=HoursForm(), time_off_form=form, confirm_form=ConfirmForm(),
            weekdays=WEEKDAYS), 400
    therapist.time_off.append(TimeOff(
        starts_at=to_db(form.starts_at.data.replace(tzinfo=PACIFIC)),
        ends_at=to_db(form.ends_at.data.replace(tzinfo=PACIFIC)), note=form.note.data or ""))
    audit.record("therapist_time_off_added", actor=actor(), therapist_id=therapist.id)
    db.session.commit()
    flash("Time off added.", "info")
    return to_therapist_page(therapist)


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
    return to_therapist_page(item.therapist)


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
    return to_therapist_page(therapist)
