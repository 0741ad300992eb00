"""A work address's own page (its details view): the address and its occupier, its customer
and landlord, its bookings (ongoing and history, paged as on the customer's record page),
its notes and its service reminders, with buttons that open the booking, note and reminder
forms already filled in and come back here after saving. Its content comes from the read
model (``crm.customer_record.work_address_context``)."""

from flask import request, url_for
from markupsafe import Markup

from crm.admin_views.record_links import details_url, has_screen
from crm.customer_record import page_number, work_address_context
from crm.extensions import db
from crm.models import WorkAddress

# The page's add buttons: the screen's slug -> (its model, the section of this page to come
# back to). The form fills in this address, and its customer where it has that field.
ADD_SCREENS = {
    "booking": ("Booking", "#bookings"),
    "note": ("Note", "#notes"),
    "service_reminder": ("ServiceReminder", "#reminders"),
}


class WorkAddressPageMixin:
    details_template = "admin/work_address/details.html"

    def render(self, template, **kwargs):
        model = kwargs.get("model")
        if template == self.details_template and isinstance(model, WorkAddress):
            kwargs["place"] = work_address_context(
                db.session, model, self.role,
                ongoing_page=page_number(request.args.get("ongoing")),
                history_page=page_number(request.args.get("history")),
            )
            kwargs["add_urls"] = self._add_urls(model)
            kwargs["link_to"] = lambda model_name, key: details_url(self.role, model_name, key)
        return super().render(template, **kwargs)

    def _add_urls(self, address: WorkAddress) -> dict:
        """The page's "New booking", "Add note" and "Add reminder": each that screen's own
        form with this address (and its customer) filled in, coming back here. None where
        the role has no such screen, and when the address's customer is redacted or merged
        away (nothing may be added to it)."""
        customer = address.customer
        live = customer is not None and customer.redacted_at is None and \
            customer.merged_into_id is None
        back = self.get_url(".details_view", id=address.id)
        urls = {}
        for slug, (model, section) in ADD_SCREENS.items():
            if not live or not has_screen(self.role, model):
                urls[slug] = None
                continue
            urls[slug] = url_for(f"{slug}_{self.role}.create_view", work_address_id=address.id,
                                 url=back + section)
        return urls


def address_link(view, context, model, name):
    """The work address list's first line, a link to the address's page (relative to the
    list's own address, as the customer list's names are)."""
    return Markup('<a href="details/?id={}">{}</a>').format(model.id, model.address_line_1)
