"""Payments and allocations (owner and admin only).

Money only comes in through two pages, so that every payment and allocation goes through
the actions of ``crm.actions.payment`` (locks, checks, audit): "record a payment" for a
customer (with its allocations) and "allocate account credit". Flask-Admin's own create
forms are switched off; an allocation is removed with a POST from its details page."""

from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla import filters as sqla_filters
from wtforms.validators import InputRequired, ValidationError

from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, run_action
from crm.admin_views.customers import CustomerLookup
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import Money, SaneDate, choices
from crm.admin_views.money import MoneyView
from crm.extensions import db
from crm.formatting import DATE_EXAMPLE, day, parse_day
from crm.models import Allocation, Customer, Payment
from crm.models.finance import PAYMENT_METHODS
from crm.search_index import MIN_TERM, find_live_customers, search_words
from crm.validation import money

ALLOC = "alloc_"  # form fields alloc_<invoice id>: the amount to allocate to that invoice


def _typed_allocations(form) -> list[tuple[int, str]]:
    """(invoice id, amount as typed) of every allocation field filled in; a blank one means
    "nothing to this invoice", anything else is the action's to accept or refuse."""
    found = []
    for key, value in form.items():
        if key.startswith(ALLOC) and value.strip():
            try:
                found.append((record_id(key[len(ALLOC):]), value.strip()))
            except ValueError:
                continue
    return found


class PaymentScreens:
    """The record and allocate pages of the payment view."""

    def _customer(self, target: str):
        """The live customer of ``?customer_id``; or a response: the customer picker, or a
        redirect from a merged-away record to its survivor."""
        from crm.actions.merge import live_customer_id

        source = request.form if request.method == "POST" else request.args
        key = source.get("customer_id", type=record_id)
        customer = db.session.get(Customer, key) if key else None
        if customer is None:
            return self._pick_customer(target)
        if customer.merged_into_id is not None:
            survivor = live_customer_id(db.session, customer.id)
            if survivor is None:
                abort(404)
            flash(f"{customer.reference} was merged into another customer: showing that one.",
                  "info")
            return redirect(self.get_url(f".{target}_view", customer_id=survivor))
        return customer

    def _pick_customer(self, target: str):
        term = (request.args.get("q") or "").strip()
        words, _ = search_words(term)
        found = find_live_customers(db.session, term)
        return self.render("admin/payment/pick_customer.html", target=target, term=term,
                           found=found, short=bool(term) and not words, min_term=MIN_TERM)

    def _page(self, template: str, customer: Customer, values: dict, error=None, status=200):
        from crm.actions.payment import open_invoices

        return self.render(
            template, customer=customer, values=values, error=error, today=date.today(),
            invoices=open_invoices(db.session, customer.id), methods=PAYMENT_METHODS,
        ), status

    def _suggest(self, customer: Customer, values: dict, amount_text: str) -> str | None:
        """Fill the allocation fields with "oldest due first" for the amount; or say why not."""
        from crm.actions.payment import suggest_allocations

        try:
            amount = money(amount_text)
        except ValueError as exc:
            return f"Amount: {exc}"
        suggestion = suggest_allocations(db.session, customer_id=customer.id, amount=amount)
        values["alloc"] = {invoice.id: f"{take:.2f}" for invoice, take in suggestion}
        return None

    @expose("/record/", methods=("GET", "POST"))
    @require("record_payment")
    def record_view(self):
        customer = self._customer("record")
        if not isinstance(customer, Customer):
            return customer
        source = request.form if request.method == "POST" else request.args
        values = {
            "received_on": source.get("received_on", day(date.today())).strip(),
            "method": source.get("method", "bank_transfer"),
            "reference": source.get("reference", ""),
            "amount": source.get("amount", "").strip(),
            "alloc": dict(_typed_allocations(source)),
            # Opened from an invoice's page ("Record payment"): go back there once recorded.
            "invoice_id": source.get("invoice_id", type=record_id),
        }
        template = "admin/payment/record.html"
        if request.method == "POST" and request.form.get("confirm") == "1":
            return self._record(customer, values)
        if source.get("suggest") == "1":
            error = self._suggest(customer, values, values["amount"])
            return self._page(template, customer, values, error, 400 if error else 200)
        return self._page(template, customer, values)

    def _record(self, customer: Customer, values: dict):
        from crm.actions.payment import record_payment

        template = "admin/payment/record.html"
        try:
            received_on = parse_day(values["received_on"][:40])
        except ValueError:
            return self._page(template, customer, values,
                              f"Date received: type a date like {DATE_EXAMPLE}.", 400)
        result, error = run_action(
            record_payment, customer_id=customer.id, received_on=received_on,
            method=values["method"], reference=values["reference"], amount=values["amount"],
            allocations=list(values["alloc"].items()),
        )
        if error:
            return self._page(template, db.session.get(Customer, customer.id), values, error,
                              400)
        flash(result.message, "success")
        if values["invoice_id"] in values["alloc"]:
            return redirect(url_for(f"invoice_{self.role}.details_view", id=values["invoice_id"]))
        return redirect(self.get_url(".details_view", id=result.details["payment_id"]))

    @expose("/allocate/", methods=("GET", "POST"))
    @require("record_payment")
    def allocate_view(self):
        from crm.actions.payment import allocate_credit

        customer = self._customer("allocate")
        if not isinstance(customer, Customer):
            return customer
        source = request.form if request.method == "POST" else request.args
        values = {"alloc": dict(_typed_allocations(source))}
        template = "admin/payment/allocate.html"
        if request.method == "POST" and request.form.get("confirm") == "1":
            result, error = run_action(allocate_credit, customer_id=customer.id,
                                       allocations=list(values["alloc"].items()))
            if error:
                return self._page(template, db.session.get(Customer, customer.id), values,
                                  error, 400)
            flash(result.message, "success")
            return redirect(self.get_url(".allocate_view", customer_id=customer.id))
        if source.get("suggest") == "1" or (request.method == "GET" and not values["alloc"]):
            if customer.account_credit > 0:
                self._suggest(customer, values, str(customer.account_credit))
        return self._page(template, customer, values)


