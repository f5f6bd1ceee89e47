"""The command-line tools: seed-demo and create-user."""

from sqlalchemy import func, select

from portal.booking.therapists import Therapist, WeeklyHours
from portal.extensions import db
from portal.models import ConsultationRequest
from portal.staff.models import User


def count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_seed_demo_is_idempotent(app, runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "admin@example.com" in first.output and "password:" in first.output
    assert count(app, Therapist) == 3 and count(app, User) == 1
    assert count(app, WeeklyHours) > 3
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0
    assert "already exists" in second.output
    assert count(app, Therapist) == 3 and count(app, User) == 1


def test_seed_demo_adds_synthetic_requests(app, runner):
    assert runner.invoke(args=["seed-demo", "--requests", "300"]).exit_code == 0
    assert runner.invoke(args=["seed-demo", "--requests", "200"]).exit_code == 0
    assert count(app, ConsultationRequest) == 500
    with app.app_context():
        oldest = db.session.scalar(select(func.min(ConsultationRequest.created_at)))
        newest = db.session.scalar(select(func.max(ConsultationRequest.created_at)))
        assert (newest - oldest).days > 200  # spread over the past year


def test_create_user_with_password_from_environment(app, runner, monkeypatch):
    monkeypatch.setenv("PORTAL_PASSWORD", "a long enough password")
    result = runner.invoke(args=["create-user", "Coord@Example.com", "--role", "admin"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == "coord@example.com" and user.role == "admin"
        assert user.password_hash.startswith("scrypt:")


def test_create_user_prompts_for_the_password(app, runner, monkeypatch):
    monkeypatch.delenv("PORTAL_PASSWORD", raising=False)
    result = runner.invoke(args=["create-user", "t@example.com", "--role", "therapist"],
                           input="a long enough password\na long enough password\n")
    assert result.exit_code == 0, result.output
    assert count(app, User) == 1


def test_create_user_refuses_an_existing_email_unless_resetting(app, runner, monkeypatch):
    monkeypatch.setenv("PORTAL_PASSWORD", "a long enough password")
    assert runner.invoke(args=["create-user", "a@example.com", "--role", "admin"]).exit_code == 0
    with app.app_context():
        old_hash = db.session.scalar(select(User.password_hash))
    again = runner.invoke(args=["create-user", "a@example.com", "--role", "admin"])
    assert again.exit_code != 0
    assert "already exists" in again.output
    monkeypatch.setenv("PORTAL_PASSWORD", "another long password")
    reset = runner.invoke(args=["create-user", "a@example.com", "--role", "admin",
                                "--reset-password"])
    assert reset.exit_code == 0, reset.output
    assert count(app, User) == 1
    with app.app_context():
        assert db.session.scalar(select(User.password_hash)) != old_hash


def test_create_user_refuses_a_short_password(app, runner, monkeypatch):
    monkeypatch.setenv("PORTAL_PASSWORD", "short")
    result = runner.invoke(args=["create-user", "a@example.com", "--role", "admin"])
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
    assert count(app, User) == 0


def test_seed_demo_draws_a_repeated_reference_again(app, runner, monkeypatch):
    from portal import demo

    draws = iter(["C-AAAAAAA", "C-AAAAAAA", "C-AAAAAAA", "C-BBBBBBB", "C-CCCCCCC"])
    monkeypatch.setattr(demo, "new_reference", lambda: next(draws))
    assert runner.invoke(args=["seed-demo", "--requests", "3"]).exit_code == 0
    with app.app_context():
        references = set(db.session.scalars(select(ConsultationRequest.reference)))
    assert references == {"C-AAAAAAA", "C-BBBBBBB", "C-CCCCCCC"}
