"""Customers menu: customers (contacts inline), contacts, branches, tags."""

import re
from datetime import date, timedelta

from flask import flash, request
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model.form import InlineFormAdmin
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import false, or_, select
from wtforms.validators import InputRequired, NumberRange, Optional

from crm.actions.attribution import attach_waiting
from crm.actions.block_email import ensure_record_not_blocked
from crm.actions.guards import ensure_not_redacted
from crm.admin_views.adapters import IdSafeLoader
from crm.admin_views.customer_bulk import CustomerBulkMixin
from crm.admin_views.customer_merge import CustomerMergeMixin
from crm.admin_views.customer_record import CustomerRecordMixin
from crm.admin_views.dashboard import AgingFilter
from crm.admin_views.filters import MoneyGreater, MoneySmaller
from crm.admin_views.formatters import customer_link, money_cell, phone_display
from crm.admin_views.forms import CustomerForm, Email, Phone, Postcode, choices
from crm.admin_views.spec import CrmModelView
from crm.admin_views.statements import StatementMixin
from crm.extensions import db
from crm.formatting import number
from crm.loyalty import MEANING as LOYALTY_MEANING
from crm.models import Branch, Contact, Customer, Tag
from crm.models.customer import (
    ADDRESS_STATUSES,
    CUSTOMER_KINDS,
    CUSTOMER_STATUSES,
    CUSTOMER_TYPES,
    TITLES,
    customer_tag,
)
from crm.search_index import MIN_TERM, find_live_customers, search_customers, search_words
from crm.validation import without_control_characters

ADDRESS_ARGS = {
    "address_line_1": {"validators": [InputRequired()]},
    "postcode": {"validators": [InputRequired(), Postcode()]},
}
# A customer's own address is optional (a name and one way to reach them are enough), but
# one begun needs line 1 and the postcode: ``CustomerForm`` says so by the fields.
CUSTOMER_ADDRESS_ARGS = {
    "address_line_1": {"validators": [Optional()]},
    "postcode": {"validators": [Optional(), Postcode()]},
}
TITLE_CHOICES = [(t, t or "—") for t in TITLES]
ONE_PRIMARY = ("A customer has one primary contact: untick Primary here or on the other "
               "contact.")


class OverdueFilter(sqla_filters.BaseSQLAFilter):
    """Overdue: yes / no."""

    def __init__(self):
        super().__init__(Customer.overdue_amount, "Overdue", options=(("1", "Yes"), ("0", "No")))

    def apply(self, query, value, alias=None):
        if value == "1":
            return query.filter(Customer.overdue_amount > 0)
        return query.filter(Customer.overdue_amount == 0)

    def operation(self):
        return "is"


class OverdueForMoreThanFilter(sqla_filters.BaseSQLAFilter):
    """Oldest overdue invoice more than N days past its due date."""

    def __init__(self):
        super().__init__(Customer.oldest_overdue_on, "Overdue for")

    def clean(self, value):
        return int(value)

    def validate(self, value) -> bool:
        return value.strip().isdigit() and int(value) <= 36500

    def apply(self, query, value, alias=None):
        return query.filter(Customer.oldest_overdue_on < date.today() - timedelta(days=value))

    def operation(self):
        return "more than (days)"


def _overdue_days(view, context, model, name):
    days = model.overdue_days
    return "" if days is None else f"{number(days)} days"


def _name(view, context, model, name):
    """The name, linking to the record (also without JavaScript), the reference under it.
    The link is relative to the list's own address (…/customer/): fifty rows of the full
    path were a kilobyte of the page."""
    return Markup('<a href="details/?id={}">{}</a><small>{}</small>').format(
        model.id, model.display_name, model.reference or "")


def _contact(view, context, model, name):
    """E-mail address and phone ("07795 544804"), one a line."""
    return Markup("<br>").join(value for value in (model.email, phone_display(model.phone))
                               if value)


def _status(view, context, model, name):
    """The status as a badge, with "blocked" and "redacted" beside it when they apply."""
    badges = [Markup('<span class="badge status-{0}">{0}</span>').format(model.status)]
    if model.email_blocked:
        badges.append(Markup('<span class="badge status-blocked">blocked</span>'))
    if model.redacted_at is not None:
        badges.append(Markup('<span class="badge status-redacted">redacted</span>'))
    return Markup(" ").join(badges)


def _overdue(view, context, model, name):
    """The overdue amount in red, and for how long under it; nothing when nothing is
    overdue (most rows: the few that are stand out)."""
    if not model.overdue_amount:
        return ""
    cell = money_cell(model.overdue_amount, alert=True)
    days = model.overdue_days
    if days is not None:
        cell += Markup('<small class="age">{} days</small>').format(number(days))
    return cell


