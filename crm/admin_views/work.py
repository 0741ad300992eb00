"""Work menu: work addresses, service reminders, leads, bookings, notes."""

from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from wtforms.validators import InputRequired, Optional, ValidationError

from crm.actions.block_email import ensure_record_not_blocked
from crm.admin_views.customers import ADDRESS_ARGS, TITLE_CHOICES, CustomerLookup
from crm.admin_views.filters import MoneyGreater
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import Email, Money, Phone, SaneDate, choices
from crm.admin_views.spec import CrmModelView
from crm.admin_views.work_address_page import WorkAddressPageMixin, address_link
from crm.extensions import db
from crm.formatting import wall
from crm.models import Booking, Lead, Note, WorkAddress
from crm.models.booking import ATTRIBUTIONS, BOOKING_STATUSES, LEAD_STATUSES
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


class LeadView(CrmModelView):
    guard_redacted = True
    model_class = Lead
    column_list = ["first_name", "surname", "company_name", "email", "phone", "source",
                   "status", "customer", "created_at"]
    column_details_list = column_list + ["message", "updated_at"]
    column_export_list = column_list + ["message"]
    form_columns = ["first_name", "surname", "company_name", "email", "phone", "source",
                    "message", "status", "customer"]
    column_sortable_list = ["surname", "status", "created_at"]
    column_searchable_list = ["surname", "email"]
    column_filters = [sqla_filters.FilterEqual(Lead.status, "Status",
                                               options=choices(LEAD_STATUSES)),
                      "source", "created_at"]
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": export_str("customer")}
    form_choices = {"status": choices(LEAD_STATUSES)}
    form_args = {"surname": {"validators": [InputRequired()]},
                 "email": {"validators": [Optional(), Email()]},
                 "phone": {"validators": [Optional(), Phone()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer")}

    def on_model_change(self, form, model, is_created):
        self.check(ensure_record_not_blocked, db.session, model, is_created=is_created)
        super().on_model_change(form, model, is_created)


class BookingView(CrmModelView):
    guard_redacted = True
    model_class = Booking
    column_list = ["reference", "customer", "title", "status", "starts_at", "ends_at",
                   "value", "attribution"]
    column_details_list = column_list + ["work_address", "contact_email", "lead",
                                         "created_at", "updated_at"]
    column_export_list = column_list + ["work_address", "contact_email"]
    form_columns = ["customer", "work_address", "title", "status", "starts_at", "ends_at",
                    "value", "contact_email", "attribution"]
    column_sortable_list = ["reference", "status", "starts_at", "value"]
    column_searchable_list = ["reference", "title"]
    column_filters = [sqla_filters.FilterEqual(Booking.status, "Status",
                                               options=choices(BOOKING_STATUSES)),
                      sqla_filters.FilterEqual(Booking.attribution, "Attribution",
                                               options=choices(ATTRIBUTIONS)),
                      "starts_at",
                      MoneyGreater(Booking.value, "Value")]
    column_default_sort = ("starts_at", True)
    # A booking's times are kept as the local clock reads them: shown as they are.
    column_formatters = {"customer": customer_link,
                         "starts_at": lambda v, c, m, n: wall(m.starts_at),
                         "ends_at": lambda v, c, m, n: wall(m.ends_at)}
    column_formatters_export = {"customer": export_str("customer"),
                                "work_address": export_str("work_address")}
    form_choices = {"status": choices(BOOKING_STATUSES), "attribution": choices(ATTRIBUTIONS)}
    field_order_rules = (("ends_at", "starts_at", "The booking cannot end before it starts."),)
    form_args = {"customer": {"validators": [InputRequired()]},
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
        if not model.reference:
            model.reference = next_number(db.session, "booking")
        super().on_model_change(form, model, is_created)


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
