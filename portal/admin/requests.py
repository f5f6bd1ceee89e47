"""The request list and a request's detail page (the CSV export, which shares the
list's filters, is in :mod:`portal.admin.export`).

The list runs a fixed number of queries whatever the page size and however deep the
page: the therapist names for the filter, one count, one page of ids read from a
position (``portal.admin.listing.Seek``; a second stretch when the booked-time sort
reaches the requests without a time), and those rows with their therapist joined in.
A page of a short list also counts the rows before it, for its number.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from portal import audit
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
from portal.admin.listing import (
    END,
    NUMBERED_UP_TO,
    SORTS,
    Position,
    RequestQuery,
    Seek,
    page_numbers,
)
from portal.admin.wording import therapist_names
from portal.booking import request_status, waitlist
from portal.booking.answers import CONTACT_METHODS
from portal.booking.statuses import OPEN_STATUSES, RequestStatus
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.models import AuditEvent, ConsultationRequest, RequestNote


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


@dataclass
class ListPage:
    """One page of the list: its ids in order, and where it sits. ``offset`` (rows
    before it) is known on the first and last pages and on any page of a short list;
    deep in a long one it is not worth counting."""

    ids: list[tuple[int, object]]  # (id, sort key)
    offset: int | None = 0
    more_before: bool = False
    more_after: bool = False


def read_ids(conditions, seek: Seek, position: Position | None, limit: int, *,
             backwards: bool = False) -> list[tuple[int, object]]:
    """Up to ``limit`` (id, sort key) pairs after ``position`` (or before it, nearest
    first), stretch by stretch."""
    found: list[tuple[int, object]] = []
    for where, order in seek.stretches(position, backwards=backwards):
        if len(found) >= limit:
            break
        found += db.session.execute(
            filtered(select(ConsultationRequest.id, seek.column), conditions)
            .where(*where).order_by(*order).limit(limit - len(found))).tuples().all()
    return found


def count(conditions, *more) -> int:
    if not conditions and not more and current_user.is_admin:
        # The whole list (what an admin may see: every request but the pending ones,
        # see visible_requests). SQLite counts a whole table from its b-tree's pages
        # but a condition row by row (20 ms at 100,000); the pending requests are few
        # (held for 30 minutes) and found by the status index.
        every = select(func.count()).select_from(ConsultationRequest).scalar_subquery()
        pending = select(func.count()).where(
            ConsultationRequest.status == RequestStatus.PENDING).scalar_subquery()
        return db.session.scalar(select(every - pending))
    return db.session.scalar(
        filtered(select(func.count(ConsultationRequest.id)), conditions).where(*more))


def find_page(conditions, seek: Seek, total: int, page: int, per_page: int,
              args) -> ListPage | Position | None:
    """The page the query string asks for: ``after`` or ``before`` a position, the last
    page (``before=end``), or page ``page``. A page number in a long list is answered
    with the position it starts after (the caller redirects to it; None past the end)."""
    numbered = total <= NUMBERED_UP_TO
    after = Position.parse(args.get("after"))
    before = Position.parse(args.get("before"))
    if seek.accepts(after):
        ids = read_ids(conditions, seek, after, per_page + 1)
        found = ListPage(ids[:per_page], None, more_before=True, more_after=len(ids) > per_page)
    elif args.get("before") == END or seek.accepts(before):
        position = before if args.get("before") != END else None
        ids = read_ids(conditions, seek, position, per_page + 1, backwards=True)
        if len(ids) <= per_page:  # nothing before these: the first page, filled up
            return find_page(conditions, seek, total, 1, per_page, {})
        found = ListPage(ids[:per_page][::-1], None, more_before=True,
                         more_after=position is not None)
        if position is None:
            found.offset = total - len(found.ids)
    elif page > 1 and not numbered:
        ahead = db.session.execute(
            filtered(select(ConsultationRequest.id, seek.column), conditions)
            .order_by(*seek.order_by()).limit(1).offset((page - 1) * per_page - 1)).first()
        return None if ahead is None else Position(ahead[1], ahead[0])
    elif page > 1:
        ids = db.session.execute(
            filtered(select(ConsultationRequest.id, seek.column), conditions)
            .order_by(*seek.order_by()).limit(per_page).offset((page - 1) * per_page)
        ).tuples().all()
        found = ListPage(ids, (page - 1) * per_page, more_before=True,
                         more_after=total > page * per_page)
    else:
        ids = read_ids(conditions, seek, None, per_page + 1)
        found = ListPage(ids[:per_page], 0, more_after=len(ids) > per_page)
    if found.offset is None and numbered and found.ids:
        first_id, first_key = found.ids[0]
        found.offset = count(conditions, seek.before(Position(first_key, first_id)))
    return found


def page_links(current: int, last: int) -> list[int | None]:
    """The page numbers to link to: the first and last, and two either side of the
    current one; None where numbers are left out."""
    shown = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    found: list[int | None] = []
    for number in shown:
        if found and number - found[-1] > 1:
            found.append(None)
        found.append(number)
    return found


@bp.get("/requests")
def request_list():
    form, query = read_filters()
    page, per_page = page_numbers(request.args)
    links = {**query.as_args(), "per_page": per_page}
    conditions = query.conditions()
    total = count(conditions)
    found = find_page(conditions, query.seek, total, page, per_page, request.args)
    if isinstance(found, Position):  # a page number deep in a long list
        return redirect(url_for("admin.request_list", **links, after=found.as_arg()))
    if found is None:  # past the end of a long list
        found = ListPage([], (page - 1) * per_page)
    # Ids first, then the rows: the position is read from an index, the rows once.
    ids = [row_id for row_id, _ in found.ids]
    rows = db.session.scalars(
        select(ConsultationRequest).where(ConsultationRequest.id.in_(ids))
        .options(joinedload(ConsultationRequest.therapist))
    ).all() if ids else []
    by_id = {row.id: row for row in rows}
    rows = [by_id[i] for i in ids if i in by_id]
    last_page = max(1, -(-total // per_page))
    number = None if found.offset is None else found.offset // per_page + 1

    def url(**where):
        return url_for("admin.request_list", **links, **where)

    def at(pair: tuple[int, object]) -> str:
        return Position(pair[1], pair[0]).as_arg()

    ends = bool(found.ids)
    return render_template(
        "admin/requests.html", form=form, rows=rows, total=total, per_page=per_page,
        page=number or page, number=number, last_page=last_page,
        first=found.offset + 1 if rows and found.offset is not None else 0,
        last=found.offset + len(rows) if found.offset is not None else 0,
        filtered=bool(conditions),
        numbers=page_links(number, last_page) if number and total <= NUMBERED_UP_TO else [],
        page_url=lambda n: url(page=n),
        first_url=url() if found.more_before else None,
        previous_url=url(before=at(found.ids[0])) if found.more_before and ends else None,
        next_url=url(after=at(found.ids[-1])) if found.more_after and ends else None,
        # A short list's last page is its last numbered one; a long one's, its last rows.
        last_url=(url(page=last_page) if total <= NUMBERED_UP_TO else url(before=END))
        if found.more_after else None,
        sort_label=SORTS.get(query.sort, SORTS["received"])[0],
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
    one write transaction, the blueprint's, committed once the page is rendered."""
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
        if consultation.status == RequestStatus.NO_SHOW else None
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
    return page, 400 if forms else 200
