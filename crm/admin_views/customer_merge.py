"""The merge screens of the customer view: "merge with…" (find the other record), the preview
(records side by side, a value chosen per field, rows to move, conflicts), the confirmation,
and undo from the merge's audit entry. They need the ``merge`` capability (owners and
admins), checked on every request, not only by hiding buttons."""

from flask import abort, flash, redirect, request
from flask_admin import expose
from sqlalchemy import select

from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, record_ids, run_action
from crm.extensions import db
from crm.models import Customer, CustomerMerge, User
from crm.search_index import MIN_TERM, find_live_customers, search_words


class CustomerMergeMixin:
    @expose("/merge/", methods=("GET", "POST"))
    @require("merge")
    def merge_view(self):
        source = request.form if request.method == "POST" else request.args
        ids = record_ids(source.getlist("ids"))
        if len(ids) < 2:
            return self._merge_with(ids[0] if ids else None)
        survivor = source.get("survivor", type=record_id)
        survivor = survivor if survivor in ids else ids[0]
        duplicates = [i for i in ids if i != survivor]
        if request.method == "POST" and request.form.get("confirm") == "1":
            return self._merge(survivor, duplicates)
        return self._merge_preview(survivor, duplicates)

    def _merge_with(self, key: int | None):
        """One record chosen: search for the other one(s)."""
        customer = db.session.get(Customer, key) if key else None
        if customer is not None and customer.merged_into_id is not None:
            from crm.actions.merge import live_customer_id

            survivor = live_customer_id(db.session, customer.id)
            if survivor is not None:
                flash(f"{customer.reference} was merged into another customer: merging that "
                      "one instead.", "info")
                return redirect(self.get_url(".merge_view", ids=[survivor]))
            customer = None
        term = (request.args.get("q") or "").strip()
        words, _ = search_words(term)
        found = [] if customer is None else find_live_customers(
            db.session, term, Customer.id != customer.id, Customer.redacted_at.is_(None))
        return self.render(
            "admin/customer/merge_with.html", customer=customer, term=term, found=found,
            short=bool(term) and not words, min_term=MIN_TERM,
        )

    def _merge_preview(self, survivor: int, duplicates: list[int], error: str | None = None,
                       status: int = 200):
        from crm.actions import ActionError
        from crm.actions.merge import merge_preview

        try:
            preview = merge_preview(db.session, survivor_id=survivor, duplicate_ids=duplicates)
        except ActionError as exc:
            db.session.rollback()
            return self.render("admin/customer/merge.html", preview=None, error=str(exc),
                               ids=[survivor, *duplicates], survivor=survivor), 400
        chosen = {
            field.name: request.form.get(f"field_{field.name}", type=record_id) or field.default_id
            for field in preview.fields
        } if request.method == "POST" else {f.name: f.default_id for f in preview.fields}
        kinds = list(dict.fromkeys(k for counts in preview.counts.values() for k in counts))
        return self.render(
            "admin/customer/merge.html", preview=preview, error=error, chosen=chosen,
            ids=[survivor, *duplicates], survivor=survivor, kinds=kinds,
        ), status

    def _merge(self, survivor: int, duplicates: list[int]):
        from crm.actions.merge import merge_customers

        choices = {}
        for key, value in request.form.items():
            if key.startswith("field_") and record_ids([value]):
                choices[key[len("field_"):]] = record_ids([value])[0]
        result, error = run_action(
            merge_customers, survivor_id=survivor, duplicate_ids=duplicates,
            field_choices=choices,
        )
        if error:
            return self._merge_preview(survivor, duplicates, error, 400)
        return self.render("admin/customer/merge_done.html", result=result, survivor_id=survivor)

    @expose("/merge/undo/", methods=("GET", "POST"))
    @require("merge")
    def undo_merge_view(self):
        from crm.actions.merge_undo import undo_check, undo_merge

        source = request.form if request.method == "POST" else request.args
        merge_id = source.get("merge_id", type=record_id)
        merge = db.session.get(CustomerMerge, merge_id) if merge_id else None
        if merge is None:
            abort(404)
        error = None
        if request.method == "POST" and request.form.get("confirm") == "1":
            result, error = run_action(undo_merge, merge_id=merge_id)
            if not error:
                flash(result.message or "The merge was undone.", "success")
                return redirect(self.get_url(".details_view", id=merge.survivor_id))
            merge = db.session.get(CustomerMerge, merge_id)
        reasons = undo_check(db.session, merge_id=merge_id)
        ids = [merge.survivor_id, *merge.duplicate_ids]
        customers = {
            c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(ids)))
        }
        actor = db.session.get(User, merge.actor_id) if merge.actor_id else None
        return self.render(
            "admin/customer/merge_undo.html", merge=merge, reasons=reasons, error=error,
            survivor=customers.get(merge.survivor_id),
            duplicates=[customers[i] for i in merge.duplicate_ids if i in customers],
            actor=actor,
        ), (400 if error else 200)
