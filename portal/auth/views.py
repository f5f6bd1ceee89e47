"""Sign-in and sign-out for the back office."""

from sqlalchemy import select

from portal.auth import bp  # noqa: F401
from portal.extensions import db, login_manager
from portal.models import User

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(session_token: str) -> User | None:
    # The cookie holds the rotating session token, never the user's id.
    return db.session.scalar(
        select(User).where(User.session_token == session_token, User.active.is_(True))
    )
