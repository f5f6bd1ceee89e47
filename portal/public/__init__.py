"""The public consultation request flow."""

from flask import Blueprint

bp = Blueprint("public", __name__)

from portal.public import manage, views  # noqa: E402,F401  (routes register on bp)
