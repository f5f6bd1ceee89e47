"""Back-office sign-in. Importing the views registers their routes on the blueprint."""

from portal.auth import views  # noqa: F401  (importing the views registers their routes)
from portal.auth.blueprint import bp

__all__ = ["bp"]
