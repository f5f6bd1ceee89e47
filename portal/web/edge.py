"""What the portal refuses before any view reads a request.

A person's browser sends forms as ``application/x-www-form-urlencoded`` (or
``multipart/form-data``), text as UTF-8, and never a NUL byte or a file here. Anything
else comes from a script, and reaching the views it only makes trouble: PostgreSQL
refuses NUL in text (a ``DataError``), a file part in a text field has no length, a
JSON body with a lone surrogate cannot be encoded back into a page. So, before the
views and before CSRF:

- a NUL byte (or a lone surrogate) in the path is a 404, in a query argument or a
  posted field (name or value) a 400;
- a POST, PUT, PATCH or DELETE with a body of any other type is a 415;
- a posted file is a 400: no form of the portal takes one.

Posted bytes that are not UTF-8 become replacement characters (U+FFFD), which the
forms refuse as a field error (``portal.text_rules.unreadable``) and never show back.
Werkzeug itself would keep an undecodable ``%ED%A0%80`` as those nine characters (a
message would be stored with them, quietly) and drop a whole form sent as raw
undecodable bytes (the visitor would read "required" under every answer they gave).
"""

from __future__ import annotations

import typing as t
from urllib.parse import parse_qsl

from flask import Flask, abort, request
from flask.wrappers import Request
from werkzeug.formparser import FormDataParser

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ReplacingFormDataParser(FormDataParser):
    """Werkzeug's parser, with undecodable bytes in a url-encoded body replaced by
    U+FFFD, as its multipart parser does already."""

    def _parse_urlencoded(self, stream: t.IO[bytes], mimetype: str,
                          content_length: int | None, options: dict[str, str]):
        items = parse_qsl(stream.read().decode("utf-8", "replace"), keep_blank_values=True,
                          encoding="utf-8", errors="replace")
        return stream, self.cls(items), self.cls()


class PortalRequest(Request):
    form_data_parser_class = ReplacingFormDataParser


def register(app: Flask) -> None:
    app.request_class = PortalRequest
    # First of the before-request functions: nothing else reads the request before it.
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_what_no_form_sends)


def unfit(text: str) -> bool:
    """A NUL byte or a lone surrogate: no database column or page can hold it."""
    return "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text)


def refuse_what_no_form_sends() -> None:
    if unfit(request.path):
        abort(404)
    if any(unfit(key) or unfit(value) for key, value in request.args.items(multi=True)):
        abort(400)
    if request.method not in BODY_METHODS:
        return
    if request.mimetype not in FORM_TYPES and (request.mimetype or has_body()):
        abort(415)
    if request.files:
        abort(400)
    if any(unfit(key) or unfit(value) for key, value in request.form.items(multi=True)):
        abort(400)


def has_body() -> bool:
    """A body was sent: a length above 0, or one sent in chunks. A bodiless POST
    (the "Exit this page" beacon) has no type to judge."""
    length = request.content_length
    return bool(length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
