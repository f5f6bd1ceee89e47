"""How an outbox row leaves the portal: a Flask-Mail message over one connection.

``open_transport()`` gives the configured backend for one batch:

* ``smtp`` (production): Flask-Mail's connection, but with a socket timeout
  (``MAIL_TIMEOUT``; Flask-Mail sets none, so a server that accepts and never
  answers would hang the worker forever), STARTTLS/SSL that verify the server's
  certificate (Flask-Mail's ``starttls()`` passes no SSL context), and the SMTP
  debug output always off (it would print personal data).
* ``sink`` (``make run``): each message written to
  ``instance/mail/<time>-<kind>-<message>.eml`` and a log line naming the file, so a
  developer can read what would have gone out. ``<message>`` is drawn from the
  Message-ID (a hash, so no address reaches a file name): deleting or purging a
  request removes the copies of its emails with ``remove_sink_copies``; dropping a
  pending request (a wrong code too many, a hold run out) removes them once its
  transaction commits (``remove_sink_copies_after_commit``).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol

from flask import current_app
from flask_mail import Attachment, BadHeaderError, Connection, Message
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from portal import text_rules
from portal.messages.addresses import clean_address
from portal.messages.calendar_invite import calendar_method
from portal.messages.models import OutboxEmail

log = logging.getLogger("portal.mail")

# Refusals of one message; smtplib resets the transaction, the connection lives on.
# Every other OSError (smtplib's errors are OSErrors) means the connection is gone.
MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused,
                  smtplib.SMTPDataError)


class Transport(Protocol):
    def send(self, message: Message, kind: str) -> None: ...

    def reset(self) -> None:
        """Back to a clean state after a send failed in an unexpected way."""


def build_message(row: OutboxEmail) -> Message:
    """The Flask-Mail message for an outbox row, with the row's own Message-ID.

    ValueError or BadHeaderError when the row could never be sent safely.
    """
    if row.body_text is None:  # forgotten after the keeping period: nothing left to send
        raise ValueError("the message's content is no longer kept")
    message = Message(
        subject=row.subject, recipients=[clean_address(row.recipient)],
        body=row.body_text, html=row.body_html, sender=sender(),
        reply_to=current_app.config["PRACTICE_NOTIFY_EMAIL"],
    )
    # Stable across resends, so a duplicate after a crash can be recognised.
    message.msgId = row.message_id
    if row.ics:
        message.attachments.append(Attachment(
            # method= must match the calendar's METHOD for Outlook and Gmail to apply it.
            filename="consultation.ics",
            content_type=f"text/calendar; method={calendar_method(row.ics)}",
            data=row.ics.encode("utf-8"), disposition="attachment",
        ))
    # Flask-Mail's own check lets a subject through with CR LF and a space (a folded
    # line) and never looks at the Message-ID: every header value gets our one-line rule.
    headers = [message.subject, message.sender, message.reply_to, message.msgId,
               *message.recipients]
    values = [part for value in headers
              for part in (value if isinstance(value, tuple) else (value,))]
    if message.has_bad_headers() or any(
            text_rules.one_line_problem(value) for value in values if isinstance(value, str)):
        raise BadHeaderError("a header of this message contains a line break")
    return message


def sender() -> tuple[str, str]:
    """Who every email is from: ``MAIL_SENDER_NAME`` (by default the practice's name)
    at the address of ``MAIL_DEFAULT_SENDER``."""
    config = current_app.config
    _, address = parseaddr(config["MAIL_DEFAULT_SENDER"])
    return (config["MAIL_SENDER_NAME"] or config["PRACTICE_NAME"], address)


class SafeConnection(Connection):
    """Flask-Mail's connection with a timeout and certificate checks."""

    def __init__(self, timeout: float):
        super().__init__(current_app.extensions["mail"])
        self.timeout = timeout
        self.broken = False

    def configure_host(self) -> smtplib.SMTP:
        state = self.mail
        context = ssl.create_default_context()
        host: smtplib.SMTP
        if state.use_ssl:
            host = smtplib.SMTP_SSL(state.server, state.port, timeout=self.timeout,
                                    context=context)
        else:
            host = smtplib.SMTP(state.server, state.port, timeout=self.timeout)
        try:
            if state.use_tls:
                host.starttls(context=context)
            if state.username and state.password:
                host.login(state.username, state.password)
        except BaseException:
            host.close()
            raise
        return host

    def send(self, message: Message, envelope_from=None) -> None:
        try:
            super().send(message, envelope_from)
        except MESSAGE_ERRORS:
            raise
        except OSError:
            self.broken = True  # not worth a polite QUIT
            raise

    def __exit__(self, exc_type, exc_value, tb) -> None:
        if self.host is None:
            return
        try:
            if self.broken:
                self.host.close()
            else:
                self.host.quit()
        except (smtplib.SMTPException, OSError):
            self.host.close()
        finally:
            self.host = None


class SmtpTransport:
    def __init__(self, connection: SafeConnection):
        self.connection = connection

    def send(self, message: Message, kind: str) -> None:
        self.connection.send(message)

    def reset(self) -> None:
        # smtplib resets only after the refusals it knows; after anything else the
        # server may sit mid-transaction, and the next MAIL FROM would get a 503.
        # An OSError here means the connection is gone: the caller retries the rest.
        if self.connection.host is not None:
            self.connection.host.rset()


class SinkTransport:
    """Writes each message as an .eml file instead of sending it."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: Message, kind: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        data = message.as_bytes()
        token = sink_token(message.msgId)
        for n in range(1, 1000):
            suffix = "" if n == 1 else f"-{n}"
            path = self.directory / f"{stamp}-{kind}-{token}{suffix}.eml"
            try:
                with path.open("xb") as handle:
                    handle.write(data)
                break
            except FileExistsError:
                continue
        log.info("mail sink wrote %s", path.name)

    def reset(self) -> None:
        pass


def sink_directory() -> Path:
    directory = Path(current_app.config["MAIL_SINK_DIR"])
    return directory if directory.is_absolute() else Path(current_app.instance_path) / directory


def sink_token(message_id: str) -> str:
    """The part of a sink file's name that says which message it holds."""
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:20]


