"""Command-line tools: ``flask --app portal <command>``. Each wraps a domain function
and owns the commit."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from portal import audit, backup, demo, encryption, readiness
from portal.booking import verification
from portal.booking.retention import purge_old_requests
from portal.booking.search_names import refresh_search_names
from portal.booking.therapists import Therapist
from portal.calendars import connections as calendar_connections
from portal.calendars import delivery as calendar_delivery
from portal.calendars import feed as calendar_feed
from portal.calendars import sync as calendar_sync
from portal.calendars.errors import CalendarError
from portal.database import begin_write
from portal.extensions import db
from portal.messages import outbox, senders, upkeep
from portal.messages.transport import remove_sink_copies
from portal.staff import mfa
from portal.staff.accounts import AccountError, create_user, find_user
from portal.staff.models import ROLES, new_session_token
from portal.texts import delivery as text_delivery
from portal.texts import numbers as text_numbers
from portal.texts import outgoing as text_outgoing


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(reset_second_factor_command)
    app.cli.add_command(purge_command)
    app.cli.add_command(refresh_search_names_command)
    app.cli.add_command(outbox_group)
    app.cli.add_command(reminders_group)
    app.cli.add_command(check_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(rotate_keys_command)
    app.cli.add_command(calendars_group)


@click.command("seed-demo")
@click.option("--requests", "request_count", type=click.IntRange(min=0), default=0,
              help="Also add this many synthetic requests spread over the past year.")
@with_appcontext
def seed_demo_command(request_count: int) -> None:
    """Add demo therapists with weekly hours and a demo admin (idempotent)."""
    added = demo.seed_therapists()
    password = demo.seed_admin()
    db.session.commit()
    click.echo(f"Demo therapists added: {added}.")
    if password:
        click.echo(f"Demo admin: {demo.DEMO_ADMIN_EMAIL}  password: {password}")
    else:
        click.echo(f"Demo admin {demo.DEMO_ADMIN_EMAIL} already exists (password unchanged; "
                   "reset it with create-user --reset-password).")
    if request_count:
        started = time.perf_counter()
        demo.seed_requests(request_count)
        db.session.commit()
        click.echo(f"Synthetic requests added: {request_count} "
                   f"in {time.perf_counter() - started:.1f} s.")
        click.echo(f"Future bookings: {demo.future_bookings()}.")


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--therapist", "--therapist-id", "therapist_id", type=int, default=None,
              help="Link a therapist user to this therapist (by default: the active "
                   "therapist with the same email).")
@click.option("--reset-password", is_flag=True, help="Give an existing user a new password.")
@with_appcontext
def create_user_command(email: str, role: str, therapist_id: int | None,
                        reset_password: bool) -> None:
    """Create a back-office user (password from PORTAL_PASSWORD or a prompt)."""
    if therapist_id is not None and db.session.get(Therapist, therapist_id) is None:
        raise click.ClickException(f"There is no therapist with id {therapist_id}.")
    password = os.environ.get("PORTAL_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        user, created = create_user(email, password, role, therapist_id=therapist_id,
                                    reset_password=reset_password)
    except AccountError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"{'Created' if created else 'Updated'} {user.role} {user.email}.")
    if user.role == "therapist":
        therapist = user.therapist
        if therapist is not None:
            how = "as asked" if therapist_id is not None else "same email"
            click.echo(f"Linked to therapist {therapist.name} (id {therapist.id}, {how}): "
                       "they see the requests assigned to them.")
        else:
            click.echo("Not linked to any therapist (no active therapist has this email): "
                       "this account sees no requests until it is linked, with --therapist ID "
                       "or on the back office's Users page.")


@click.command("reset-second-factor")
@click.argument("email")
@with_appcontext
def reset_second_factor_command(email: str) -> None:
    """Forget a user's authenticator app and recovery codes (a lost phone, and no
    other admin to do it on the users page); audited. They set it up again at
    their next sign-in."""
    begin_write()
    user = find_user(email)
    if user is None:
        db.session.rollback()
        raise click.ClickException(f"There is no user with the email {email}.")
    mfa.reset_second_factor(user)
    user.session_token = new_session_token()  # signs them out everywhere
    db.session.flush()
    audit.record("user_mfa_reset", actor="command line", user_id=user.id)
    email = user.email
    db.session.commit()
    click.echo(f"Reset the second sign-in step of {email}: they set it up again when they "
               "next sign in.")


@click.group("outbox")
def outbox_group() -> None:
    """Deliver the queued email."""


@outbox_group.command("send")
@click.option("--now", "include_waiting", is_flag=True,
              help="Also retry messages still waiting out their back-off (mail server is back).")
@with_appcontext
def outbox_send_command(include_waiting: bool) -> None:
    """Deliver every due message once. Exits 0 when SMTP is down (the rows say why)."""
    report = outbox.deliver_due(include_waiting=include_waiting)
    upkeep.forget_sent_bodies()
    report.waiting = outbox.waiting_count()
    click.echo(report.summary())
    written = calendar_delivery.deliver_due()  # the outbox's calendar channel
    if written.attempted:
        click.echo(f"Consultations written into calendars: {written.summary()}")
    texted = text_delivery.work()  # the outbox's text channel (and text reminders due)
    if texted.attempted:
        click.echo(f"Texts: {texted.summary()}")


@outbox_group.command("work")
@click.option("--max-loops", type=click.IntRange(min=1), default=None,
              help="Stop after this many rounds (for tests).")
@with_appcontext
def outbox_work_command(max_loops: int | None) -> None:
    """Keep delivering: queue due reminders and send what is due, every OUTBOX_POLL_SECONDS.
    A database or mail error does not stop it: it logs, waits longer each time, and
    carries on once the cause is gone."""

    def show(reminders: int, report: outbox.DeliveryReport) -> None:
        if reminders or report.attempted:
            report.waiting = outbox.waiting_count()
            click.echo(f"Reminders queued {reminders}. {report.summary()}")

    try:
        senders.work_loop(current_app._get_current_object(), threading.Event(),
                                max_rounds=max_loops, on_round=show, survive_errors=True,
                                name="sender")
    except KeyboardInterrupt:
        click.echo("Stopped.")


@outbox_group.command("retry-failed")
@with_appcontext
def outbox_retry_failed_command() -> None:
    """Queue every failed message again with fresh attempts (once the cause is fixed)."""
    begin_write()
    count = upkeep.retry_failed()
    db.session.commit()
    click.echo(f"Queued again: {count}. Run 'outbox send' (or let a worker) deliver them.")


@click.group("reminders")
def reminders_group() -> None:
    """Reminder emails to clients."""


@reminders_group.command("send")
@with_appcontext
def reminders_send_command() -> None:
    """Queue a reminder for each booking in the next 24 hours (running it twice adds nothing)."""
    count = upkeep.queue_reminders()
    click.echo(f"Reminders queued: {count}.")
    begin_write()
    texts = text_outgoing.queue_due_reminders()  # 24 h and 2 h before, where agreed
    db.session.commit()
    click.echo(f"Text reminders queued: {texts}.")


@click.command("purge")
@click.option("--older-than-days", "days", type=click.IntRange(min=1), required=True,
              help="Delete closed requests received more than this many days ago, and "
                   "forget the emails sent before then.")
@with_appcontext
def purge_command(days: int) -> None:
    """Retention: delete closed requests (cancelled, completed, no-show, not a fit) with
    their notes and emails, and blank the content and recipients of older emails; audited.
    Open requests stay, however old. Pending requests whose email was not confirmed in
    time are deleted too (only an anonymous count stays)."""
    begin_write()
    released = verification.release_expired()
    report = purge_old_requests(days)
    db.session.commit()
    remove_sink_copies(report.message_ids)
    click.echo(f"Deleted {report.deleted} request{'s' if report.deleted != 1 else ''} "
               f"older than {days} days. Forgot the content and recipients of "
               f"{report.forgotten} email{'s' if report.forgotten != 1 else ''}.")
    if released:
        click.echo(f"Deleted {released} unconfirmed request{'s' if released != 1 else ''} "
                   "whose hold ran out.")


@click.command("refresh-search-names")
@with_appcontext
def refresh_search_names_command() -> None:
    """Store every request's name search columns afresh (accents stripped): once,
    after upgrading from a version that kept accents in them."""
    begin_write()
    changed = refresh_search_names()
    db.session.commit()
    click.echo(f"Requests whose search names changed: {changed}.")


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for monitoring.")
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@with_appcontext
def check_command(as_json: bool, strict: bool) -> None:
    """Is this installation safe for the internet? One line per problem (id, level,
    what, how to fix); exits 1 when there is an error (or any problem, with --strict)."""
    problems = readiness.run_checks(current_app._get_current_object())
    failed = readiness.has_errors(problems) or (strict and bool(problems))
    if as_json:
        click.echo(json.dumps({"ok": not failed,
                               "problems": [problem.as_dict() for problem in problems]}))
    else:
        for problem in problems:
            click.echo(problem.line())
        errors = sum(problem.level == readiness.ERROR for problem in problems)
        click.echo(f"{errors} error{'s' if errors != 1 else ''}, "
                   f"{len(problems) - errors} warning{'s' if len(problems) - errors != 1 else ''}.",
                   err=True)
    if failed:
        raise SystemExit(1)


@click.command("backup")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--keep", type=click.IntRange(min=1), default=None,
              help="Then delete all but this many newest backups in DIRECTORY "
                   "(only files this command made).")
@with_appcontext
def backup_command(directory: Path, keep: int | None) -> None:
    """Write a consistent copy of the database into DIRECTORY (mode 0600; it holds
    health data: keep it encrypted)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = backup.make_backup(db.engine, directory)
        deleted = backup.prune(directory, keep) if keep else []
    except (backup.BackupError, OSError) as error:
        raise click.ClickException(f"Backup failed: {error}") from error
    click.echo(f"Backup written: {path} ({path.stat().st_size:,} bytes).")
    if deleted:
        click.echo(f"Deleted {len(deleted)} older backup{'s' if len(deleted) != 1 else ''}, "
                   f"keeping the newest {keep}.")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def restore_command(file: Path) -> None:
    """Restore a backup into the configured database, which must be empty."""
    try:
        backup.restore(db.engine, file)
    except (backup.BackupError, OSError) as error:
        raise click.ClickException(f"Restore failed: {error}") from error
    click.echo(f"Restored {file} into the configured database.")


