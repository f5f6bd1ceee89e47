"""portal.web.transaction: the one owner of a page's write transaction."""

from __future__ import annotations

import pytest
from flask import session
from sqlalchemy import select

from portal.booking import verification
from portal.booking.therapists import Therapist
from portal.database import KeepsChanges
from portal.extensions import db
from portal.web.transaction import Undo, flash_when_saved, writes, writes_on_post, writing
from tests.factories import make_therapist


class Counted(KeepsChanges, Exception):
    """Like a wrong code: what was done before it stays."""


class Refused(Exception):
    """Like a slot taken: nothing stays."""


def flashed() -> list[tuple[str, str]]:
    # Read from the session: get_flashed_messages() reads once per request.
    return list(session.get("_flashes", []))


def therapists_stored(app) -> list[str]:
    """Read from a fresh session: only what was committed."""
    db.session.remove()
    return list(db.session.scalars(select(Therapist.name).order_by(Therapist.name)))


def test_a_normal_end_commits_once_and_flashes_what_it_saved(app):
    with app.test_request_context("/"):
        with writing():
            make_therapist("Ana Ruiz")
            flash_when_saved("Saved.")
            assert flashed() == []  # not before the commit
        assert flashed() == [("info", "Saved.")]
        assert therapists_stored(app) == ["Ana Ruiz"]


def test_an_error_rolls_everything_back_and_says_nothing(app):
    with app.test_request_context("/"):
        with pytest.raises(Refused), writing():
            make_therapist("Ana Ruiz")
            db.session.flush()
            flash_when_saved("Saved.")
            raise Refused()
        assert flashed() == []
        assert therapists_stored(app) == []


def test_an_error_that_keeps_its_changes_is_committed_then_let_through(app):
    with app.test_request_context("/"):
        with pytest.raises(Counted), writing():
            make_therapist("Ana Ruiz")
            raise Counted()
        assert therapists_stored(app) == ["Ana Ruiz"]


def test_the_verify_outcomes_that_count_keep_their_changes():
    # A wrong code counts and a fifth one drops the request: kept. No new code: nothing.
    for kept in (verification.WrongCode, verification.TooManyTries, verification.Expired,
                 verification.AlreadyHasRequest):
        assert issubclass(kept, KeepsChanges)
    assert not issubclass(verification.NoMoreCodes, KeepsChanges)


def test_a_view_that_raises_undo_shows_its_page_after_the_rollback(app):
    @writes
    def view():
        make_therapist("Ana Ruiz")
        flash_when_saved("Saved.")
        raise Undo(lambda: (make_therapist("Bea Lim"), "the page with its errors")[1])

    with app.test_request_context("/", method="POST"):
        assert view() == "the page with its errors"
        assert flashed() == []
        # The page's own write (an audit line, in the back office) is committed.
        assert therapists_stored(app) == ["Bea Lim"]


def test_an_unexpected_error_in_a_view_is_rolled_back_and_goes_on(app):
    @writes
    def view():
        make_therapist("Ana Ruiz")
        raise RuntimeError("a bug")

    with app.test_request_context("/", method="POST"):
        with pytest.raises(RuntimeError):
            view()
        assert therapists_stored(app) == []


def test_writes_on_post_leaves_a_get_outside_any_write(app):
    seen = []

    @writes_on_post
    def view():
        seen.append(db.session().in_transaction())
        make_therapist("Ana Ruiz")
        return "page"

    with app.test_request_context("/"):
        assert view() == "page"
        assert seen == [False]
        assert therapists_stored(app) == []  # a GET commits nothing
    with app.test_request_context("/", method="POST"):
        assert view() == "page"
        assert therapists_stored(app) == ["Ana Ruiz"]


def test_a_failed_commit_flashes_nothing(app, monkeypatch):
    def refuse():
        raise RuntimeError("connection lost during COMMIT")

    with app.test_request_context("/"):
        with pytest.raises(RuntimeError), writing():
            make_therapist("Ana Ruiz")
            flash_when_saved("Saved.")
            monkeypatch.setattr(db.session, "commit", refuse)
        monkeypatch.undo()
        assert flashed() == []
