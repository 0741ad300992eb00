"""Bulk and row actions on customers: one confirmation page and one results page for every
verb, on a selection of rows or on every row matching the list's current filter.

Flow: the list's "With selected" menu (Flask-Admin ``@action``), the "All N matching" menu or
a button on the record page sends the user to ``/bulk/<verb>/``; GET (or a POST without
``confirm``) shows what will happen to how many customers; the POST with ``confirm`` runs the
action through ``run_action`` (one transaction) and shows what changed and what was skipped.
Nothing here decides a business rule: each verb calls one function of ``crm.actions``.
"""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from flask import abort, redirect, request, send_file
from flask_admin import expose
from flask_admin.actions import action
from sqlalchemy import Select, func, select

from crm import mail
from crm.actions import ActionError
from crm.actions.statement_run import email_statements, statements_zip
from crm.admin_views.adapters import record_id, record_ids, run_action
from crm.admin_views.forms import choices
from crm.extensions import db
from crm.formatting import DATE_EXAMPLE, day, parse_day
from crm.jobs import start_job, threshold
from crm.jobs.customers import BULK_RUNS, bulk_kind
from crm.models import Customer
from crm.models.comms import BLOCK_REASON_LABELS, BLOCK_REASONS
from crm.models.customer import CUSTOMER_KINDS
from crm.search_index import MIN_TERM, find_live_customers, search_words

MAX_SELECTED = 10_000  # ids posted one by one; past this, "all matching the filter" is the way
PREVIEW = 20  # references listed on a confirmation page
# A selection of at most CRM_JOB_THRESHOLD customers (1,000) runs inside the request and shows
# its results at once; a bigger one becomes a background job (crm.jobs) and the user lands on
# the job's page. Verbs that render or send something per customer (statements, invitations)
# turn into a job sooner: past ``SLOW_OVER`` customers.
SLOW_OVER = 20
# A job's title, "{n}" being "300,000 customers".
JOB_TITLES = {
    "set_dormant": "Set {n} dormant",
    "reactivate": "Reactivate {n}",
    "deactivate": "Deactivate {n}",
    "change_kind": "Change the kind of {n}",
    "hide_related": "Hide {n} as related people",
    "unhide_related": "Show {n} again",
    "block_email": "Block the e-mail addresses of {n}",
    "delete": "Delete or archive {n}",
    "redact": "Redact {n}",
    "portal_invite": "Invite {n} to the portal",
    "statements_zip": "Statements of {n} as a ZIP",
    "email_statements": "E-mail statements to {n}",
}


@dataclass(frozen=True)
class Verb:
    name: str
    label: str  # the menu entry
    title: str  # the confirmation page's heading
    explain: str  # what will happen, in a sentence or two
    capability: str  # what the role needs to run it (crm.permissions)
    run: Callable  # (session, actor, selection, form) -> ActionResult
    reason: str | None = None  # label of a required free-text reason, if any
    # Asks why the e-mail is blocked (a reason from the list, and a note when not redacting).
    asks_block_reason: bool = False
    typed_word: str | None = None  # a word the user must type to confirm
    offers_block: bool = False
    danger: bool = False
    slow: bool = False  # a PDF or an e-mail per customer: a job past SLOW_OVER customers
    download: bool = False  # ends in a file download (run gets form["out"]), not the results
    dated: bool = False  # statements: ``explain`` names the date ({as_of}), from ?as_of=
    asks_kind: bool = False  # asks the new kind (lead, prospect, client)
    asks_related: bool = False  # asks whom they belong to (a customer search)


def _bulk(verb: str):
    def run(session, actor, selection, form):
        return BULK_RUNS[verb](session, actor, selection, form)

    return run


_set_dormant, _reactivate, _deactivate, _change_kind, _hide, _unhide, _block, _delete, \
    _redact, _portal_invite = (_bulk(verb) for verb in (
        "set_dormant", "reactivate", "deactivate", "change_kind", "hide_related",
        "unhide_related", "block_email", "delete", "redact", "portal_invite"))


