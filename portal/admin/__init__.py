"""The back office: admins and therapists work the requests."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from portal.admin import views  # noqa: E402,F401  (routes register on bp)