class PaymentView(PaymentScreens, MoneyView):
    model_class = Payment
    # New payments come from the record page, which allocates them through the action.
    can_create = False
    list_template = "admin/payment/list.html"
    details_template = "admin/payment/details.html"
    column_list = ["received_on", "customer", "method", "reference", "amount"]
    column_details_list = column_list + ["created_at", "updated_at"]
    column_export_list = column_list
    form_columns = ["customer", "received_on", "method", "reference", "amount"]
    column_sortable_list = ["received_on", "method", "amount"]
    column_searchable_list = ["reference"]
    column_filters = [sqla_filters.FilterEqual(Payment.method, "Method",
                                               options=choices(PAYMENT_METHODS)),
                      "received_on", "amount"]
    column_default_sort = ("received_on", True)
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": export_str("customer")}
    form_choices = {"method": choices(PAYMENT_METHODS)}
    form_args = {"customer": {"validators": [InputRequired()]},
                 "received_on": {"validators": [InputRequired(), SaneDate()]},
                 "amount": {"validators": [InputRequired(), Money()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer")}


class AllocationView(MoneyView):
    model_class = Allocation
    # Allocations are made by the record and allocate pages and removed by the action (the
    # "Remove" button of the details page), both under the invoices' lock and audited.
    can_create = False
    can_delete = False
    details_template = "admin/payment/allocation_details.html"
    column_list = ["invoice", "payment", "credit_note", "amount", "created_at"]
    column_details_list = column_list + ["updated_at"]
    column_export_list = column_list
    form_columns = ["invoice", "payment", "credit_note", "amount"]
    column_sortable_list = ["amount", "created_at"]
    column_searchable_list = []
    column_filters = ["amount", "created_at"]
    column_formatters_export = {"invoice": export_str("invoice"),
                                "payment": export_str("payment"),
                                "credit_note": export_str("credit_note")}
    form_args = {"invoice": {"validators": [InputRequired()]},
                 "amount": {"validators": [InputRequired(), Money()]}}
    form_ajax_refs = {"invoice": {"fields": ["number"], "page_size": 10},
                      "payment": {"fields": ["reference"], "page_size": 10},
                      "credit_note": {"fields": ["number"], "page_size": 10}}

    def on_model_change(self, form, model, is_created):
        from crm.ledger import check_allocation

        try:
            with db.session.no_autoflush:  # the new row must not count against itself
                check_allocation(db.session, model)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        super().on_model_change(form, model, is_created)

    @expose("/remove/", methods=("POST",))
    @require("record_payment")
    def remove_view(self):
        from crm.actions.payment import remove_allocation

        key = request.form.get("id", type=record_id)
        if key is None:
            abort(404)
        result, error = run_action(remove_allocation, allocation_id=key)
        if error:
            flash(error, "error")
            if db.session.get(Allocation, key) is not None:
                return redirect(self.get_url(".details_view", id=key))
            return redirect(self.get_url(".index_view"))
        flash(result.message, "success")
        return redirect(self.get_url(".index_view"))

