"""Work menu: work addresses, service reminders, leads, bookings, notes."""

from datetime import date

from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from markupsafe import Markup
from wtforms.validators import InputRequired, Optional, ValidationError

from crm.actions.block_email import ensure_record_not_blocked
from crm.admin_views.customers import ADDRESS_ARGS, TITLE_CHOICES, CustomerLookup
from crm.admin_views.filters import MoneyGreater
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import Email, Money, Phone, SaneDate, choices
from crm.admin_views.spec import CrmModelView
from crm.extensions import db
from crm.formatting import day, number, wall
from crm.models import Booking, Customer, Lead, Note, ServiceReminder, WorkAddress
from crm.models.booking import ATTRIBUTIONS, BOOKING_STATUSES, LEAD_STATUSES
from crm.models.comms import STAFF_NOTE_KINDS
from crm.models.customer import ADDRESS_STATUSES


class WorkAddressView(CrmModelView):
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
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": export_str("customer"),
                                "landlord": export_str("landlord")}
    form_choices = {"status": choices(ADDRESS_STATUSES), "occupier_title": TITLE_CHOICES}
    form_args = {**ADDRESS_ARGS, "customer": {"validators": [InputRequired()]},
                 "occupier_surname": {"default": "Occupier"},
                 "occupier_phone": {"validators": [Optional(), Phone()]},
                 "occupier_email": {"validators": [Optional(), Email()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer"), "landlord": CustomerLookup("landlord")}


class ServiceReminderView(CrmModelView):
    guard_redacted = True
    model_class = ServiceReminder
    column_list = ["work_address", "due_on", "description", "status"]
    column_details_list = column_list + ["created_at", "updated_at"]
    column_export_list = column_list
    form_columns = ["work_address", "due_on", "description", "status"]
    column_sortable_list = ["due_on", "status"]
    column_searchable_list = ["description"]
    column_filters = ["due_on", sqla_filters.FilterEqual(
        ServiceReminder.status, "Status", options=choices(("due", "done", "cancelled")))]
    column_default_sort = ("due_on", False)
    column_formatters_export = {"work_address": export_str("work_address")}
    form_choices = {"status": choices(("due", "done", "cancelled"))}
    form_args = {"work_address": {"validators": [InputRequired()]},
                 "due_on": {"validators": [InputRequired(), SaneDate()]},
                 "description": {"validators": [InputRequired()]}}
    form_ajax_refs = {"work_address": {"fields": ["postcode", "address_line_1"],
                                       "page_size": 10}}


LONG_OVERDUE_DAYS = 90  # past this a reminder stands out on the due list


def _how_long(days: int) -> str:
    """A span of days as a person says it: "5 days", "3 weeks", "4 months", "1 year 2 months"."""
    if days < 14:
        return f"{number(days)} day{'' if days == 1 else 's'}"
    if days < 61:
        return f"{number(days // 7)} weeks"
    months = days * 12 // 365
    if months < 12:
        return f"{number(months)} months"
    years, months = divmod(months, 12)
    text = f"{number(years)} year{'' if years == 1 else 's'}"
    return text + (f" {number(months)} month{'' if months == 1 else 's'}" if months else "")


def _overdue_for(view, context, model, name):
    """How long past its date a reminder is; a long-overdue one as a red badge."""
    days = (date.today() - model.due_on).days
    if days < 0:
        ahead = -days
        soon = "tomorrow" if ahead == 1 else f"in {_how_long(ahead)}"
        return Markup('<span class="due-soon">due {}</span>').format(soon)
    if days == 0:
        return Markup('<span class="overdue">due today</span>')
    if days >= LONG_OVERDUE_DAYS:
        return Markup('<span class="badge overdue-long">{} overdue</span>').format(
            _how_long(days))
    return Markup('<span class="overdue">{} overdue</span>').format(_how_long(days))


def _due_on(view, context, model, name):
    return day(model.due_on)


class DueReminderView(ServiceReminderView):
    """The due list: reminders still due at active work addresses of active customers, so a
    dormant customer's reminders drop off it (and come back when it is reactivated). Oldest
    first, each saying how long overdue it is; a long-overdue one stands out."""

    can_create = False
    column_default_sort = ("due_on", False)
    column_list = ["due_on", "overdue_for", "description", "work_address"]
    column_labels = {"due_on": "Due", "overdue_for": "Overdue", "work_address": "Work address"}
    column_formatters = {"overdue_for": _overdue_for, "due_on": _due_on}
    count_nouns = ("reminder due", "reminders due")
    list_table_class = "reminder-cards"  # on a phone, each reminder a card
    # Past 1,000 the list says "1,000+" and pages with Next/Previous: counting every due
    # reminder at active addresses of active customers costs more than the page.
    _count_cap = 1000

    def search_placeholder(self):
        return "Description"

    def base_query(self):
        from crm.actions.dormant import due_reminder_criteria

        return (
            db.session.query(ServiceReminder)
            .join(WorkAddress, WorkAddress.id == ServiceReminder.work_address_id)
            .join(Customer, Customer.id == WorkAddress.customer_id)
            .filter(*due_reminder_criteria())
        )

    def _list_query(self, sort_column, sort_desc, search, filters):
        unsorted, query = super()._list_query(sort_column, sort_desc, search, filters)
        if sort_column is None and not search:
            # SQLite would start from the customers and sort every due reminder; told to read
            # the reminders in due order, it stops after a page (PostgreSQL does so itself).
            query = query.with_hint(
                ServiceReminder, "INDEXED BY ix_service_reminder_due_id", "sqlite")
        return unsorted, query


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
