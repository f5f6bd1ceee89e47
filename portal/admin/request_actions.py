"""Changes to one request from its detail page: status, notes, reassignment,
cancel and reschedule on the client's behalf, and deletion.

Each view validates, calls one domain function from :mod:`portal.booking`
(which queues the emails), commits once and redirects back. Every change
leaves a line in the audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal import audit, booking
from portal.admin import bp
from portal.admin.access import admin_required, request_or_404
from portal.admin.forms import (
    ConfirmForm,
    NoteForm,
    ReassignForm,
    RescheduleForm,
    StatusForm,
    options,
)
from portal.admin.requests import reassign_choices, render_detail
from portal.extensions import db
from portal.models import RequestNote
from portal.scheduling import format_slot_long, parse_slot_value, slot_value


def actor():
    return current_user._get_current_object()


def back_to(consultation):
    return redirect(url_for("admin.request_detail", request_id=consultation.id))


@bp.post("/requests/<int:request_id>/status")
def request_status(request_id: int):
    consultation = request_or_404(request_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return render_detail(consultation, status_form=form)
    previous, wanted = consultation.status, form.status.data
    if wanted == "cancelled" and previous != "cancelled":
        # Cancelling frees the time and tells the client and therapist, as on the public page.
        booking.cancel_booking(consultation, by="practice", actor=actor())
    elif wanted != previous:
        consultation.status = wanted
        audit.record("status_changed", actor=actor(), request_id=consultation.id,
                     previous_status=previous, status=wanted)
    if form.note.data and form.note.data.strip():
        add_note(consultation, form.note.data)
    db.session.commit()
    flash(f"Status is now “{consultation.status_label}”.", "info")
    return back_to(consultation)


def add_note(consultation, body: str) -> None:
    db.session.add(RequestNote(request_id=consultation.id, author_id=current_user.id,
                               body=body.strip()))
    audit.record("note_added", actor=actor(), request_id=consultation.id)


@bp.post("/requests/<int:request_id>/notes")
def request_note(request_id: int):
    consultation = request_or_404(request_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return render_detail(consultation, note_form=form)
    add_note(consultation, form.body.data)
    db.session.commit()
    flash("Note added.", "info")
    return back_to(consultation)


@bp.post("/requests/<int:request_id>/reassign")
@admin_required
def request_reassign(request_id: int):
    consultation = request_or_404(request_id)
    form = ReassignForm()
    form.therapist_id.choices = options(reassign_choices())
    if not form.validate_on_submit():
        return render_detail(consultation, reassign_form=form)
    try:
        booking.reassign_therapist(consultation, form.therapist_id.data, actor=actor())
    except booking.SlotTaken:
        db.session.rollback()
        form.therapist_id.errors.append(
            "That therapist already has a consultation at this time. "
            "Choose someone else, or reschedule first.")
        return render_detail(consultation, reassign_form=form)
    except (booking.BookingClosed, booking.UnknownTherapist):
        db.session.rollback()
        form.therapist_id.errors.append(
            "This request can't be reassigned: it is closed or the therapist is inactive.")
        return render_detail(consultation, reassign_form=form)
    db.session.commit()
    flash("Therapist changed. They will get a notice by email.", "info")
    return back_to(consultation)


@bp.post("/requests/<int:request_id>/cancel")
def request_cancel(request_id: int):
    consultation = request_or_404(request_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if booking.cancel_booking(consultation, by="practice", actor=actor()):
        db.session.commit()
        flash("The consultation is cancelled. The client and therapist will be told.", "info")
    return back_to(consultation)


@bp.route("/requests/<int:request_id>/reschedule", methods=["GET", "POST"])
def request_reschedule(request_id: int):
    consultation = request_or_404(request_id)
    if not consultation.is_open:
        flash("This request is closed, so its time can't change.", "error")
        return back_to(consultation)
    choice = consultation.therapist_id or "any"
    slots = booking.available_slots(choice, exclude_request_id=consultation.id)
    form = RescheduleForm()
    form.slot.choices = options((slot_value(s), format_slot_long(s)) for s in slots)
    if form.validate_on_submit():
        try:
            booking.reschedule_booking(consultation, parse_slot_value(form.slot.data),
                                       actor=actor())
        except (booking.SlotTaken, booking.BookingClosed):
            db.session.rollback()
            form.slot.errors.append("That time was just taken. Choose another time.")
        else:
            db.session.commit()
            flash("The consultation has a new time. The client and therapist will be told.",
                  "info")
            return back_to(consultation)
    return render_template("admin/request_reschedule.html", consultation=consultation,
                           form=form, now=datetime.now(UTC))


@bp.route("/requests/<int:request_id>/delete", methods=["GET", "POST"])
@admin_required
def request_delete(request_id: int):
    consultation = request_or_404(request_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        reference = consultation.reference
        audit.record("request_deleted", actor=actor(), request_id=consultation.id,
                     reference=reference)
        db.session.delete(consultation)
        db.session.commit()
        flash(f"Request {reference} was deleted.", "info")
        return redirect(url_for("admin.request_list"))
    return render_template("admin/request_delete.html", consultation=consultation, form=form)
