"""The one owner of a page's write transaction, in the spirit of Indico's ``RH.process``.

A view that changes something runs inside :func:`writing` (a ``with`` block) or is
decorated with :func:`writes`: the write begins (on SQLite the write lock is taken
first, see :func:`portal.database.begin_write`), a normal end commits once, and an
error rolls everything back, except an error whose type inherits
:class:`~portal.database.KeepsChanges` (a counted wrong code), which is committed
before it goes on. Views never call ``commit()`` or ``rollback()`` themselves.

What a page says about a change it made (:func:`flash_when_saved`) is flashed only
once the change is committed, so a commit that fails (the database gone) never leaves
"Saved" waiting for the next page. A decorated view that must undo what it did and
still show a page raises :class:`Undo` with the page to show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import wraps
from typing import Any

from flask import flash, g, request
from sqlalchemy.exc import SQLAlchemyError

from portal.database import KeepsChanges, begin_write
from portal.extensions import db

__all__ = ["KeepsChanges", "Undo", "flash_when_saved", "writes", "writes_on_post", "writing"]

_FLASHES = "_flash_when_saved"


class Undo(Exception):  # noqa: N818 - an instruction to the owner, not a failure
    """Roll back what the view did, then show ``then()``: made in a write transaction
    of its own, committed (a page of the back office writes its audit line)."""

    def __init__(self, then: Callable[[], Any]) -> None:
        super().__init__()
        self.then = then


def flash_when_saved(message: str, category: str = "info") -> None:
    """Flash ``message`` once the open write transaction is committed; never if it is
    rolled back."""
    g.setdefault(_FLASHES, []).append((message, category))


@contextmanager
def writing() -> Iterator[None]:
    """Begin the write; commit at the end of the block, or roll back when an error
    leaves it (committing first when the error keeps its changes). Inside a write this
    view already began (the back office begins it before loading the signed-in user),
    it carries on in that transaction."""
    begin_write()
    try:
        yield
    except KeepsChanges:
        _commit()
        raise
    except BaseException:
        g.pop(_FLASHES, None)
        with suppress(SQLAlchemyError):  # a lost connection: the error raised says so
            db.session.rollback()
        raise
    _commit()


def _commit() -> None:
    try:
        db.session.commit()
    except BaseException:
        g.pop(_FLASHES, None)
        raise
    for message, category in g.pop(_FLASHES, []):
        flash(message, category)


def writes(view: Callable[..., Any]) -> Callable[..., Any]:
    """The view runs inside :func:`writing`; an :class:`Undo` it raises is rolled back and
    its page shown instead."""

    @wraps(view)
    def in_a_write(*args: Any, **kwargs: Any) -> Any:
        try:
            with writing():
                return view(*args, **kwargs)
        except Undo as undo:
            with writing():
                return undo.then()

    return in_a_write


def writes_on_post(view: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`writes` for a POST; a GET only reads, in no write transaction."""
    written = writes(view)

    @wraps(view)
    def by_method(*args: Any, **kwargs: Any) -> Any:
        if request.method in ("GET", "HEAD"):
            return view(*args, **kwargs)
        return written(*args, **kwargs)

    return by_method