def statement_date(form) -> date | None:
    """The statements' date from ``as_of`` ("4 Dec 2026", or ISO); none means today."""
    text = (form.get("as_of") or "").strip()
    if not text:
        return None
    try:
        return parse_day(text[:40])
    except ValueError:
        raise ActionError(f"The statement date: type a date like {DATE_EXAMPLE}; "
                          "nothing was made or sent.") from None


def _statements_zip(session, actor, selection, form):
    return statements_zip(session, selection=selection, actor=actor, out=form["out"],
                          as_of=statement_date(form))


def _email_statements(session, actor, selection, form):
    as_of = statement_date(form)
    with mail.connection() as send:  # one SMTP session for the whole run
        return email_statements(session, selection=selection, actor=actor, as_of=as_of,
                                send=send)


VERBS: dict[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb("set_dormant", "Set dormant", "Set customers dormant",
             "Their work addresses become dormant too, their service reminders leave the due "
             "list and automated messages stop. Invoices can still be issued.",
             "set_dormant", _set_dormant),
        Verb("reactivate", "Reactivate", "Reactivate customers",
             "Dormant or archived customers become active again, with the work addresses that "
             "went dormant with them; \"do not work with again\" warnings are unpinned.",
             "set_dormant", _reactivate),
        Verb("deactivate", "Deactivate (do not work with again)", "Deactivate customers",
             "Adds a pinned \"do not work with again\" note with your reason to each customer "
             "and sets them dormant. Reactivate reverses it.",
             "set_dormant", _deactivate, reason="Reason (shown on the note)"),
        Verb("change_kind", "Change kind", "Change the kind of customers",
             "Each customer becomes a lead, a prospect or a client. Your reason is noted on "
             "each customer, and their timeline shows the change.",
             "change_kind", _change_kind, reason="Reason (noted on each customer)",
             asks_kind=True),
        Verb("hide_related", "Hide as related person", "Hide as related people",
             "For a spouse, a child or anyone who will never pay: they leave the default "
             "list, like archived customers, and the record of the customer they belong to "
             "lists them. \"Unhide\" brings them back.",
             "hide_related", _hide, asks_related=True),
        Verb("unhide_related", "Unhide", "Show hidden related people again",
             "Hidden related people come back to the default list and are no longer linked "
             "to the customer they belonged to.",
             "hide_related", _unhide),
        Verb("block_email", "Block their e-mail addresses", "Block e-mail addresses",
             "Each customer's e-mail address goes on the blocklist (kept only as a keyed hash): "
             "it can no longer create a customer, lead or booking or sign in to the portal.",
             "block_email", _block, asks_block_reason=True),
        Verb("delete", "Delete / archive", "Delete or archive customers",
             "Customers with bookings, money, notes or other records attached are archived "
             "(hidden from the list, kept for the records); only customers with nothing attached "
             "are really deleted.",
             "delete", _delete, danger=True),
        Verb("redact", "Redact (erase personal data)", "Redact customers",
             "Erases the personal data of each customer, its contacts, work-address occupiers, "
             "notes, leads with the same e-mail and portal account, and deletes the e-mails "
             "stored about them. Invoices, credit notes and "
             "payments are kept with their numbers, dates and amounts under the name "
             "\"Redacted customer C-…\". This cannot be undone.",
             "redact", _redact, asks_block_reason=True, typed_word="REDACT",
             offers_block=True, danger=True),
        Verb("statements_zip", "Statements (ZIP)", "Statements as a ZIP of PDFs",
             "One outstanding statement per customer at {as_of} (statement-C-….pdf), in a ZIP "
             "file to download. Merged-away customers are left out. Nothing is changed.",
             "statements", _statements_zip, slow=True, download=True, dated=True),
        Verb("email_statements", "E-mail statements", "E-mail statements",
             "Each customer gets their outstanding statement at {as_of} as a PDF attached to "
             "an e-mail. Dormant, archived, redacted and merged customers, blocked addresses, "
             "those without an e-mail address and those who opted out of e-mail are skipped. "
             "Messages sent cannot be recalled.",
             "statements", _email_statements, slow=True, dated=True),
        Verb("portal_invite", "Send portal invite", "Send portal invitations",
             "Each customer with an e-mail address gets an invitation to the customer portal "
             "(their statement, documents, payments and bookings): a link, valid for 7 days, "
             "to choose a password. An existing account is invited again (a revoked one is "
             "opened again). Merged-away, redacted, archived and blocked customers are "
             "skipped.",
             "portal_invite", _portal_invite, slow=True),
    )
}


