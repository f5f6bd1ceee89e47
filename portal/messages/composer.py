"""The one way a message is made and queued: the kind (``portal.messages.kinds``), who
gets it, and the context its templates read.

``render`` gives the subject and both parts as the recipient would read them (what
staff see in a preview is what the outbox stores); ``compose`` makes the outbox row
from them without adding it; ``queue_message`` adds it to the caller's session, in
the caller's transaction, unless a row with its key is already there (one key per
event and recipient: queuing the same event twice adds nothing the second time).
Nothing here commits or sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import make_msgid, parseaddr

from flask import current_app, render_template
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import text_rules
from portal.extensions import db
from portal.i18n import DEFAULT_LANGUAGE, in_language
from portal.messages.addresses import clean_address
from portal.messages.kinds import KINDS
from portal.messages.models import OutboxEmail

# Subjects show on lock screens and shared inboxes: they never name a condition.
FORBIDDEN_SUBJECT_WORDS = ("ketamine", "trauma", "depression", "ptsd", "anxiety")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def practice_details() -> dict[str, str]:
    """What every message's footer says about the practice."""
    config = current_app.config
    return {"name": config["PRACTICE_NAME"], "phone": config["PRACTICE_PHONE"],
            "email": config["PRACTICE_NOTIFY_EMAIL"], "reply_within": config["REPLY_WITHIN"]}


def render(kind: str, context: dict, *, language: str = DEFAULT_LANGUAGE,
           subject: str | None = None) -> Rendered:
    """The message of ``kind`` in ``language`` (a client's; everyone else reads English).
    ``subject``: instead of the kind's own, for an occasion that needs its own words."""
    message_kind = KINDS[kind]
    context = {"practice": practice_details(), **context}
    with in_language(language):
        title = str(subject if subject is not None else message_kind.subject)
        title = title % context if "%(" in title else title
        check_subject(title)
        return Rendered(title, render_template(f"{message_kind.template}.txt", **context),
                        render_template(f"{message_kind.template}.html", **context))


def compose(kind: str, recipient: str, context: dict, *, key: str,
            request_id: int | None = None, language: str = DEFAULT_LANGUAGE,
            subject: str | None = None, ics: str | None = None) -> OutboxEmail:
    """The outbox row for one message, rendered but not added to the session."""
    rendered = render(kind, context, language=language, subject=subject)
    return OutboxEmail(
        key=key, kind=kind, channel=KINDS[kind].channel, request_id=request_id,
        recipient=clean_address(recipient), subject=rendered.subject, ics=ics,
        message_id=make_msgid(domain=sender_domain()),
        body_text=rendered.text, body_html=rendered.html,
    )


def queue_message(kind: str, recipient: str, context: dict, *, key: str,
                  request_id: int | None = None, language: str = DEFAULT_LANGUAGE,
                  subject: str | None = None, ics: str | None = None) -> OutboxEmail | None:
    """Add one message to the outbox unless its ``key`` is already there; None when it
    was. ``ics``: a calendar file to attach (portal.messages.calendar_invite)."""
    if db.session.scalar(select(OutboxEmail.id).where(OutboxEmail.key == key)) is not None:
        return None
    row = compose(kind, recipient, context, key=key, request_id=request_id,
                  language=language, subject=subject, ics=ics)
    # A savepoint: a row another transaction just added is skipped, and the
    # caller's transaction carries on as if we had found it above.
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return None
    return row


def check_subject(subject: str) -> None:
    """A ValueError for a subject that names a condition or is not one line."""
    lowered = subject.lower()
    if any(word in lowered for word in FORBIDDEN_SUBJECT_WORDS) \
            or text_rules.one_line_problem(subject):
        raise ValueError("an email subject must be neutral and on one line")


def sender_domain() -> str:
    """The domain of the sender's address: the right-hand side of every Message-ID."""
    _, address = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])
    return address.rpartition("@")[2] or "localhost"
