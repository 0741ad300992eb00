"""Work menu: work addresses, service reminders, leads, bookings, notes."""

from flask import flash
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from markupsafe import Markup
from wtforms.validators import InputRequired, Optional, ValidationError

from crm.actions.attribution import attribute, ensure_findable
from crm.actions.block_email import ensure_record_not_blocked
from crm.admin_views.customers import ADDRESS_ARGS, TITLE_CHOICES, CustomerLookup
from crm.admin_views.filters import MoneyGreater
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import Email, Money, Phone, SaneDate, choices
from crm.admin_views.spec import CrmModelView
from crm.admin_views.work_address_page import WorkAddressPageMixin, address_link
from crm.extensions import db
from crm.formatting import wall
from crm.models import Booking, Note, WorkAddress
from crm.models.booking import ATTRIBUTIONS, BOOKING_STATUSES
from crm.models.comms import STAFF_NOTE_KINDS
from crm.models.customer import ADDRESS_STATUSES


class WorkAddressView(WorkAddressPageMixin, CrmModelView):
    guard_redacted = True
    model_class = WorkAddress
    column_list = ["customer", "address_line_1", "town", "postcode", "occupier_surname",
                   "landlord", "status"]
    column_details_list = column_list + [
        "address_line_2", "county", "country", "occupier_title", "occupier_first_name",
        "occupier_phone", "occupier_email", "created_at", "updated_at"]
    column_export_list = column_details_list[:-2]
    form_columns = ["customer", "address_line_1", "address_line_2", "town", "county",
                    "postcode", "country", "occupier_title", "occupier_first_name",
                    "occupier_surname", "occupier_phone", "occupier_email", "landlord", "status"]
    column_sortable_list = ["postcode", "status", "occupier_surname"]
    column_searchable_list = ["postcode", "address_line_1"]
    column_filters = [sqla_filters.FilterEqual(WorkAddress.status, "Status",
                                               options=choices(ADDRESS_STATUSES)),
                      "postcode", "town"]
    column_formatters = {"customer": customer_link, "address_line_1": address_link}
    column_formatters_export = {"customer": export_str("customer"),
                                "landlord": export_str("landlord")}
    form_choices = {"status": choices(ADDRESS_STATUSES), "occupier_title": TITLE_CHOICES}
    form_args = {**ADDRESS_ARGS, "customer": {"validators": [InputRequired()]},
                 "occupier_surname": {"default": "Occupier"},
                 "occupier_phone": {"validators": [Optional(), Phone()]},
                 "occupier_email": {"validators": [Optional(), Email()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer"), "landlord": CustomerLookup("landlord")}


ATTRIBUTION_SAID = {
    "exact": "Booking {reference} was attached to {customer}, whose e-mail and name match.",
    "related": "Booking {reference} was attached to {customer}, whose e-mail matches but "
               "not the name: it is listed under Related bookings to review.",
    "new": "Booking {reference} made a new client, {customer}: no customer had that e-mail.",
    "waiting": "Booking {reference} waits for its customer: no customer has that e-mail yet, "
               "and only a confirmed booking creates one.",
}


def _booking_customer(view, context, model, name):
    if model.customer_id is None:
        return Markup('<span class="text-muted">waiting for a customer</span>')
    return customer_link(view, context, model, name)


class BookingView(CrmModelView):
    guard_redacted = True
    model_class = Booking
    column_list = ["reference", "customer", "title", "status", "starts_at", "ends_at",
                   "value", "attribution"]
    column_details_list = column_list + ["work_address", "contact_first_name",
                                         "contact_surname", "contact_email", "contact_phone",
                                         "lead", "created_at", "updated_at"]
    column_export_list = column_list + ["work_address", "contact_first_name", "contact_surname",
                                        "contact_email"]
    # The customer may be left empty when the contact's e-mail is given: the booking then
    # finds its customer by e-mail (crm.actions.attribution), and says how it did.
    form_columns = ["customer", "contact_first_name", "contact_surname", "contact_email",
                    "contact_phone", "work_address", "title", "status", "starts_at", "ends_at",
                    "value"]
    column_sortable_list = ["reference", "status", "starts_at", "value"]
    column_searchable_list = ["reference", "title"]
    column_filters = [sqla_filters.FilterEqual(Booking.status, "Status",
                                               options=choices(BOOKING_STATUSES)),
                      sqla_filters.FilterEqual(Booking.attribution, "Attribution",
                                               options=choices(ATTRIBUTIONS)),
                      sqla_filters.FilterEmpty(Booking.customer_id, "Waiting for a customer"),
                      "starts_at",
                      MoneyGreater(Booking.value, "Value")]
    column_default_sort = ("starts_at", True)
    # A booking's times are kept as the local clock reads them: shown as they are.
    column_labels = {"contact_first_name": "Contact first name",
                     "contact_surname": "Contact surname", "contact_email": "Contact e-mail",
                     "contact_phone": "Contact phone"}
    column_formatters = {"customer": _booking_customer,
                         "starts_at": lambda v, c, m, n: wall(m.starts_at),
                         "ends_at": lambda v, c, m, n: wall(m.ends_at)}
    column_formatters_export = {"customer": export_str("customer"),
                                "work_address": export_str("work_address")}
    form_choices = {"status": choices(BOOKING_STATUSES)}
    field_order_rules = (("ends_at", "starts_at", "The booking cannot end before it starts."),)
    form_args = {"customer": {"validators": [Optional()],
                              "description": "Leave empty to find the customer by the "
                                             "contact's e-mail."},
                 "contact_phone": {"validators": [Optional(), Phone()]},
                 "title": {"validators": [InputRequired()]},
                 "starts_at": {"validators": [InputRequired(), SaneDate()]},
                 "ends_at": {"validators": [Optional(), SaneDate()]},
                 "value": {"validators": [Optional(), Money(allow_zero=True)]},
                 "contact_email": {"validators": [Optional(), Email()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer"),
                      "work_address": {"fields": ["postcode", "address_line_1"], "page_size": 10}}

    def on_model_change(self, form, model, is_created):
        from crm.models.sequence import next_number

        self.check(ensure_record_not_blocked, db.session, model, email_attr="contact_email",
                   is_created=is_created)
        self.check(ensure_findable, model)
        if not model.reference:
            model.reference = next_number(db.session, "booking")
        if model.customer is not None and is_created:
            model.attribution = "manual"  # chosen by a person
        super().on_model_change(form, model, is_created)
        if model.customer is None:
            result = self.check(attribute, db.session, model, actor=current_user)
            flash(ATTRIBUTION_SAID[result.outcome].format(
                customer=result.customer, reference=model.reference), "info")


class NoteView(CrmModelView):
    guard_redacted = True
    model_class = Note
    column_list = ["created_at", "customer", "kind", "body", "important",
                   "do_not_work_with_again", "author"]
    column_details_list = column_list + ["work_address", "updated_at"]
    column_export_list = column_list + ["work_address"]
    form_columns = ["customer", "work_address", "kind", "body", "important",
                    "do_not_work_with_again"]
    column_sortable_list = ["created_at", "kind", "important"]
    column_searchable_list = ["body"]
    column_filters = [sqla_filters.FilterEqual(Note.kind, "Kind",
                                               options=choices(STAFF_NOTE_KINDS)),
                      "important", "do_not_work_with_again", "created_at"]
    column_default_sort = ("created_at", True)
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": export_str("customer"),
                                "author": export_str("author"),
                                "work_address": export_str("work_address")}
    form_choices = {"kind": choices(STAFF_NOTE_KINDS)}
    form_args = {"body": {"validators": [InputRequired()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer"),
                      "work_address": {"fields": ["postcode", "address_line_1"], "page_size": 10}}

    def base_query(self):
        """Staff's notes; customers' questions from the portal are Money → Portal queries."""
        return db.session.query(Note).filter(Note.kind != "portal")

    def on_model_change(self, form, model, is_created):
        if model.customer is None and model.work_address is None:
            raise ValidationError("A note belongs to a customer or a work address: choose one.")
        if is_created and model.author_id is None:
            model.author_id = current_user.id
        super().on_model_change(form, model, is_created)
