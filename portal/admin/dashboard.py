"""The back office's front page: this week and last, requests waiting too long,
the no-show rate by month, turned-away attempts, failed emails, and the intake
pause switch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import case, func, select

from portal import audit
from portal.admin.access import actor, admin_required, visible_requests
from portal.admin.blueprint import bp
from portal.admin.forms import PauseForm
from portal.booking import business_days, holds, intake, reply_promise
from portal.booking.intake_tables import AnonymousCount, NotEligibleCount
from portal.booking.scheduling import PACIFIC
from portal.booking.statuses import OVER_STATUSES, STATUS_LABELS, RequestStatus
from portal.calendars import connections as calendar_connections
from portal.calendars import sync as calendar_sync
from portal.extensions import db
from portal.messages.models import OutboxEmail
from portal.messages.outbox_states import OutboxState
from portal.models import ConsultationRequest, as_utc, to_db
from portal.web.transaction import flash_when_saved

Request = ConsultationRequest
PROMISE_LIST_LIMIT = 20


def still_new(start: datetime | None, end: datetime) -> tuple[int, list[Request]]:
    """How many requests still ``new`` arrived in ``[start, end)``, and the oldest of them."""
    query = visible_requests(select(Request).where(
        Request.status == RequestStatus.NEW, Request.created_at < to_db(end)))
    if start is not None:
        query = query.where(Request.created_at >= to_db(start))
    count = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Request.created_at, Request.id)
                              .limit(PROMISE_LIST_LIMIT)).all()
    return count, rows


def reply_promise_panel(now: datetime, holidays: frozenset[date]) -> dict:
    """Requests past the one-business-day promise (oldest first), then those due today."""
    overdue_count, overdue = still_new(None, business_days.overdue_before(now, holidays))
    window = business_days.due_today_window(now, holidays)
    due_today_count, due_today = still_new(*window) if window else (0, [])
    return {
        "overdue": overdue, "overdue_count": overdue_count,
        "due_today": due_today, "due_today_count": due_today_count,
        "reply_due": lambda r: business_days.reply_due(as_utc(r.created_at), holidays),
    }


def week_start(today: date) -> datetime:
    monday = today - timedelta(days=today.weekday())
    return datetime.combine(monday, time(0), tzinfo=PACIFIC)


def counts_by_status(start: datetime, end: datetime) -> dict[str, int]:
    rows = db.session.execute(visible_requests(
        select(Request.status, func.count()).where(
            Request.created_at >= to_db(start), Request.created_at < to_db(end))
        .group_by(Request.status)))
    return dict(rows.all())


RATE_MONTHS = 12


@dataclass(frozen=True)
class MonthRate:
    month: date  # the first day of a Pacific month
    completed: int
    no_shows: int

    @property
    def held(self) -> int:
        return self.completed + self.no_shows

    @property
    def rate(self) -> float | None:
        """No-shows / (completed + no-shows); None for a month without either."""
        return self.no_shows / self.held if self.held else None


def month_starts(today: date, months: int) -> list[date]:
    """The first days of the last ``months`` months up to ``today``'s, oldest first,
    and the first day of the month after (the end of the last one)."""
    firsts = [today.replace(day=1)]
    for _ in range(months - 1):
        firsts.insert(0, (firsts[0] - timedelta(days=1)).replace(day=1))
    following = (firsts[-1] + timedelta(days=32)).replace(day=1)
    return [*firsts, following]


def no_show_rates(now: datetime, months: int = RATE_MONTHS) -> list[MonthRate]:
    """Completed and no-show consultations by the Pacific month of their time, for the
    last ``months`` months (this one included), in one query."""
    firsts = month_starts(now.astimezone(PACIFIC).date(), months)
    bounds = [to_db(datetime.combine(day, time(0), tzinfo=PACIFIC)) for day in firsts]
    bucket = case(*((Request.slot_start < bound, index)
                    for index, bound in enumerate(bounds[1:])), else_=-1)
    # Grouped outside a subquery: PostgreSQL would not match a CASE of bound values in
    # GROUP BY with the same CASE in the select list.
    held = visible_requests(
        select(bucket.label("month"), Request.status)
        .where(Request.status.in_(OVER_STATUSES),
               Request.slot_start >= bounds[0], Request.slot_start < bounds[-1])).subquery()
    rows = db.session.execute(select(held.c.month, held.c.status, func.count())
                              .group_by(held.c.month, held.c.status))
    counts = {(index, status): count for index, status, count in rows}
    return [MonthRate(first, counts.get((index, RequestStatus.COMPLETED), 0),
                      counts.get((index, RequestStatus.NO_SHOW), 0))
            for index, first in enumerate(firsts[:-1])]


@bp.get("/")
def dashboard():
    now = datetime.now(UTC)
    this_week = week_start(now.astimezone(PACIFIC).date())
    last_week = this_week - timedelta(days=7)
    holidays = reply_promise.holidays()
    stale_before = business_days.business_hours_before(
        now, current_app.config["STALE_NEW_BUSINESS_HOURS"], holidays)
    stale = visible_requests(select(Request).where(
        Request.status == RequestStatus.NEW, Request.created_at < to_db(stale_before)))
    context = {
        **reply_promise_panel(now, holidays),
        "statuses": STATUS_LABELS,
        "this_week": counts_by_status(this_week, now + timedelta(seconds=1)),
        "last_week": counts_by_status(last_week, this_week),
        "stale_count": db.session.scalar(select(func.count()).select_from(stale.subquery())),
        "stale": db.session.scalars(stale.order_by(Request.created_at).limit(20)).all(),
        "stale_hours": current_app.config["STALE_NEW_BUSINESS_HOURS"],
        "no_show_rates": list(reversed(no_show_rates(now))),
    }
    if current_user.is_admin:
        context.update(admin_panels(now))
    elif current_user.therapist_id is not None:  # a therapist sees their own calendar only
        context["own_calendar"] = calendar_connections.status(current_user.therapist_id, now)
        context["own_calendar_shown"] = True
    return render_template("admin/dashboard.html", **context)


def admin_panels(now: datetime) -> dict:
    since = now.astimezone(PACIFIC).date() - timedelta(days=13)
    paused, message = intake.pause_state()
    return {
        "not_eligible": db.session.execute(
            select(NotEligibleCount.day, NotEligibleCount.count)
            .where(NotEligibleCount.day >= since).order_by(NotEligibleCount.day.desc())
        ).all(),
        "failed_emails": db.session.scalar(
            select(func.count(OutboxEmail.id)).where(OutboxEmail.status == OutboxState.FAILED)),
        # Counts only: a pending request is nobody's to look at until it is confirmed.
        "pending_now": db.session.scalar(
            select(func.count(Request.id)).where(Request.status == RequestStatus.PENDING)),
        "holds_now": holds.held_now(now),
        "unverified": db.session.execute(
            select(AnonymousCount.day, AnonymousCount.count)
            .where(AnonymousCount.kind == "unverified", AnonymousCount.day >= since)
            .order_by(AnonymousCount.day.desc())
        ).all(),
        "pause_form": PauseForm(paused=paused, message=message),
        # Calendars that fail, or are stale and so hide their therapist's times.
        "calendar_problems": calendar_sync.problems(now),
    }


@bp.post("/intake-pause")
@admin_required
def intake_pause():
    form = PauseForm()
    if not form.validate_on_submit():
        flash("The pause message is too long (1,000 characters at most).", "error")
        return redirect(url_for("admin.dashboard"))
    paused = bool(form.paused.data)
    intake.set_pause(paused, form.message.data or "")
    audit.record("intake_paused" if paused else "intake_resumed", actor=actor())
    flash_when_saved("New requests are paused." if paused else "New requests are open.", "info")
    return redirect(url_for("admin.dashboard"))
