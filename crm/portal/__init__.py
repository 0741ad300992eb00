"""The customer portal: its blueprint (``blueprint.py``: who is looking, the cookie, the
read-only view of staff), signing in (``access.py``) and the customer's pages
(``pages.py``)."""

from crm.portal import access, pages  # noqa: F401  (register their routes on the blueprint)
from crm.portal.blueprint import bp

__all__ = ["bp"]
