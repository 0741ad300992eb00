"""Invoices (owner and admin only): the invoice editor (drafts, their lines as a grid), the
invoice's page (lines, totals, what was paid and credited against it, what is still owed),
issuing (one, or in bulk from the list), e-mailing it to the customer, and voiding.

Customer first: the editor opened from a customer's record has the customer filled in, and
its contact and work-address pickers list only that customer's records (the server refuses
another's, whatever is posted). Saving lands on the draft's page, which offers *Issue* and
*Issue and e-mail*.

The form makes drafts only (no status, no number): numbers are given by
``crm.actions.invoice.issue_invoice`` and an issued or void invoice is never edited again
(no *Edit* is offered; the edit page sends the user to its details; the session guard in
``crm.session_hooks`` refuses the change whatever the path). Every endpoint requires the
``invoice`` capability again on each request."""

import json
from datetime import date
from decimal import Decimal

from flask import Response, abort, flash, get_flashed_messages, redirect, request, session
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.model.template import EditRowAction
from sqlalchemy import func, select
from wtforms.validators import InputRequired, Optional

from crm.admin_views import invoice_form
from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, record_ids, run_action
from crm.admin_views.customers import CustomerLookup
from crm.admin_views.filters import ChoiceEqual, MoneyGreater
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import SaneDate, choices
from crm.admin_views.money import LineInline, MoneyView
from crm.admin_views.statements import InvoicePdfMixin
from crm.extensions import db
from crm.formatting import money
from crm.models import (
    Allocation,
    BusinessProfile,
    CreditNote,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
)
from crm.models.base import ZERO
from crm.models.finance import INVOICE_STATUSES, LINE_CATEGORIES
from crm.validation import MONEY_MAX, line_amounts

SAVED_FLASHES = ("Record was successfully created.", "Record was successfully saved.")
FAILED_FLASHES = ("Failed to create record.", "Failed to save record.")
NOT_SAVED = "The draft was not saved: correct what is marked in red below."


def locked_message(invoice: Invoice) -> str:
    if invoice.status == "void":
        return f"{invoice.number} is void; it can no longer be changed."
    return f"{invoice.number} is issued; raise a credit note to change what is owed."


def _address_help() -> str:
    from crm.addressing import TAGS

    return ("Blank: the customer's name and address. Otherwise one address line per line, "
            "with tags that are filled in and skipped when blank, e.g. "
            "\"[landlord_name] c/o [customer_name]\". Tags: "
            + ", ".join(f"[{tag}]" for tag in TAGS) + ".")


def _index(entry) -> int:
    """The row number of a grid entry (``lines-3`` -> 3)."""
    return int(entry.id.rsplit("-", 1)[-1])


def _add_error(field, message: str) -> None:
    field.errors = [*field.errors, message]


def _lines_fit(form) -> bool:
    """Each line, and the invoice, within what an amount holds (the same rule as the
    session hook that refuses it in any other path), with the message next to the line."""
    total, ok, last = ZERO, True, None
    for entry in form.lines.entries:
        if form.lines.should_delete(entry):
            continue
        line = entry.form
        values = (line.quantity.data, line.unit_price.data, line.tax_rate.data or ZERO)
        if line.errors or not all(isinstance(v, Decimal) for v in values):
            continue  # already refused next to its field
        try:
            net, tax = line_amounts(*values)
        except ValueError as exc:
            _add_error(line.unit_price, str(exc))
            ok = False
            continue
        total, last = total + net + tax, line
    if last is not None and total > MONEY_MAX:
        _add_error(last.unit_price, f"The invoice would come to {money(total)}; an invoice "
                                    f"holds at most {money(MONEY_MAX)}.")
        ok = False
    return ok


class DraftEditRowAction(EditRowAction):
    """The list's pencil, on drafts only: an issued or void invoice cannot change."""

    def render(self, context, row_id, row):
        return super().render(context, row_id, row) if row.status == "draft" else ""


