"""The customer's record page, the screen a coordinator lives in (its content comes from the
read model ``crm.customer_record``), its buttons (notes, pinning, dormant/reactivate), the
rule that a merged-away customer's old URL leads to its survivor, and the reference page
that opens any record named by its reference or number (``/ref/INV-000321/``), which is
how a sentence's references link without a look-up per reference."""

import tempfile

from flask import abort, flash, redirect, request, send_file, session, url_for
from flask_admin import expose
from flask_admin.helpers import get_redirect_target
from sqlalchemy import select

from crm.actions import ActionError
from crm.actions.guards import ensure_not_redacted
from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, run_action
from crm.admin_views.record_links import details_url, has_screen, kind_of, parts_html
from crm.customer_record import (
    TIMELINE_KINDS,
    booking_place,
    page_number,
    pinned_notes,
    record_context,
)
from crm.extensions import db
from crm.models import Booking, CreditNote, Customer, Invoice, Note

# The record page's add buttons: the screen's slug -> (its model, the tab to come back to).
ADD_SCREENS = {"booking": ("Booking", "#tab-bookings"), "contact": ("Contact", "#tab-contacts"),
               "work_address": ("WorkAddress", "#tab-addresses"),
               "branch": ("Branch", "#tab-branches")}
# What a reference is looked up by, per kind of record.
REFERENCE_COLUMNS = {"Customer": Customer.reference, "Booking": Booking.reference,
                     "Invoice": Invoice.number, "CreditNote": CreditNote.number}


