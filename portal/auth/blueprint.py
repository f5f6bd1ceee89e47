"""The sign-in blueprint (its routes are in :mod:`portal.auth.views`)."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/admin")