class InvoiceView(InvoicePdfMixin, MoneyView):
    model_class = Invoice
    guard_redacted = True
    create_template = "admin/invoice/create.html"
    edit_template = "admin/invoice/edit.html"
    details_template = "admin/invoice/details.html"
    document_kind = "invoice"
    create_capability = edit_capability = delete_capability = "invoice"
    column_list = ["number", "customer", "status", "issue_date", "due_date", "total",
                   "outstanding"]
    column_details_list = column_list + ["subtotal", "tax_total", "contact", "work_address",
                                         "address_format", "notes", "created_at",
                                         "updated_at"]
    column_export_list = column_list + ["subtotal", "tax_total"]
    form_columns = ["customer", "contact", "work_address", "issue_date", "due_date", "notes",
                    "address_format", "lines"]
    column_sortable_list = ["number", "status", "issue_date", "due_date", "total",
                            "outstanding"]
    column_searchable_list = ["number"]
    column_filters = [ChoiceEqual(Invoice.status, "Status", options=choices(INVOICE_STATUSES)),
                      "issue_date", "due_date",
                      MoneyGreater(Invoice.outstanding, "Outstanding")]
    column_default_sort = ("issue_date", True)
    column_labels = {"address_format": "Address format", "work_address": "Work address"}
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": export_str("customer")}
    column_descriptions = {"due_date": "Leave blank for the customer's credit days after the "
                                       "issue date, else the business's payment terms. "
                                       "Issuing keeps this gap from the day it is issued."}
    form_args = {"customer": {"validators": [InputRequired()]},
                 "issue_date": {"validators": [InputRequired(), SaneDate()],
                                "default": date.today},
                 "due_date": {"validators": [Optional(), SaneDate()]},
                 "address_format": {"validators": [Optional()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer"),
                      "contact": {"fields": ["surname", "first_name"], "page_size": 10,
                                  "placeholder": "Choose a contact"},
                      "work_address": {"fields": ["postcode", "address_line_1"],
                                       "page_size": 10, "placeholder": "Choose a work address"}}
    inline_models = [LineInline(InvoiceLine)]
    field_order_rules = (("due_date", "issue_date",
                          "The due date cannot be before the issue date."),)
    action_capabilities = {"issue": "invoice", "delete": "invoice"}

    eager = (Invoice.lines,)

    # --- the editor -----------------------------------------------------------------------
    def create_form(self, obj=None):
        if request.method == "POST":
            form = self._create_form_class(self._tidied_form(), obj=obj)
        else:
            form = super().create_form(obj)
            form.customer.data = self._customer_from_args()
        form.address_format.description = _address_help()
        self._describe_due_date(form)
        return form

    def edit_form(self, obj=None):
        if request.method == "POST":
            form = self._edit_form_class(self._tidied_form(), obj=obj)
        else:
            form = super().edit_form(obj)
        form.address_format.description = _address_help()
        self._describe_due_date(form)
        return form

    def _describe_due_date(self, form) -> None:
        """The due date's help, with the business's own terms ("14 days")."""
        from crm.actions.invoice import business_terms_days

        days = business_terms_days(db.session)
        form.due_date.description = (
            "Leave blank for the customer's credit days after the issue date, else the "
            f"business's payment terms ({days} day{'' if days == 1 else 's'}). Issuing keeps "
            "this gap from the day it is issued.")

    def _tidied_form(self):
        formdata, self._posted_lines = invoice_form.tidy_lines(request.form)
        return formdata

    def _customer_from_args(self) -> Customer | None:
        """The customer of ``?customer_id=`` (the record page's "New invoice"), when it is one
        an invoice can be made for; else none, and the user picks one."""
        key = request.args.get("customer_id", type=record_id)
        customer = db.session.get(Customer, key) if key else None
        if customer is None or customer.merged_into_id is not None or \
                customer.redacted_at is not None:
            return None
        return customer

    def validate_form(self, form) -> bool:
        ok = super().validate_form(form)
        if not hasattr(form, "address_format"):
            return ok  # the delete form
        from crm.actions.invoice import draft_problems

        problems, stored = draft_problems(
            customer=form.customer.data, contact=form.contact.data,
            work_address=form.work_address.data, address_format=form.address_format.data,
        )
        for field, message in problems.items():
            _add_error(getattr(form, field), message)
        if "address_format" not in problems:
            form.address_format.data = stored
        if getattr(self, "_posted_lines", 0) > invoice_form.MAX_LINES:
            flash(f"An invoice holds at most {invoice_form.MAX_LINES} lines.", "error")
            ok = False
        return ok and not problems and _lines_fit(form)

    def on_model_change(self, form, model, is_created):
        from crm.actions.invoice import default_due_date

        if model.due_date is None and model.issue_date is not None:
            model.due_date = default_due_date(model.customer, model.issue_date, db.session)
        super().on_model_change(form, model, is_created)

    def render(self, template, **kwargs):
        """The editor sent back with errors says so in words, not "Failed to create
        record." (the flash is swapped before the page reads it)."""
        flashes = session.get("_flashes")
        if flashes and any(message in FAILED_FLASHES for _, message in flashes):
            session["_flashes"] = [("error", NOT_SAVED) if message in FAILED_FLASHES
                                   else (category, message) for category, message in flashes]
        return super().render(template, **kwargs)

    def get_save_return_url(self, model, is_created=False):
        """A saved draft opens its own page (where it is issued), with a message that says
        what happened rather than Flask-Admin's "Record was successfully created"."""
        kept = [(c, m) for c, m in get_flashed_messages(with_categories=True)
                if m not in SAVED_FLASHES]
        for category, message in kept:
            flash(message, category)
        flash(f"Draft saved ({money(model.total)}). Check it, then issue it.", "success")
        return self.get_url(".details_view", id=model.id)

    def get_list_row_actions(self):
        return [DraftEditRowAction() if isinstance(a, EditRowAction) else a
                for a in super().get_list_row_actions()]

    # --- what the editor's template asks -------------------------------------------------
    def editor(self, form) -> dict:
        """Everything the grid shows beside the form's own fields: the customer's contacts
        and work addresses, the rows (at least a few, blank ones to fill in), the tax rates
        and the totals so far."""
        customer = form.customer.data if isinstance(form.customer.data, Customer) else None
        rate = self.default_rate()
        rows, removed = [], []
        for entry in form.lines.entries:
            if form.lines.should_delete(entry):
                removed.append((_index(entry), entry.form.id.data))
            else:
                rows.append(invoice_form.grid_row(entry))
        after = max((_index(e) for e in form.lines.entries), default=-1) + 1
        for index in range(after, after + max(invoice_form.MIN_ROWS - len(rows), 1)):
            rows.append(invoice_form.blank_row(index, rate))
        return {
            "customer": customer,
            "contacts": invoice_form.contacts_of(db.session, customer),
            "addresses": invoice_form.work_addresses_of(db.session, customer),
            "contact_label": invoice_form.contact_label,
            "address_label": invoice_form.address_label,
            "rows": rows, "removed": removed,
            "template_row": invoice_form.blank_row("__INDEX__", rate),
            "categories": choices(LINE_CATEGORIES), "rate_choices": invoice_form.rate_choices,
            "same_rate": invoice_form.same_rate, "default_rate": rate,
            "totals": invoice_form.preview_totals(form),
        }

    def default_rate(self) -> str:
        """The tax rate a new line starts with: 20% for a business with a VAT number (set in
        Settings, Business), else 0%."""
        profile = db.session.get(BusinessProfile, 1)
        return "20" if profile is not None and (profile.vat_number or "").strip() else "0"

    def figures(self, invoice: Invoice) -> dict:
        """What the invoice's page shows of its money: the payments and credit notes set
        against it, oldest first (``settled``), what of them counts (the ledger's live
        allocations: none once the invoice is void, none from a void credit note) as
        ``paid`` and ``credited``, and how many days it is overdue."""
        settled = db.session.execute(
            select(Allocation.id, Allocation.amount, Allocation.payment_id,
                   Allocation.credit_note_id, Payment.received_on, Payment.method,
                   Payment.reference, CreditNote.number.label("note_number"),
                   CreditNote.issue_date.label("note_date"),
                   CreditNote.status.label("note_status"))
            .outerjoin(Payment, Payment.id == Allocation.payment_id)
            .outerjoin(CreditNote, CreditNote.id == Allocation.credit_note_id)
            .where(Allocation.invoice_id == invoice.id)
            .order_by(func.coalesce(Payment.received_on, CreditNote.issue_date), Allocation.id)
        ).all() if invoice.status != "draft" else []
        live = [s for s in settled if invoice.status == "issued"
                and (s.payment_id is not None or s.note_status == "issued")]
        late = (date.today() - invoice.due_date).days
        return {
            "settled": settled,
            "paid": sum((s.amount for s in live if s.payment_id is not None), ZERO),
            "credited": sum((s.amount for s in live if s.payment_id is None), ZERO),
            "days_late": late if invoice.status == "issued" and invoice.outstanding > 0
            and late > 0 else 0,
        }

    # --- look-ups: only the chosen customer's contacts and work addresses ----------------
    @expose("/ajax/lookup/")
    def ajax_lookup(self):
        """With ``customer_id``, the contact and work-address look-ups list that customer's
        records only (what the editor's script asks when the customer changes)."""
        name = request.args.get("name", "")
        if "customer_id" not in request.args or name not in ("contact", "work_address"):
            return super().ajax_lookup()
        key = request.args.get("customer_id", type=record_id)
        customer = db.session.get(Customer, key) if key else None
        if customer is None:
            rows = []
        elif name == "contact":
            rows = [(c.id, invoice_form.contact_label(c))
                    for c in invoice_form.contacts_of(db.session, customer)]
        else:
            rows = [(a.id, invoice_form.address_label(a, customer))
                    for a in invoice_form.work_addresses_of(db.session, customer)]
        return Response(json.dumps(rows), mimetype="application/json")

    @expose("/edit/", methods=("GET", "POST"))
    @require("invoice")
    def edit_view(self):
        """Only drafts are edited; an issued or void invoice's edit page (or a forged POST to
        it) goes to its details with the reason, changing nothing."""
        key = request.args.get("id", type=record_id)
        invoice = db.session.get(Invoice, key) if key else None
        if invoice is not None and invoice.status != "draft":
            flash(locked_message(invoice), "error")
            return redirect(self.get_url(".details_view", id=invoice.id))
        return super().edit_view()

    # --- issue, e-mail and void -----------------------------------------------------------
    @expose("/issue/", methods=("POST",))
    @require("invoice")
    def issue_view(self):
        """Issue a draft; with ``email=1`` (*Issue and e-mail*) then send it to the customer.
        The issue stands even when the e-mail cannot go: the page says why."""
        from crm.actions.invoice import issue_invoice
        from crm.actions.invoice_email import email_invoice

        key = request.form.get("id", type=record_id)
        if key is None:
            abort(404)
        result, error = run_action(issue_invoice, invoice_id=key)
        flash(error or result.message, "error" if error else "success")
        if not error and request.form.get("email") == "1":
            sent, error = run_action(email_invoice, invoice_id=key)
            flash(error or sent.message, "error" if error else "success")
        return redirect(self.get_url(".details_view", id=key))

    @expose("/email/", methods=("POST",))
    @require("invoice")
    def email_view(self):
        """E-mail an issued invoice to its customer, the PDF attached."""
        from crm.actions.invoice_email import email_invoice

        key = request.form.get("id", type=record_id)
        if key is None or db.session.get(Invoice, key) is None:
            abort(404)
        result, error = run_action(email_invoice, invoice_id=key)
        flash(error or result.message, "error" if error else "success")
        return redirect(self.get_url(".details_view", id=key))

    @expose("/void/", methods=("GET", "POST"))
    @require("invoice")
    def void_view(self):
        """GET (or the details page's POST) asks for the reason; POST with ``confirm``
        voids."""
        from crm.actions.invoice import void_invoice

        source = request.form if request.method == "POST" else request.args
        key = source.get("id", type=record_id)
        invoice = db.session.get(Invoice, key) if key else None
        if invoice is None:
            abort(404)
        reason = (source.get("reason") or "").strip()
        error = None
        if request.method == "POST" and source.get("confirm") == "1":
            result, error = run_action(void_invoice, invoice_id=key, reason=reason)
            if not error:
                flash(result.message, "success")
                return redirect(self.get_url(".details_view", id=key))
            invoice = db.session.get(Invoice, key)
        return self.render("admin/crm/void.html", kind="invoice", document=invoice,
                           reason=reason, error=error), (400 if error else 200)

    @action("issue", "Issue selected drafts",
            "Issue the selected drafts? Each gets the next invoice number and becomes owed.")
    def action_issue(self, ids):
        from crm.actions.invoice import issue_invoices

        result, error = run_action(issue_invoices, selection=record_ids(ids))
        if error:
            flash(error, "error")
            return redirect(self.get_url(".index_view"))
        return self.render("admin/crm/results.html", result=result, changed_word="issued",
                           title="Issue selected drafts", list_url=self.get_url(".index_view"))
