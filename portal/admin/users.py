"""Back-office users (admins only): invite, role, therapist link, deactivate, unlock,
and reset a lost second factor."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import audit
from portal.admin.access import actor, admin_required
from portal.admin.blueprint import bp
from portal.admin.forms import NewUserForm, UserForm, therapist_options
from portal.auth.sessions import end_every_session
from portal.extensions import db
from portal.messages.staff_emails import queue_invite
from portal.staff import mfa
from portal.staff.accounts import (
    AccountError,
    create_user,
    has_password,
    is_locked,
    therapist_with_email,
    unlock,
)
from portal.staff.models import ROLES, User
from portal.web.forms import options
from portal.web.transaction import Undo, flash_when_saved


def therapist_link_choices() -> list[tuple[int, str]]:
    return [(0, "None (not a therapist)"), *therapist_options(lambda t: t.name)]


@bp.get("/users")
@admin_required
def user_list():
    users = db.session.scalars(select(User).options(selectinload(User.therapist))
                               .order_by(User.email)).all()
    unlinked = [u for u in users if u.active and u.role == "therapist" and u.therapist is None]
    return render_template("admin/users.html", users=users, roles=ROLES, is_locked=is_locked,
                           has_password=has_password, unlinked=unlinked)


def suggest_role(form: NewUserForm) -> None:
    """No role chosen: when the address is an active therapist's, suggest Therapist
    (linked to them) for the admin to check and send again."""
    therapist = therapist_with_email(form.email.data) if not form.email.errors else None
    if therapist is None:
        return
    form.role.data = "therapist"
    if not form.therapist_id.data:
        form.therapist_id.data = therapist.id
    form.role.errors = [f"Choose a role. This is the email of {therapist.name}, a "
                        "therapist, so we've suggested Therapist: check it and send again."]


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_new():
    form = NewUserForm(active=True)
    form.therapist_id.choices = options(therapist_link_choices())
    valid = form.validate_on_submit()
    if form.is_submitted() and not form.role.data:
        suggest_role(form)
    if valid:
        try:
            # No password: the invite email carries a link to choose one.
            user, _ = create_user(form.email.data, None, form.role.data,
                                  therapist_id=form.therapist_id.data or None)
        except AccountError as error:
            field = getattr(form, error.field or "email", form.email)
            field.errors.append(error.message)
            raise Undo(lambda: render_template("admin/user_form.html", form=form,
                                               user=None)) from None
        user.active = form.active.data
        queue_invite(user, invited_by=actor())
        audit.record("user_invited", actor=actor(), user_id=user.id, role=user.role)
        flash_when_saved(f"We've emailed {user.email} a link to choose their password. It "
                         f"works for {current_app.config['STAFF_INVITE_HOURS']} hours; after "
                         "that, \u201cForgot your password?\u201d sends a new one.", "info")
        return redirect(url_for("admin.user_list"))
    return render_template("admin/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user_edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = UserForm(obj=user)
    form.therapist_id.choices = options(therapist_link_choices())
    if form.validate_on_submit():
        if user.id == current_user.id and (form.role.data != "admin" or not form.active.data):
            form.role.errors.append("You can't remove your own admin access.")
        else:
            before = {"role": user.role, "active": user.active,
                      "therapist_id": user.therapist_id}
            user.role, user.active = form.role.data, form.active.data
            user.therapist_id = form.therapist_id.data or None
            if before["active"] and not user.active:
                end_every_session(user)
            audit.record("user_changed", actor=actor(), user_id=user.id, role=user.role,
                         active=user.active, therapist_id=user.therapist_id, previous=before)
            flash_when_saved(f"{user.email} was updated.", "info")
            return redirect(url_for("admin.user_list"))
    elif not form.is_submitted():
        form.therapist_id.data = user.therapist_id or 0
    return render_template("admin/user_form.html", form=form, user=user)


@bp.post("/users/<int:user_id>/unlock")
@admin_required
def user_unlock(user_id: int):
    user = db.get_or_404(User, user_id)
    unlock(user)
    audit.record("user_unlocked", actor=actor(), user_id=user.id)
    flash_when_saved(f"{user.email} can sign in again.", "info")
    return redirect(url_for("admin.user_list"))


@bp.post("/users/<int:user_id>/second-factor/reset")
@admin_required
def user_mfa_reset(user_id: int):
    """A lost phone: forget the user's authenticator and recovery codes and sign them
    out everywhere; they set it up again at their next sign-in."""
    user = db.get_or_404(User, user_id)
    if user.id == current_user.id:
        # Someone at an admin's unlocked computer must not be able to swap in their phone.
        flash("You can't reset your own second step: ask another admin.", "error")
        return redirect(url_for("admin.user_edit", user_id=user_id))
    mfa.reset_second_factor(user)
    end_every_session(user)
    audit.record("user_mfa_reset", actor=actor(), user_id=user.id)
    flash_when_saved(f"{user.email}'s second step was reset: they set it up again when they "
                     "next sign in.", "info")
    return redirect(url_for("admin.user_edit", user_id=user_id))