def _loyalty(view, context, model, name):
    """The loyalty score out of 100 with a small bar (a <meter>: no inline style); nothing
    for customers without a completed booking (most rows of a young list: the few loyal
    ones stand out). What it means is the column header's tooltip (``column_descriptions``),
    said once rather than on fifty rows."""
    score = model.loyalty_score or 0
    if not score:
        return ""
    return Markup('<meter max="100" value="{0}" aria-hidden="true"></meter> {0}').format(score)


def _overdue_days_export(view, context, model, name):
    days = model.overdue_days
    return "" if days is None else days


def _tags(view, context, model, name):
    return ", ".join(tag.name for tag in model.tags)


class ArchivedFilter(sqla_filters.BaseSQLAFilter):
    """Archived customers: included (every status) or only them. The list hides archived
    customers unless a filter on the status asks for them; this one is what "show them"
    beside the count applies."""

    def __init__(self):
        super().__init__(Customer.status, "Archived customers",
                         options=(("included", "included"), ("only", "only")))

    def apply(self, query, value, alias=None):
        if value == "only":
            return query.filter(Customer.status == "archived")
        return query

    def operation(self):
        return "are"


class HiddenFilter(sqla_filters.BaseSQLAFilter):
    """Hidden related people (a spouse, a child: ``crm.actions.customer_kind``): included or
    only them. Like archived customers, the list leaves them out unless a filter on them
    asks for them."""

    def __init__(self):
        super().__init__(Customer.hidden, "Hidden related people",
                         options=(("included", "included"), ("only", "only")))

    def apply(self, query, value, alias=None):
        if value == "only":
            return query.filter(Customer.hidden.is_(True))
        return query

    def operation(self):
        return "are"


TAG_OPTIONS = 200  # tags offered by the filter (a business has tens)


class TagFilter(sqla_filters.BaseSQLAFilter):
    """"Tag is <name>": the customers carrying a tag, for a mailing or a look. An ``IN`` of
    the tag's customers, read from customer_tag's tag_id index; one row per customer
    whatever else they carry. Flask-Admin reads a filter's options once, when the view is
    made; tags come and go, so the view asks again on each page (``_get_filter_groups``)."""

    def __init__(self):
        super().__init__(Customer.id, "Tag", options=(("", ""),))

    @staticmethod
    def tag_options() -> list[tuple[str, str]]:
        return [(str(key), name) for key, name in db.session.execute(
            select(Tag.id, Tag.name).order_by(Tag.name).limit(TAG_OPTIONS)).all()]

    def validate(self, value) -> bool:
        return value.strip().isdigit() and len(value.strip()) <= 12

    def clean(self, value):
        return int(value)

    def apply(self, query, value, alias=None):
        return query.filter(Customer.id.in_(
            select(customer_tag.c.customer_id).where(customer_tag.c.tag_id == value)))

    def operation(self):
        return "is"


class ContactInline(InlineFormAdmin):
    form_columns = (
        "id", "is_primary", "title", "first_name", "surname", "position", "email", "phone",
        "mobile", "email_opt_in", "sms_opt_in",
    )
    form_choices = {"title": TITLE_CHOICES}
    form_args = {
        "surname": {"validators": [InputRequired()]},
        "email": {"validators": [Optional(), Email()]},
        "phone": {"validators": [Optional(), Phone()]},
        "mobile": {"validators": [Optional(), Phone()]},
    }


def _blocked(view, context, model, name):
    return Markup('<span class="badge badge-danger">blocked</span>') if model.email_blocked else ""


def _yes_no(view, context, model, name):
    return "yes" if getattr(model, name) else ""


