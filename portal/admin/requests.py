"""The request list and a request's detail page (the CSV export, which shares the
list's filters, is in :mod:`portal.admin.export`).

The list runs a fixed number of queries whatever the page size: the therapist
names for the filter, one count, one page of ids, and those rows with their
therapist joined in.
"""

from __future__ import annotations

from flask import render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from portal import audit, request_status, waitlist
from portal.admin.access import actor, visible_request_or_abort, visible_requests
from portal.admin.blueprint import CHANGED_KEY, bp
from portal.admin.forms import (
    NoteForm,
    ReassignForm,
    RequestFilterForm,
    StatusForm,
    options,
    therapist_options,
)
from portal.admin.listing import RequestQuery, page_numbers
from portal.admin.wording import therapist_names
from portal.database import begin_write
from portal.extensions import db
from portal.models import (
    CONTACT_METHODS,
    OPEN_STATUSES,
    AuditEvent,
    ConsultationRequest,
    OutboxEmail,
    RequestNote,
)


def therapist_choices() -> list[tuple[str, str]]:
    """Every therapist, for the list's filter (values are query-string text)."""
    return [(str(tid), label) for tid, label in therapist_options(
        lambda t: t.name if t.active else f"{t.name} (inactive)")]


def reassign_choices() -> list[tuple[int, str]]:
    """The therapists a request can move to: the active ones."""
    return therapist_options(lambda t: f"{t.name}, {t.licence_type}", active_only=True)


def read_filters() -> tuple[RequestFilterForm, RequestQuery]:
    """The filter form from the query string, and the query it asks for."""
    form = RequestFilterForm(request.args)
    form.therapist.choices = options([("", "Any therapist"), ("none", "Not assigned"),
                                      *therapist_choices()])
    form.validate()
    def value(field):
        return None if field.errors else field.data

    query = RequestQuery(
        q=(form.q.data or "")[:100], status=form.status.data or "",
        therapist=(form.therapist.data or "") if current_user.is_admin else "",
        received_from=value(form.received_from), received_to=value(form.received_to),
        booked_from=value(form.booked_from), booked_to=value(form.booked_to),
        sort=form.sort.data or "received",
    )
    return form, query


def filtered(stmt, conditions):
    """``stmt`` narrowed to what the user may see and to the filters' ``conditions``."""
    return visible_requests(stmt).where(*conditions)


@bp.get("/requests")
def request_list():
    form, query = read_filters()
    page, per_page = page_numbers(request.args)
    links = {**query.as_args(), "per_page": per_page}
    conditions = query.conditions()
    total = db.session.scalar(filtered(select(func.count(ConsultationRequest.id)), conditions))
    # Ids first, then the rows: a deep OFFSET then walks only the index, not the table.
    ids = db.session.scalars(
        filtered(select(ConsultationRequest.id), conditions)
        .order_by(*query.order_by()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    found = db.session.scalars(
        select(ConsultationRequest).where(ConsultationRequest.id.in_(ids))
        .options(joinedload(ConsultationRequest.therapist))
    ).all() if ids else []
    by_id = {row.id: row for row in found}
    rows = [by_id[i] for i in ids if i in by_id]
    return render_template(
        "admin/requests.html", form=form, rows=rows, total=total, page=page,
        per_page=per_page, first=(page - 1) * per_page + 1 if rows else 0,
        last=(page - 1) * per_page + len(rows), filtered=bool(conditions),
        page_url=lambda n: url_for("admin.request_list", **links, page=n),
        export_url=url_for("admin.request_export", **query.as_args()),
    )


@bp.get("/requests/<int:request_id>")
def request_detail(request_id: int):
    return render_detail(visible_request_or_abort(request_id))


def possible_duplicates(consultation: ConsultationRequest) -> list[ConsultationRequest]:
    """Other open requests with this one's phone but another email address: perhaps the
    same person twice. The public pages never refuse or mention a shared phone (that
    would tell a stranger someone has a request), so staff decide."""
    if not consultation.is_open:
        return []
    return list(db.session.scalars(
        select(ConsultationRequest).where(
            ConsultationRequest.phone == consultation.phone,
            ConsultationRequest.id != consultation.id,
            ConsultationRequest.status.in_(OPEN_STATUSES),
            ConsultationRequest.email_normalised != consultation.email_normalised,
        ).order_by(ConsultationRequest.created_at).limit(10)))


def just_changed(consultation: ConsultationRequest) -> bool:
    """Whether this GET is the page a change to this request redirected to (see
    blueprint.remember_change). That visit is one view: the change before it is
    audited with who made it, and a line per redirect buried the history in
    "viewed". The marker is used once."""
    return request.method == "GET" and session.pop(CHANGED_KEY, None) == consultation.id


def render_detail(consultation: ConsultationRequest, **forms):
    """The detail page; ``forms`` carries a submitted form back with its errors.

    Every render shows the whole record, so every render is audited, the
    re-rendered form after a failed change included (the caller has rolled back
    whatever that change left behind). The audit line and the page's reads share
    one write transaction, committed once the page is rendered."""
    begin_write()  # already begun for this page and for a POST, unless rolled back
    if not just_changed(consultation):
        audit.record("request_viewed", actor=actor(), request_id=consultation.id)
        db.session.flush()
    notes = db.session.scalars(
        select(RequestNote).where(RequestNote.request_id == consultation.id)
        .options(selectinload(RequestNote.author)).order_by(RequestNote.created_at)
    ).all()
    emails = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.request_id == consultation.id)
        .order_by(OutboxEmail.created_at)
    ).all()
    history = db.session.scalars(
        select(AuditEvent).where(AuditEvent.request_id == consultation.id)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(200)
    ).all()
    duplicates = possible_duplicates(consultation)
    # A missed consultation and the one booked again from its link point at each other.
    rebooked_from = db.session.get(ConsultationRequest, consultation.rebooked_from_id) \
        if consultation.rebooked_from_id else None
    rebooked_as = db.session.scalar(select(ConsultationRequest).where(
        ConsultationRequest.rebooked_from_id == consultation.id)) \
        if consultation.status == "no_show" else None
    status_form = forms.get("status_form") or StatusForm(status=consultation.status)
    # Only the moves the status table allows now (a submitted form's target included
    # in its errors, not in the list, when it was refused).
    status_form.status.choices = options(request_status.status_choices(consultation))
    reassign_form = forms.get("reassign_form") or ReassignForm(
        therapist_id=consultation.therapist_id or 0)
    if reassign_form.therapist_id.choices is None:  # a submitted one has them already
        reassign_form.therapist_id.choices = options(reassign_choices())
    page = render_template(
        "admin/request_detail.html", consultation=consultation, notes=notes, emails=emails,
        history=history, status_form=status_form, reassign_form=reassign_form,
        note_form=forms.get("note_form") or NoteForm(), contact_methods=CONTACT_METHODS,
        duplicates=duplicates, therapist_names=therapist_names(),
        rebooked_from=rebooked_from, rebooked_as=rebooked_as,
        on_waitlist=waitlist.is_waiting(consultation),
    )
    db.session.commit()
    return page, 400 if forms else 200
