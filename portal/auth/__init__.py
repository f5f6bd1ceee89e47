"""Back-office sign-in."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/admin")

from portal.auth import views  # noqa: E402,F401  (routes register on bp)