@click.command("rotate-keys")
@click.option("--batch", type=click.IntRange(min=1), default=encryption.ROTATE_BATCH,
              help="Rows per transaction.")
@with_appcontext
def rotate_keys_command(batch: int) -> None:
    """Write every encrypted value again under the newest key in ENCRYPTION_KEYS (the
    first), a batch at a time while the site runs. Then the other keys can go."""
    keys = encryption.keyring()
    columns = encryption.encrypted_columns(db.metadata)
    report = encryption.rotate(db.engine, keys, columns, batch=batch)
    click.echo(f"Re-encrypted {report.rewritten} value{'s' if report.rewritten != 1 else ''} "
               f"under key {keys.newest.id}; {report.current} already used it.")
    begin_write()
    rehashed = text_numbers.rehash()  # the phone lookups of texting, under the newest key
    db.session.commit()
    if rehashed:
        click.echo(f"Phone lookups rewritten under the newest key: {rehashed}.")
    if report.failed:
        shown = ", ".join(report.failed[:10])
        more = f" and {len(report.failed) - 10} more" if len(report.failed) > 10 else ""
        raise click.ClickException(
            f"{len(report.failed)} value{'s' if len(report.failed) != 1 else ''} decrypt with "
            f"no key in ENCRYPTION_KEYS and were left as they are: {shown}{more}.")
    if len(keys.keys) > 1:
        click.echo("Every value now reads with the newest key: the other keys can be "
                   "removed from ENCRYPTION_KEYS.")


