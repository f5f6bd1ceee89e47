"""The public consultation request flow."""

from flask import Blueprint

bp = Blueprint("public", __name__)

from portal.public import views  # noqa: E402,F401  (routes register on bp)