class CustomerView(StatementMixin, CustomerBulkMixin, CustomerMergeMixin, CustomerRecordMixin,
                   CrmModelView):
    model_class = Customer
    delete_capability = "delete"
    form_base_class = CustomerForm
    column_list = [
        "reference", "display_name", "contact", "email", "phone", "postcode", "customer_type",
        "kind", "status", "email_blocked", "tags", "loyalty_score", "balance", "account_credit",
        "overdue_amount", "overdue_days",
    ]
    # What fits a 1366 px screen (the reference is under the name, the overdue age under the
    # amount); the rest is one tick away in the list's Columns menu. Money leaves with the
    # role's other money columns.
    # Loyalty fits the screen too, but a 50-row page would pass its weight budget; it is one
    # tick away in the Columns menu.
    default_columns = ("display_name", "contact", "postcode", "status", "tags", "balance",
                       "overdue_amount")
    count_nouns = ("customer", "customers")
    column_details_list = [
        "reference", "kind", "customer_type", "status", "title", "first_name", "surname",
        "company_name", "email", "email_blocked", "phone", "address_line_1", "address_line_2",
        "town", "county", "postcode", "country", "advertising_source", "tags", "email_opt_in",
        "sms_opt_in", "post_opt_in", "notes", "contacts", "redacted_at", "balance", "account_credit",
        "overdue_amount", "overdue_days", "oldest_overdue_on", "creditor_days", "price_book",
        "third_party_reference", "created_at", "updated_at",
    ]
    column_export_list = [
        "reference", "kind", "customer_type", "status", "title", "first_name", "surname",
        "company_name", "email", "email_blocked", "phone", "address_line_1", "address_line_2",
        "town", "county", "postcode", "country", "advertising_source", "tags", "loyalty_score",
        "balance", "account_credit", "overdue_amount", "overdue_days", "creditor_days",
        "price_book", "third_party_reference", "created_at",
    ]
    form_columns = [
        "customer_type", "kind", "status", "title", "first_name", "surname", "company_name",
        "email", "phone", "address_line_1", "address_line_2", "town", "county", "postcode",
        "country", "advertising_source", "tags", "email_opt_in", "sms_opt_in", "post_opt_in",
        "notes", "creditor_days", "price_book", "third_party_reference", "contacts",
    ]
    column_sortable_list = [
        "reference", ("display_name", Customer.surname), "status", "postcode", "loyalty_score",
        "balance", "account_credit", "overdue_amount", ("overdue_days", Customer.oldest_overdue_on),
    ]
    inverted_sorts = {"overdue_days": Customer.oldest_overdue_on}
    column_searchable_list = ["search_text"]
    column_filters = [
        sqla_filters.FilterEqual(Customer.status, "Status", options=choices(CUSTOMER_STATUSES)),
        sqla_filters.FilterEqual(Customer.kind, "Kind", options=choices(CUSTOMER_KINDS)),
        sqla_filters.FilterEqual(
            Customer.customer_type, "Type", options=choices(CUSTOMER_TYPES)
        ),
        sqla_filters.FilterEqual(Customer.postcode, "Postcode"),
        TagFilter(),
        sqla_filters.BooleanEqualFilter(Customer.email_blocked, "E-mail blocked"),
        sqla_filters.FilterEqual(Customer.advertising_source, "Advertising source"),
        MoneyGreater(Customer.balance, "Balance"),
        MoneySmaller(Customer.balance, "Balance"),
        MoneyGreater(Customer.account_credit, "Account credit"),
        OverdueFilter(),
        MoneyGreater(Customer.overdue_amount, "Overdue amount"),
        OverdueForMoreThanFilter(),
        AgingFilter(),  # the dashboard's aging bars open the list through it
        sqla_filters.FilterEqual(Customer.price_book, "Price book"),
        sqla_filters.FilterEqual(Customer.third_party_reference, "Third-party reference"),
        ArchivedFilter(),
        HiddenFilter(),
    ]
    column_labels = {
        "display_name": "Name",
        "overdue_amount": "Overdue",
        "customer_type": "Type",
        "overdue_days": "Overdue for",
        "oldest_overdue_on": "Oldest overdue due date",
        "email_opt_in": "E-mails",
        "sms_opt_in": "Text messages",
        "post_opt_in": "Post",
        "third_party_reference": "Accounts reference",
        "email_blocked": "Blocked",
        "redacted_at": "Redacted",
        "loyalty_score": "Loyalty",
    }
    column_formatters = {"overdue_days": _overdue_days, "tags": _tags, "email_blocked": _blocked,
                         "display_name": _name, "contact": _contact, "status": _status,
                         "overdue_amount": _overdue, "loyalty_score": _loyalty,
                         "phone": lambda v, c, m, n: phone_display(m.phone)}
    column_formatters_export = {"overdue_days": _overdue_days_export, "tags": _tags,
                                "email_blocked": _yes_no}
    form_choices = {
        "customer_type": choices(CUSTOMER_TYPES),
        "kind": choices(CUSTOMER_KINDS),
        "status": choices(CUSTOMER_STATUSES),
        "title": TITLE_CHOICES,
    }
    form_args = {
        **CUSTOMER_ADDRESS_ARGS,
        "email": {"validators": [Optional(), Email()]},
        "phone": {"validators": [Optional(), Phone()]},
        "surname": {"validators": [Optional()]},
        "company_name": {"validators": [Optional()]},
        "creditor_days": {"validators": [Optional(), NumberRange(min=0, max=3650)]},
    }
    form_ajax_refs = {"tags": {"fields": ["name"], "page_size": 10}}
    inline_models = [ContactInline(Contact)]
    column_default_sort = ("id", True)
    default_order_index = "ix_customer_live_id"
    list_template = "admin/customer/list.html"
    loyalty_meaning = LOYALTY_MEANING  # the record page's loyalty block says it too
    column_descriptions = {"loyalty_score": LOYALTY_MEANING}
    edit_template = "admin/customer/edit.html"

    def base_query(self):
        return db.session.query(Customer).filter(Customer.merged_into_id.is_(None))

    eager = (Customer.tags,)
    details_eager = (Customer.contacts,)

    def search_placeholder(self):
        return "Name, e-mail, phone, reference or postcode"

    def _list_query(self, sort_column, sort_desc, search, filters):
        """Archived customers are left out unless the list is filtered on status, hidden
        related people unless it is filtered on them (both read from the default order's
        index)."""
        unsorted, query = super()._list_query(sort_column, sort_desc, search, filters)
        left_out = []
        if not self._filters_on(Customer.status, filters):
            left_out.append(Customer.status != "archived")
        if not self._filters_on(Customer.hidden, filters):
            left_out.append(Customer.hidden == false())
        if left_out:
            unsorted, query = unsorted.filter(*left_out), query.filter(*left_out)
        return unsorted, query

    def _get_filter_groups(self):
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                if isinstance(self._filters[item["index"]], TagFilter):
                    item["options"] = TagFilter.tag_options()
        return groups

    def _filters_on(self, column, filters) -> bool:
        return any(
            getattr(self._filters[idx], "column", None) is column for idx, _, _ in filters or ()
        )

    # --- the note beside the count: archived customers and related people are hidden ------
    def left_out(self, filters) -> list[str]:
        """What this page leaves out ("archived", "hidden related people"): what none of its
        (valid) filters, ``active_filters`` of the list template, is on."""
        return [what for what, column in (("archived", Customer.status),
                                          ("related people", Customer.hidden))
                if not self._filters_on(column, filters)]

    def show_archived_url(self) -> str:
        """This list, as it is, with archived customers and hidden related people included."""
        args = {k: v for k, v in request.args.items() if k != "page"}
        positions = [int(m.group(1)) for k in args if (m := re.match(r"flt(\d+)_", k))]
        position = max(positions, default=-1) + 1
        for kind in (ArchivedFilter, HiddenFilter):
            arg = next(key for key, (_, flt) in self._filter_args.items() if isinstance(flt, kind))
            if not any(k.endswith(f"_{arg}") for k in args):
                args[f"flt{position}_{arg}"] = "included"
                position += 1
        return self.get_url(".index_view", **args)

    # --- the record page: related people -----------------------------------------------
    RELATED_SHOWN = 20

    def related_people(self, model) -> dict:
        """For the record page, in one statement: the customer a hidden related person
        belongs to, and the (live) related people who belong to this one, the first 20."""
        rows = db.session.scalars(
            select(Customer).where(
                Customer.merged_into_id.is_(None),
                or_(Customer.related_to_id == model.id, Customer.id == model.related_to_id))
            .order_by(Customer.id).limit(self.RELATED_SHOWN + 2)
        ).all()
        people = [c for c in rows if c.related_to_id == model.id and c.id != model.id]
        owner = next((c for c in rows if c.id == model.related_to_id), None)
        return {"owner": owner, "people": people[:self.RELATED_SHOWN],
                "more": len(people) > self.RELATED_SHOWN,
                "may_hide": self.can("hide_related")}

    def validate_form(self, form) -> bool:
        ok = super().validate_form(form)
        contacts = getattr(form, "contacts", None)
        if contacts is None:
            return ok
        primaries = [entry for entry in contacts.entries
                     if not contacts.should_delete(entry) and entry.form.is_primary.data]
        for entry in primaries[1:]:
            field = entry.form.is_primary
            field.errors = [*field.errors, ONE_PRIMARY]
        return ok and len(primaries) <= 1

    def edit_form(self, obj=None):
        """A customer's kind is chosen when it is created; later it changes through "Change
        kind…" (``crm.actions.customer_kind``), which asks why and notes it, not here."""
        form = super().edit_form(obj)
        if hasattr(form, "kind") and obj is not None:
            # Shown, in its place in the two columns, but read-only: whatever a request sends
            # for it, the customer keeps its kind.
            form.kind.data = obj.kind
            form.kind.raw_data = [obj.kind]
            form.kind.render_kw = {**(form.kind.render_kw or {}), "disabled": True}
            form.kind.description = "Change it with More → Change kind…, which asks why."
        return form

    def on_model_change(self, form, model, is_created):
        if not is_created:
            self.check(ensure_not_redacted, model)
        self.check(ensure_record_not_blocked, db.session, model, is_created=is_created)
        super().on_model_change(form, model, is_created)
        if is_created:
            # Bookings that waited for a customer with this e-mail come to it now.
            attached = attach_waiting(db.session, model, actor=current_user)
            if attached:
                flash(f"Attached {attached} booking{'' if attached == 1 else 's'} made earlier "
                      f"with {model.email}.", "info")

    def _apply_search(self, query, count_query, joins, count_joins, search):
        terms = [t for t in without_control_characters(search).lower().split() if t]
        short = [t for t in terms if len(t) < MIN_TERM]
        usable = [t for t in terms if len(t) >= MIN_TERM][:6]
        if short:
            flash(
                f"Search words need at least {MIN_TERM} characters; ignored: "
                + ", ".join(short),
                "warning",
            )
        if usable:
            query, _ = search_customers(query, db.engine.dialect.name, usable)
        elif short:
            query = query.filter(Customer.id.is_(None))
        return query, count_query, joins, count_joins

    def search_order(self, search: str):
        terms, _ = search_words(search)
        if not terms:
            return None
        return search_customers(db.session.query(Customer), db.engine.dialect.name, terms)[1]


