"""The "Possible duplicates" page: groups of customers sharing an e-mail, a phone, or a
surname and postcode, from which an owner or admin starts a merge.

One instance per staff role, like every other screen of the panel, so the role is fixed when
the page is built and the merge link is decided by the role's ``merge`` capability, never by
a per-request switch. It only reads; the merge itself is the customer view's.
"""

from flask import flash, redirect, request, url_for
from flask_admin import expose

from crm.actions import ActionError
from crm.actions.duplicates import REASON_LABELS, find_duplicate_groups
from crm.admin_views.access import RolePage
from crm.extensions import db

PAGE_SIZE = 25


class DuplicatesView(RolePage):
    """Every staff role sees the groups; only a role that may merge gets the merge link."""

    @property
    def can_merge(self) -> bool:
        return self.can("merge")

    def merge_url(self, group) -> str | None:
        """The customer view's merge preview for this group (owner and admin only)."""
        if not self.can_merge:
            return None
        return url_for(f"customer_{self.role}.merge_view", ids=group.customer_ids)

    def details_url(self, customer) -> str:
        return url_for(f"customer_{self.role}.details_view", id=customer.id)

    @expose("/")
    def index(self):
        reason = request.args.get("reason") or None
        after = request.args.get("after") or None
        try:
            page = find_duplicate_groups(db.session, reason=reason, after=after, limit=PAGE_SIZE)
        except ActionError as exc:
            flash(str(exc), "error")
            return redirect(url_for(".index"))
        next_url = None
        if page.next_after:
            next_url = url_for(".index", reason=reason, after=page.next_after)
        return self.render(
            "admin/duplicates/index.html",
            page=page,
            reason=reason,
            reasons=REASON_LABELS,
            next_url=next_url,
            first_page=after is None,
        )
