"""The public consultation request flow: its blueprint, with the routes of
portal.public.views (the request flow), portal.public.verify (the email check) and
portal.public.manage (the client's manage pages) registered on it."""

from portal.public import manage, rebook, verify  # noqa: F401  (they register their routes on bp)
from portal.public.views import bp

__all__ = ["bp"]