class CustomerLookup(IdSafeLoader):
    """Customer pickers in forms: the same index-backed search as the customer list."""

    def __init__(self, name: str):
        super().__init__(name, db, Customer, fields=["reference"], page_size=10,
                         placeholder="Search by name, reference, e-mail or phone")

    def get_list(self, term, offset=0, limit=10):
        return find_live_customers(db.session, term, offset=offset, limit=limit)


class ContactView(CrmModelView):
    guard_redacted = True
    model_class = Contact
    column_list = ["customer", "is_primary", "title", "first_name", "surname", "position",
                   "email", "phone", "mobile"]
    column_details_list = column_list + ["email_opt_in", "sms_opt_in", "created_at", "updated_at"]
    column_export_list = column_list + ["email_opt_in", "sms_opt_in"]
    form_columns = ["customer", "is_primary", "title", "first_name", "surname", "position",
                    "email", "phone", "mobile", "email_opt_in", "sms_opt_in"]
    column_sortable_list = ["surname", "first_name", "is_primary"]
    column_searchable_list = ["surname", "email"]
    column_filters = ["is_primary", "surname", "email", "email_opt_in"]
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": lambda v, c, m, n: str(m.customer)}
    form_choices = {"title": TITLE_CHOICES}
    form_args = {
        "customer": {"validators": [InputRequired()]},
        "surname": {"validators": [InputRequired()]},
        "email": {"validators": [Optional(), Email()]},
        "phone": {"validators": [Optional(), Phone()]},
        "mobile": {"validators": [Optional(), Phone()]},
    }
    form_ajax_refs = {"customer": CustomerLookup("customer")}


