"""The public consultation request flow: its blueprint, with the routes of
portal.public.views (the request flow) and portal.public.manage (the client's
manage pages) registered on it."""

from portal.public import manage  # noqa: F401  (registers the manage routes on bp)
from portal.public.views import bp

__all__ = ["bp"]