class CustomerRecordMixin:
    details_template = "admin/customer/details.html"

    def _tombstone_redirect(self, page: str):
        """The old URL of a merged-away customer leads to the customer it was merged into."""
        key = request.args.get("id", type=record_id)
        if key is None:
            return None
        row = db.session.execute(
            select(Customer.reference, Customer.merged_into_id).where(Customer.id == key)
        ).first()
        if row is None or row.merged_into_id is None:
            return None
        from crm.actions.merge import live_customer_id

        survivor = live_customer_id(db.session, key)
        if survivor is None:
            return None
        target = db.session.get(Customer, survivor)
        flash(f"{row.reference} was merged into {target.reference}: showing {target.reference}.",
              "info")
        return redirect(self.get_url(page, id=survivor))

    @expose("/details/")
    def details_view(self):
        """Flask-Admin's details view, plus: a merged-away id leads to its survivor (looked
        up only when no live record has the id, so a normal page costs nothing extra)."""
        return_url = get_redirect_target() or self.get_url(".index_view")
        model = self.get_one(request.args.get("id", ""))
        if model is None:
            moved = self._tombstone_redirect(".details_view")
            if moved:
                return moved
            flash("Record does not exist.", "error")
            return redirect(return_url)
        return self.render(self.details_template, model=model,
                           details_columns=self._details_columns,
                           get_value=self.get_detail_value, return_url=return_url)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        moved = self._tombstone_redirect(".edit_view")
        if moved:
            return moved
        key = request.args.get("id", type=record_id)
        customer = db.session.get(Customer, key) if key else None
        if customer is not None:
            try:
                ensure_not_redacted(customer)
            except ActionError as exc:
                flash(str(exc), "error")
                return redirect(self.get_url(".details_view", id=key))
        return super().edit_view()

    def render(self, template, **kwargs):
        model = kwargs.get("model")
        if template == self.details_template and isinstance(model, Customer):
            kind = request.args.get("timeline", "all")
            kwargs["record"] = record_context(
                db.session, model, self.role, kind if kind in TIMELINE_KINDS else "all",
                at=booking_place(request.args.get("at")),
                ongoing_page=page_number(request.args.get("ongoing")),
                history_page=page_number(request.args.get("history")),
            )
            kwargs["add_urls"] = self._add_urls(model)
            kwargs["sentence"] = lambda parts: parts_html(self.role, parts)
            kwargs["link_to"] = lambda model_name, key: details_url(self.role, model_name, key)
        elif template == self.edit_template and isinstance(model, Customer) and model.id:
            # The pinned warning shows on every screen of the customer, the form included.
            kwargs["pinned"] = pinned_notes(db.session, model.id)
        return super().render(template, **kwargs)

    def _add_urls(self, customer: Customer) -> dict:
        """The record page's "New booking", "Add contact", "Add work address" and "Add
        branch": each that screen's own form with the customer filled in, coming back to
        the tab that lists what was added. None where the role has no such screen, and for
        a redacted or merged-away customer (nothing may be added to it)."""
        live = customer.redacted_at is None and customer.merged_into_id is None
        urls = {}
        for slug, (model, tab) in ADD_SCREENS.items():
            if not live or not has_screen(self.role, model):
                urls[slug] = None
                continue
            back = self.get_url(".details_view", id=customer.id) + tab
            urls[slug] = url_for(f"{slug}_{self.role}.create_view", customer_id=customer.id,
                                 url=back)
        return urls

    # --- record-page buttons ---------------------------------------------------------------
    def _back(self, key):
        return redirect(self.get_url(".details_view", id=key))

    def _report(self, result, error) -> None:
        if error:
            flash(error, "error")
        else:
            flash(result.message or "Done.", "success")
            for skip in result.skipped:
                flash(str(skip), "warning")

    @expose("/note/", methods=("POST",))
    def add_note_view(self):
        from crm.actions.notes import add_note

        key = request.form.get("customer_id", type=record_id)
        if key is None:
            abort(400)
        self._report(*run_action(
            add_note, customer_id=key, kind=request.form.get("kind", "note"),
            body=request.form.get("body", ""), important=request.form.get("important") == "1",
        ))
        return self._back(key)

    @expose("/note/pin/", methods=("POST",))
    def pin_note_view(self):
        from crm.actions.notes import pin_note

        note = db.session.get(Note, request.form.get("note_id", type=record_id) or 0)
        if note is None or note.customer_id is None:
            abort(404)
        key = note.customer_id
        self._report(*run_action(pin_note, note_id=note.id,
                                 pinned=request.form.get("pinned") == "1"))
        return self._back(key)

    @expose("/view-as/", methods=("POST",))
    @require("view_as_customer")
    def view_as_view(self):
        """Open the portal as this customer sees it, read-only (audited); the portal's banner
        leads back here."""
        from crm.actions.portal_access import start_viewing_as
        from crm.portal_links import VIEW_AS

        key = request.form.get("id", type=record_id)
        if key is None:
            abort(400)
        result, error = run_action(start_viewing_as, customer_id=key)
        if error:
            flash(error, "error")
            return self._back(key)
        session[VIEW_AS] = result.details["customer_id"]
        return redirect("/portal/")

    @expose("/export-data/", methods=("POST",))
    @require("export_data")
    def export_data_view(self):
        """Everything held about the customer in one ZIP (as the portal's "download my
        data")."""
        from crm.actions.data_export import export_customer_data

        key = request.form.get("id", type=record_id)
        if key is None:
            abort(400)
        out = tempfile.TemporaryFile()
        result, error = run_action(export_customer_data, customer_id=key, out=out)
        if error:
            out.close()
            flash(error, "error")
            return self._back(key)
        out.seek(0)
        return send_file(out, mimetype="application/zip", as_attachment=True,
                         download_name=f"data-{result.changed_refs[0]}.zip")

    @expose("/status/<verb>/", methods=("POST",))
    def status_view(self, verb):
        """Reactivate one customer from its page (a single change back to normal). Set
        dormant goes through the same confirmation page as the bulk action: it stops the
        customer's reminders and messages, so it is said first and then confirmed."""
        from crm.actions import dormant
        from crm.admin_views.customer_bulk import VERBS

        if verb not in ("set_dormant", "reactivate"):
            abort(404)
        self.require(self.action_capabilities[verb])
        key = request.form.get("id", type=record_id)
        if key is None:
            # A form without its customer (or with a mangled one): say so, change nothing.
            flash("No customer was given, so nothing was changed. Open the customer and use "
                  "its button again.", "error")
            return redirect(self.get_url(".index_view"))
        if verb == "set_dormant":
            return self._confirm_page(VERBS[verb], self._selected([key]), back=key)
        self._report(*run_action(dormant.reactivate, selection=[key]))
        return self._back(key)

    @expose("/ref/<path:ref>/")
    def reference_view(self, ref):
        """The record a reference or document number names ("C-000123", "B-000045",
        "INV-000321", "CN-000004"), opened in this role's panel; 404 when there is none or
        the role has no screen of it (a coordinator and an invoice)."""
        model = kind_of(ref)
        if model is None or len(ref) > 40:
            abort(404)
        column = REFERENCE_COLUMNS[model]
        key = db.session.scalar(select(column.class_.id).where(column == ref))
        target = details_url(self.role, model, key) if key is not None else None
        if target is None:
            abort(404)
        return redirect(target)
