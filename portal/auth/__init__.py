"""Back-office sign-in and staff passwords. Importing the views registers their
routes on the blueprint."""

from portal.auth import passwords, views  # noqa: F401  (importing registers the routes)
from portal.auth.blueprint import bp

__all__ = ["bp"]