def remove_sink_copies(message_ids: Iterable[str], directory: Path | None = None) -> int:
    """Delete the mail sink's .eml copies of these messages (a resent one may have
    several); how many files went. Files are looked for whatever MAIL_BACKEND says
    now: the sink may have been on when they were written. Copies written before
    files were named by Message-ID are not found (remove ``instance/mail/`` by hand)."""
    directory = directory or sink_directory()
    tokens = {sink_token(message_id) for message_id in message_ids}
    if not tokens or not directory.is_dir():
        return 0
    removed = 0
    for path in directory.glob("*.eml"):
        # <time>-<kind>-<token>[-<n>]: neither the time nor a kind has a hyphen.
        parts = path.stem.split("-")
        if len(parts) >= 3 and parts[2] in tokens:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("mail sink removed %s file%s", removed, "" if removed == 1 else "s")
    return removed


# Session.info key: {sink directory: Message-IDs} to remove once the session commits.
_AFTER_COMMIT = "portal.sink_copies_after_commit"


def remove_sink_copies_after_commit(session: Session, message_ids: Iterable[str]) -> None:
    """Remove the sink's copies of these messages when ``session``'s transaction
    commits; forget them if it rolls back (the emails are still there then). For
    domain functions, which delete but never commit."""
    message_ids = set(message_ids)
    if message_ids:
        pending = session.info.setdefault(_AFTER_COMMIT, {})
        pending.setdefault(sink_directory(), set()).update(message_ids)


@event.listens_for(Session, "after_commit")
def _remove_after_commit(session: Session) -> None:
    # A savepoint's commit fires this too, while still nested: wait for the real one.
    if session.in_nested_transaction():
        return
    for directory, message_ids in session.info.pop(_AFTER_COMMIT, {}).items():
        try:
            remove_sink_copies(message_ids, directory)
        except OSError as error:  # the commit stands; a stray file is only a copy
            log.warning("mail sink copies not removed: %s", type(error).__name__)


@event.listens_for(Session, "after_transaction_end")
def _forget_after_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_AFTER_COMMIT, None)


@contextmanager
def open_transport():
    """The configured transport for one batch; SMTP errors on connecting propagate."""
    backend = current_app.config["MAIL_BACKEND"]
    if backend == "sink":
        yield SinkTransport(sink_directory())
        return
    if backend != "smtp":
        raise RuntimeError(f"MAIL_BACKEND must be 'smtp' or 'sink', not {backend!r}")
    with SafeConnection(float(current_app.config["MAIL_TIMEOUT"])) as connection:
        yield SmtpTransport(connection)