class BranchView(CrmModelView):
    guard_redacted = True
    model_class = Branch
    column_list = ["customer", "name", "address_line_1", "town", "postcode", "phone", "status"]
    column_details_list = column_list + ["address_line_2", "county", "country", "created_at"]
    column_export_list = column_list + ["address_line_2", "county", "country"]
    form_columns = ["customer", "name", "address_line_1", "address_line_2", "town", "county",
                    "postcode", "country", "phone", "status"]
    column_sortable_list = ["name", "postcode", "status"]
    column_searchable_list = ["name", "postcode"]
    column_filters = ["status", "postcode", "town"]
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": lambda v, c, m, n: str(m.customer)}
    form_choices = {"status": choices(ADDRESS_STATUSES)}
    form_args = {**ADDRESS_ARGS, "customer": {"validators": [InputRequired()]},
                 "name": {"validators": [InputRequired()]},
                 "phone": {"validators": [Optional(), Phone()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer")}


class TagView(CrmModelView):
    model_class = Tag
    column_list = ["name", "colour"]
    column_details_list = ["name", "colour", "created_at"]
    column_export_list = ["name", "colour"]
    form_columns = ["name", "colour"]
    column_sortable_list = ["name"]
    column_searchable_list = ["name"]
    column_filters = ["name"]
    column_default_sort = "name"
    form_args = {"name": {"validators": [InputRequired()]}}


__all__ = ["BranchView", "ContactView", "CustomerView", "TagView"]
