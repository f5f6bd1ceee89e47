"""The public consultation request flow: its blueprint, with the routes of
portal.public.views and portal.public.steps (the request journey), portal.public.verify
(the email check), portal.public.prepare (the confirmation and "help us prepare"),
portal.public.manage (the client's manage pages) and portal.public.waitlist_offer
(the page behind a waitlist offer) registered on it."""

# Importing them registers their routes on bp.
from portal.public import manage, prepare, rebook, steps, verify, waitlist_offer  # noqa: F401
from portal.public.views import bp

__all__ = ["bp"]
