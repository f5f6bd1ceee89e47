"""The request journey's answers between its pages (DESIGN "The request flow", v3).

Each step is Post/Redirect/Get, errors included: a POST keeps its step's answers in
the signed session and redirects; the GET that follows shows them. A step's valid
answers are kept under its name; a POST that needs fixing keeps what was sent, as
sent, and the GET validates it again to show the messages in the visitor's language
(so no message is ever stored). Back, Forward and refresh are plain GETs: they
never ask to resubmit a form and never lose an answer.

The session cookie is signed, not encrypted, so the answers travel in it encrypted
(Fernet: AES with an HMAC, under a key derived from SECRET_KEY): someone who reads the
cookie on a shared computer or in a log reads nothing. Only what the visitor typed on
this device is in it, never anything read from the database; it lasts a day at most,
"Exit this page" clears it (portal.public.views.exit_this_page), and it is forgotten
once the request is confirmed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, g, request, session
from werkzeug.datastructures import MultiDict

# The session key: one encrypted value holding {"answers": {...}, "posted": {...}}.
JOURNEY = "journey"
# Answers older than this are read as none (a shared computer, a tab left open).
MAX_AGE_SECONDS = 24 * 3600
# Bounds on what a sent form may put into the cookie (a browser drops one over 4 KB;
# every real answer is far shorter than this).
MAX_FIELDS = 8
MAX_VALUE = 200


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    key = hashlib.sha256(b"consultation-journey:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def cipher() -> Fernet:
    """The journey's key, for other answers kept in the session for a moment
    (portal.public.prepare)."""
    return _fernet(current_app.config["SECRET_KEY"])


def decode(value: object, secret: str) -> dict:
    """The journey kept in a session value; empty when absent, forged or too old."""
    if not isinstance(value, str):
        return {}
    try:
        data = json.loads(_fernet(secret).decrypt(value.encode(), ttl=MAX_AGE_SECONDS))
    except (InvalidToken, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _state() -> dict:
    if "journey" not in g:
        g.journey = decode(session.get(JOURNEY), current_app.config["SECRET_KEY"])
    return g.journey


def _save(state: dict) -> None:
    g.journey = state
    if not state:
        session.pop(JOURNEY, None)
        return
    token = _fernet(current_app.config["SECRET_KEY"]).encrypt(
        json.dumps(state, separators=(",", ":")).encode())
    session[JOURNEY] = token.decode()


def _answers() -> dict:
    answers = _state().get("answers")
    return answers if isinstance(answers, dict) else {}


def answers(step: str) -> dict | None:
    """The valid answers kept for ``step``, or None."""
    value = _answers().get(step)
    return value if isinstance(value, dict) else None


def keep(step: str, values: dict) -> None:
    """Keep ``step``'s valid answers; what was sent with errors is no longer needed."""
    state = dict(_state())
    state["answers"] = {**_answers(), step: values}
    posted = state.get("posted")
    if isinstance(posted, dict) and posted.get("step") == step:
        state.pop("posted")
    _save(state)


def _set_posted(step: str, data: dict | None, notice: str | None) -> None:
    _save({**_state(), "posted": {"step": step, "data": data, "notice": notice}})


def keep_sent(step: str, fields: tuple[str, ...], notice: str | None = None) -> None:
    """Keep what this POST sent for ``step`` (only ``fields``) to show it again with
    its messages, and an optional ``notice`` (a key of the page's own messages)."""
    data = {}
    for name in fields:
        values = request.form.getlist(name)[:MAX_FIELDS]
        if values:
            data[name] = [value[:MAX_VALUE] for value in values]
    _set_posted(step, data, notice)


def session_set_sent(step: str, data: MultiDict, notice: str | None = None) -> None:
    """Keep ``data`` as if it had been sent for ``step`` (a kept step judged again)."""
    _set_posted(step, {name: [v[:MAX_VALUE] for v in data.getlist(name)[:MAX_FIELDS]]
                       for name in data}, notice)


def sent(step: str) -> tuple[MultiDict | None, str | None]:
    """What was sent for ``step`` with errors, as form data, and its notice."""
    posted = _state().get("posted")
    if not isinstance(posted, dict) or posted.get("step") != step:
        return None, None
    data = posted.get("data")
    notice = posted.get("notice")
    formdata = MultiDict([(name, value) for name, values in data.items() for value in values]
                         ) if isinstance(data, dict) else None
    return formdata, notice if isinstance(notice, str) else None


def set_notice(step: str, notice: str) -> None:
    """A message for ``step``'s next GET that no field carries (a time just taken)."""
    _set_posted(step, None, notice)


def drop(*steps: str) -> None:
    state = dict(_state())
    state["answers"] = {k: v for k, v in _answers().items() if k not in steps}
    _save(state)


def value(name: str):
    """A journey-wide value (the form token)."""
    return _state().get(name)


def set_value(name: str, content) -> None:
    _save({**_state(), name: content})


def forget() -> None:
    _save({})