@click.group("calendars")
def calendars_group() -> None:
    """Therapists' own calendars: read them, connect one, the private feed."""


@calendars_group.command("sync")
@with_appcontext
def calendars_sync_command() -> None:
    """Read every connected calendar once (busy times; stale ones offer no times)."""
    report = calendar_sync.sync_all()
    click.echo(report.summary() + ".")
    written = calendar_delivery.deliver_due()  # and what waits to be written into them
    if written.attempted:
        click.echo(f"Consultations written into calendars: {written.summary()}")


def _therapist_by_email(email: str) -> Therapist:
    therapist = db.session.scalar(select(Therapist).where(
        func.lower(Therapist.email) == email.strip().lower()).order_by(Therapist.id))
    if therapist is None:
        raise click.ClickException(f"There is no therapist with the email {email}.")
    return therapist


@calendars_group.command("connect")
@click.argument("email")
@click.option("--ics", "ics_url", help="A secret iCalendar address (https).")
@click.option("--caldav", "caldav_url", help="A CalDAV calendar's address (https).")
@click.option("--user", "username", help="The CalDAV user name (password: PORTAL_PASSWORD).")
@with_appcontext
def calendars_connect_command(email: str, ics_url: str | None, caldav_url: str | None,
                              username: str | None) -> None:
    """Connect the therapist with EMAIL to their own calendar, then read it once."""
    if bool(ics_url) == bool(caldav_url):
        raise click.UsageError("Give exactly one of --ics URL or --caldav URL.")
    password = None
    if caldav_url:
        if not username:
            raise click.UsageError("--caldav needs --user NAME.")
        password = os.environ.get("PORTAL_PASSWORD") or click.prompt(
            "App password", hide_input=True)
    therapist = _therapist_by_email(email)
    begin_write()
    try:
        calendar_connections.connect(therapist, "caldav" if caldav_url else "ics",
                                     caldav_url or ics_url, username=username,
                                     password=password)
    except CalendarError as error:
        db.session.rollback()
        raise click.ClickException(error.words) from None
    audit.record("calendar_connected", actor="system", therapist_id=therapist.id)
    db.session.commit()
    click.echo(f"Connected {therapist.name}'s calendar. "
               + calendar_connections.test(therapist.id))


@calendars_group.command("disconnect")
@click.argument("email")
@with_appcontext
def calendars_disconnect_command(email: str) -> None:
    """Disconnect the therapist's calendar (its busy times are forgotten)."""
    therapist = _therapist_by_email(email)
    begin_write()
    gone = calendar_connections.disconnect(therapist)
    audit.record("calendar_disconnected", actor="system", therapist_id=therapist.id)
    db.session.commit()
    click.echo(f"Disconnected {therapist.name}'s calendar." if gone
               else f"{therapist.name} had no calendar connected.")


@calendars_group.command("feed-url")
@click.argument("email")
@click.option("--new", is_flag=True, help="Make a new address; the old one stops working.")
@with_appcontext
def calendars_feed_url_command(email: str, new: bool) -> None:
    """Print the therapist's private feed address of their consultations."""
    therapist = _therapist_by_email(email)
    begin_write()
    token = calendar_feed.feed_token(therapist.id, new=new)
    if new:
        audit.record("calendar_feed_renewed", actor="system", therapist_id=therapist.id)
    db.session.commit()
    click.echo(calendar_feed.feed_url(token))
