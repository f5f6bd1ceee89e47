"""Signed values: the one way the portal signs what it hands out and reads back.

A :class:`Signed` is one kind of value (a manage link, a waitlist offer, a form
token), made with the app's ``SECRET_KEY`` and the kind's own salt, so a value of
one kind is never accepted as another. With ``max_age`` the value carries the time
it was made and expires (itsdangerous' ``URLSafeTimedSerializer``); without, it
never does (``URLSafeSerializer``). The salts and formats are the ones the links
already emailed were made with: a link sent before still works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer, URLSafeTimedSerializer

__all__ = ["Signed"]


class Signed:
    """``Signed("manage-booking", max_age=lambda: days * 86400)``: ``dumps(value)`` a
    URL-safe string, ``loads(text)`` the value back, or None for anything forged,
    garbled or expired. ``max_age``: seconds, or a function giving them (read from the
    config when a value is read)."""

    def __init__(self, salt: str, max_age: int | Callable[[], float] | None = None) -> None:
        self.salt = salt
        self.max_age = max_age

    @property
    def expires(self) -> bool:
        return self.max_age is not None

    def _serializer(self) -> URLSafeSerializer:
        kind = URLSafeTimedSerializer if self.expires else URLSafeSerializer
        return kind(current_app.config["SECRET_KEY"], salt=self.salt)

    def seconds(self) -> int | None:
        """How long a value stays good, in whole seconds (None: for ever)."""
        max_age = self.max_age() if callable(self.max_age) else self.max_age
        return None if max_age is None else int(max_age)

    def dumps(self, value: Any) -> str:
        return self._serializer().dumps(value)

    def loads(self, text: str) -> Any | None:
        serializer = self._serializer()
        try:
            if isinstance(serializer, URLSafeTimedSerializer):
                return serializer.loads(text, max_age=self.seconds())
            return serializer.loads(text)
        except BadData:  # a bad signature, an expired one, or a garbled payload
            return None