assert set(JOB_TITLES) == set(VERBS), "every verb needs its job title"


def _menu_entry(verb: Verb):
    """The "With selected" entry of a verb: its confirmation page for the chosen rows."""

    @action(verb.name, verb.label)
    def entry(self, ids):
        return self._confirm_page(verb, self._selected(ids))

    entry.__name__ = f"action_{verb.name}"
    return entry


class CustomerBulkMixin:
    """Mixed into the customer view: the ``@action`` entries (one per verb, made below) and
    the bulk endpoint."""

    action_capabilities = {name: verb.capability for name, verb in VERBS.items()} | {
        "merge": "merge"}

    @action("merge", "Merge…")
    def action_merge(self, ids):
        # Oldest first: the record entered first is the usual survivor (changeable on the page).
        return redirect(self.get_url(".merge_view", ids=sorted(record_ids(ids))))

    def bulk_verbs(self) -> list[Verb]:
        """The verbs this view's role may run on every row matching the list's filter."""
        return [verb for verb in VERBS.values() if self.can(verb.capability)]

    def row_verb_links(self) -> list[tuple[str, str]]:
        """(label, URL) of each verb for the list's row buttons: built once per page, not
        once per row (twenty rows times every verb of url_for was a few ms a page)."""
        from flask import g

        key = f"row_verb_links_{self.endpoint}"
        if key not in g:
            setattr(g, key, [(verb.label, self.get_url(".bulk_view", verb=verb.name))
                             for verb in self.bulk_verbs()])
        return getattr(g, key)

    # --- the endpoint -----------------------------------------------------------------------
    @expose("/bulk/<verb>/", methods=("GET", "POST"))
    def bulk_view(self, verb):
        spec = VERBS.get(verb)
        if spec is None:
            abort(404)
        self.require(spec.capability)
        selection = self._request_selection()
        if request.method == "POST" and request.form.get("confirm") == "1":
            return self._run(spec, selection)
        return self._confirm_page(spec, selection)

    @expose("/delete/", methods=("POST",))
    def delete_view(self):
        """A customer is never deleted by a bare POST: show what deleting would do first."""
        if not self.can_delete:
            abort(403)
        self.require(VERBS["delete"].capability)
        return self._confirm_page(VERBS["delete"], self._selected(request.form.getlist("id")))

    # --- selections ---------------------------------------------------------------------------
    def _selected(self, ids) -> Select | None:
        keys = sorted(record_ids(ids))
        if not keys or len(keys) > MAX_SELECTED:
            return None
        return select(Customer.id).where(Customer.id.in_(keys), Customer.merged_into_id.is_(None))

    def _matching(self) -> Select:
        """Every customer the list shows for the filter and search in the query string."""
        args = self._get_list_extra_args()
        unsorted, _ = self._list_query(None, False, args.search, args.filters)
        return unsorted.with_entities(Customer.id).order_by(None).statement

    def _request_selection(self) -> Select | None:
        if request.args.get("all") == "1":
            return self._matching()
        source = request.form if request.method == "POST" else request.args
        return self._selected(source.getlist("ids"))

    # --- pages ----------------------------------------------------------------------------------
    def _form_values(self) -> dict:
        return {
            "reason": (request.form.get("reason") or "").strip(),
            "block_reason": (request.form.get("block_reason") or "").strip(),
            "note": (request.form.get("note") or "").strip(),
            "word": (request.form.get("word") or "").strip(),
            "block": request.form.get("block") == "1",
            "as_of": (request.values.get("as_of") or "").strip(),
            "kind": (request.form.get("kind") or "").strip(),
            "related_to": request.form.get("related_to", type=record_id),
        }

    def _count(self, selection) -> int:
        return db.session.scalar(select(func.count()).select_from(selection.subquery()))

    @staticmethod
    def _as_job(spec: Verb, count: int) -> bool:
        """Whether the run goes to the background (crm.jobs) rather than the request."""
        from flask import current_app

        return count > (SLOW_OVER if spec.slow else threshold(current_app.config))

    def _back_to(self, back: int | None = None) -> int | None:
        """The customer whose page the action was started from (its buttons send ``back``):
        cancelling or finishing leads back there instead of to the list."""
        if back is None:
            back = request.values.get("back", type=record_id)
        return back

    def _confirm_page(self, spec: Verb, selection, error: str | None = None, status: int = 200,
                      back: int | None = None):
        if selection is None:
            return self._no_selection()
        back = self._back_to(back)
        count = self._count(selection)
        as_job = self._as_job(spec, count)
        references = db.session.scalars(
            select(Customer.reference).where(Customer.id.in_(selection))
            .order_by(Customer.id).limit(PREVIEW)
        ).all()
        plan = None
        if spec.name == "delete" and count and not as_job:
            from crm.actions.archive import deletion_plan

            plan = deletion_plan(db.session, selection=selection)
        if spec.dated:
            spec = replace(spec, explain=spec.explain.format(as_of=self._as_of_label()))
        all_matching = request.args.get("all") == "1"
        ids = [] if all_matching else record_ids(
            request.form.getlist("ids") or request.args.getlist("ids")
            or request.form.getlist("rowid") or request.form.getlist("id")
        )
        return self.render(
            "admin/customer/confirm.html", verb=spec, count=count, references=references,
            kinds=choices(CUSTOMER_KINDS), related=self._related_choices(spec),
            carried=self._carried(spec),
            ids=ids, all_matching=all_matching, plan=plan, error=error,
            block_reasons=[(code, BLOCK_REASON_LABELS[code]) for code in BLOCK_REASONS],
            runnable=bool(count), as_job=as_job,
            form=self._form_values() if request.method == "POST" else {},
            action_url=self.get_url(".bulk_view", verb=spec.name, **self._carried(spec)),
            list_url=self.get_url(".details_view", id=back) if back else self.get_url(
                ".index_view", **self._list_args()),
            back=back,
        ), status

    def _related_choices(self, spec: Verb) -> dict | None:
        """For "Hide as related person": the search typed (``q``) and the customers it
        finds that people may belong to (live, not redacted, not hidden themselves, not
        among those being hidden), and the one already chosen."""
        if not spec.asks_related:
            return None
        term = (request.values.get("q") or "").strip()[:200]
        words, _ = search_words(term)
        # not one of the people being hidden (the action would skip it anyway)
        chosen_ids = record_ids(request.values.getlist("ids"))[:MAX_SELECTED]
        found = find_live_customers(db.session, term, Customer.redacted_at.is_(None),
                                    Customer.hidden.is_(False),
                                    Customer.id.not_in(chosen_ids)) if words else []
        chosen = request.values.get("related_to", type=record_id)
        picked = db.session.get(Customer, chosen) if chosen else None
        if picked is not None and picked not in found:
            found = [picked, *found]
        return {"term": term, "found": found, "short": bool(term) and not words,
                "chosen": chosen, "min_term": MIN_TERM}

    def _carried(self, spec: Verb) -> dict:
        """What the confirmation form's URL keeps: the filter of "all matching", the date."""
        args = {"all": "1", **self._list_args()} if request.args.get("all") == "1" else {}
        as_of = (request.values.get("as_of") or "").strip()
        if spec.dated and as_of:
            args["as_of"] = as_of
        return args

    def _as_of_label(self) -> str:
        text = (request.values.get("as_of") or "").strip()
        try:
            when = parse_day(text[:40]) if text else date.today()
        except ValueError:
            return f"the date given ({text[:20]})"
        return day(when) + (" (today)" if when == date.today() else "")

    def _list_args(self) -> dict:
        return {k: v for k, v in request.args.items()
                if k not in ("all", "ids", "q", "related_to", "back")}

    def _no_selection(self):
        return self.render(
            "admin/customer/confirm.html", verb=None, count=0, references=[], ids=[],
            all_matching=False, plan=None, form={}, action_url="", list_url=self.get_url(
                ".index_view"),
            error=f"Select between 1 and {MAX_SELECTED:,} customers, or use \"All matching\" "
                  "for a whole filter. Nothing was changed.",
        ), 400

    def _run(self, spec: Verb, selection):
        if selection is None:
            return self._no_selection()
        form = self._form_values()
        if spec.reason and not spec.offers_block and not form["reason"]:
            return self._confirm_page(spec, selection, f"{spec.reason} is required; nothing "
                                      "was changed.", 400)
        if self._as_job(spec, self._count(selection)):
            return self._start_job(spec, selection, form)
        if spec.download:
            return self._download(spec, selection, form)
        result, error = run_action(
            lambda session, actor: spec.run(session, actor, selection, form)
        )
        if error:
            return self._confirm_page(spec, selection, error, 400)
        back = self._back_to()
        return self.render(
            "admin/crm/results.html", title=spec.title, result=result,
            list_url=self.get_url(".details_view", id=back) if back else self.get_url(
                ".index_view", **self._list_args()),
            back_label="Back to the customer" if back else None,
        )

    def _start_job(self, spec: Verb, selection, form):
        """Check what the run needs (the same guards as the action, tried on no customer at
        all and rolled back), record the job with the customers confirmed, queue it, and
        land on its page."""
        from flask_login import current_user

        from crm.admin_views.jobs import job_page_url
        from crm.jobs.queue import enqueue

        nobody = select(Customer.id).where(Customer.id.is_(None))
        trial = db.session.begin_nested()
        try:
            with tempfile.TemporaryFile() as out:
                spec.run(db.session, current_user, nobody, {**form, "out": out})
        except ActionError as exc:
            trial.rollback()
            return self._confirm_page(spec, selection, str(exc), 400)
        trial.rollback()
        count = self._count(selection)
        as_of = statement_date(form)  # checked by the trial above: a date or None
        params = {"form": {k: v for k, v in form.items() if k != "as_of"},
                  "as_of": as_of.isoformat() if as_of else None,
                  # which filters, never their values (a surname searched, a postcode)
                  "filter": sorted(self._list_args()) if request.args.get("all") == "1"
                  else None,
                  "from": "customer list"}
        kind = {"statements_zip": "statements_zip",
                "email_statements": "email_statements"}.get(spec.name, bulk_kind(spec.name))
        job = start_job(db.session, kind=kind, actor=current_user, params=params,
                        title=JOB_TITLES[spec.name].format(
                            n=f"{count:,} customer{'' if count == 1 else 's'}"),
                        items=selection, enqueue=enqueue)
        db.session.commit()
        return redirect(job_page_url(job.id))

    def _download(self, spec: Verb, selection, form):
        """Run a verb that writes a file (the statements ZIP) into a temporary file, then send
        it; a refusal shows the confirmation page again, with nothing made."""
        out = tempfile.TemporaryFile()
        result, error = run_action(
            lambda session, actor: spec.run(session, actor, selection, {**form, "out": out})
        )
        if error:
            out.close()
            return self._confirm_page(spec, selection, error, 400)
        out.seek(0)
        day = result.details.get("as_of") or date.today().isoformat()
        return send_file(out, mimetype="application/zip", as_attachment=True,
                         download_name=f"statements-{day}.zip")


for _verb in VERBS.values():
    setattr(CustomerBulkMixin, f"action_{_verb.name}", _menu_entry(_verb))
