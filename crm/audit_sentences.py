"""The audit trail read as sentences: "Anna changed County, Phone on C-001999", "Bob merged
C-000123 into C-000045", "Anna issued INV-000321".

A sentence is a list of parts: plain text, and ``Ref`` for each record it names, which the
screens turn into a link to that record (``crm.admin_views.record_links``). It is built from
what an event holds: its verb, its subject, the field names and the references, ids, counts
and amounts of its details, never a value a person typed (the trail holds none: see
``crm.models.audit``). What a role may not see is left out as everywhere else: events of a
money verb (``AUDIT_GATES``) and the names of gated fields (``GATES``).

Two readings: the audit log's, which names who did it and to what ("Anna set C-000012
dormant"), and the customer's timeline, where the record is the page itself and the person
has a column of their own ("set dormant").
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from crm.formatting import day, money
from crm.models.audit import PORTAL
from crm.permissions import sees_event, visible_fields


@dataclass(frozen=True)
class Ref:
    """A record a sentence names: ``text`` as shown; ``model`` its kind ("Customer",
    "Invoice", "merge", ...); ``key`` its id when known. A reference without an id (an
    invoice number, a customer reference) is found by its text when followed."""

    text: str
    model: str | None = None
    key: int | None = None


# Verb -> what the audit log's filter calls it.
VERB_NAMES: dict[str, str] = {
    "create": "Created",
    "update": "Changed",
    "delete": "Deleted",
    "merge": "Merged customers",
    "merge_undo": "Undid a merge",
    "set_dormant": "Set dormant",
    "reactivate": "Reactivated",
    "deactivate": "Deactivated (do not work with again)",
    "archive": "Archived",
    "delete_customers": "Deleted or archived customers",
    "redact": "Redacted",
    "block_email": "Blocked an e-mail address",
    "unblock_email": "Lifted an e-mail block",
    "add_note": "Added a note",
    "pin_note": "Pinned a note",
    "unpin_note": "Unpinned a note",
    "issue_invoice": "Issued an invoice",
    "issue_invoices": "Issued invoices",
    "void_invoice": "Voided an invoice",
    "email_invoice": "E-mailed an invoice",
    "raise_credit_note": "Raised a credit note",
    "void_credit_note": "Voided a credit note",
    "record_payment": "Recorded a payment",
    "allocate_credit": "Allocated account credit",
    "remove_allocation": "Removed an allocation",
    "statements_zip": "Downloaded statements",
    "email_statements": "E-mailed statements",
    "portal_invite": "Sent a portal invitation",
    "portal_revoke": "Revoked portal access",
    "view_as_customer": "Viewed the portal as a customer",
    "data_export": "Downloaded a customer's data",
    "portal_query": "Asked a question (portal)",
    "answer_query": "Answered a portal question",
    "portal_sign_in": "Signed in to the portal",
    "portal_sign_in_link": "Asked for a sign-in link (portal)",
    "portal_reset_link": "Asked for a password reset (portal)",
    "portal_password_set": "Set a portal password",
    "portal_password_changed": "Changed a portal password",
    "portal_email_change_requested": "Asked to change a sign-in e-mail (portal)",
    "portal_email_changed": "Changed a sign-in e-mail (portal)",
    "end_sessions": "Signed a user out everywhere",
    "book_reminders": "Booked jobs from service reminders",
    "postpone_reminders": "Postponed service reminders",
    "skip_reminders": "Skipped service reminders this time",
    "stop_reminders": "Stopped service reminders for good",
    "email_reminders": "E-mailed service reminders",
    "change_kind": "Changed the kind (lead, prospect, client)",
    "move_lead": "Moved a lead to another stage",
    "convert_lead": "Converted a lead",
    "attribute_booking": "Attached a booking by its e-mail",
    "attach_bookings": "Attached bookings that were waiting",
    "confirm_booking": "Confirmed a related booking",
    "detach_booking": "Detached a related booking",
    "hide_related": "Hid related people",
    "unhide_related": "Showed related people again",
}

FIELD_LABELS = {
    "email": "E-mail",
    "email_opt_in": "E-mail consent",
    "sms_opt_in": "Text-message consent",
    "post_opt_in": "Post consent",
    "customer_type": "Type",
    "third_party_reference": "Accounts reference",
    "creditor_days": "Credit days",
    "is_primary": "Primary contact",
    "address_line_1": "Address line 1",
    "address_line_2": "Address line 2",
    "is_enabled": "Enabled",
    "vat_number": "VAT number",
}
RELATED_MODELS = {"contacts": "Contact"}
LISTED = 5  # document numbers named in one sentence; past it, "and N more"


def verb_name(verb: str) -> str:
    return VERB_NAMES.get(verb, verb.replace("_", " ").capitalize())


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " ").capitalize())


def _amount(text) -> str:
    try:
        return money(Decimal(str(text)))
    except (InvalidOperation, ValueError):
        return ""


def _numbers(numbers, model: str) -> list:
    """"INV-000001, INV-000002 and 3 more", each number a reference."""
    numbers = [n for n in numbers or () if n]
    parts: list = []
    for i, number in enumerate(numbers[:LISTED]):
        parts += [", " if i else "", Ref(number, model)]
    if len(numbers) > LISTED:
        parts.append(f" and {len(numbers) - LISTED} more")
    return [p for p in parts if p != ""]


def _day_text(iso: str) -> str:
    """A day kept in an event as ISO, shown as pages show days ("4 Jan 2027")."""
    from datetime import date

    try:
        return day(date.fromisoformat(str(iso)))
    except ValueError:
        return str(iso)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _changes(event, role: str) -> list | None:
    """"County, Phone; contacts: 1 added, E-mail changed", only what ``role`` may see;
    None when nothing it may see changed."""
    details = event.details or {}
    said = []
    fields = visible_fields(event.subject_type, details.get("fields", []), role)
    if fields:
        said.append(", ".join(field_label(f) for f in fields))
    for name, change in (details.get("related") or {}).items():
        bits = [f"{change[k]} {k}" for k in ("added", "removed") if change.get(k)]
        seen = visible_fields(RELATED_MODELS.get(name, name), change.get("fields", []), role)
        if seen:
            bits.append(", ".join(field_label(f) for f in seen) + " changed")
        if bits:
            said.append(f"{name}: " + ", ".join(bits))
    return ["; ".join(said)] if said else None


class _Sentence:
    """Builds the parts of one event's sentence. ``subject`` is None on the timeline (the
    record is the page itself)."""

    def __init__(self, event, role: str, subject: Ref | None) -> None:
        self.event = event
        self.role = role
        self.d = event.details or {}
        self.s = subject

    def on(self, word: str = " on ") -> list:
        return [word, self.s] if self.s else []

    def count(self) -> int | None:
        """The number of customers of a bulk action's summary (no subject of its own)."""
        if self.event.subject_id is None and "count" in self.d:
            return int(self.d["count"])
        return None

    def customers(self, before: str, after: str = "", timeline: str | None = None) -> list:
        """"set C-000012 dormant" / "set 12 customers dormant" / on the timeline "set
        dormant"."""
        n = self.count()
        if n is not None:
            return [f"{before} {_plural(n, 'customer')}{after}"]
        if self.s is None:
            return [timeline if timeline is not None else f"{before}{after}"]
        return [f"{before} ", self.s, after]

    # --- one method per verb (``v_<verb>``); ``generic`` otherwise -----------------------
    def v_create(self):
        return ["created", *self.on(" ")] if self.s else ["created the record"]

    def v_update(self):
        changed = _changes(self.event, self.role)
        if changed is None:
            return None
        return ["changed ", *changed, *self.on()]

    def v_delete(self):
        return ["deleted", *self.on(" ")]

    def v_merge(self):
        merged = [Ref(ref, "merge", self.d.get("merge_id")) for ref in self.d.get("duplicates", [])]
        names = [p for i, ref in enumerate(merged) for p in ((", " if i else ""), ref) if p != ""]
        into = [" into ", self.s] if self.s else [" into this customer"]
        return ["merged ", *names, *into] if names else ["merged customers", *into]

    def v_merge_undo(self):
        merged = [Ref(ref, "merge", self.d.get("merge_id")) for ref in self.d.get("duplicates", [])]
        names = [p for i, ref in enumerate(merged) for p in ((", " if i else ""), ref) if p != ""]
        into = [" from ", self.s] if self.s else [" from this customer"]
        return ["undid the merge of ", *names, *into]

    def v_set_dormant(self):
        return self.customers("set", " dormant", "set dormant")

    def v_reactivate(self):
        return self.customers("reactivated", timeline="reactivated")

    def v_deactivate(self):
        return [*self.customers("deactivated", timeline="deactivated"),
                " (do not work with again)"]

    def v_archive(self):
        return self.customers("archived", timeline="archived")

    def v_delete_customers(self):
        n = self.count()
        if n is None:
            return self.customers("deleted", timeline="deleted")
        deleted, archived = self.d.get("delete", 0), self.d.get("archive", 0)
        if deleted and archived:
            return [f"deleted {deleted:,} and archived {_plural(archived, 'customer')}"]
        return self.customers("archived" if archived else "deleted")

    def v_redact(self):
        return self.customers("redacted", timeline="redacted (personal data erased)")

    def v_block_email(self):
        if self.event.subject_type == "BlockedEmail":
            return ["added the e-mail block ", self.s] if self.s else ["added an e-mail block"]
        n = self.count()
        if n is not None:
            return [f"blocked the e-mail addresses of {_plural(n, 'customer')}"]
        return ["blocked the e-mail address", *self.on(" of ")]

    def v_unblock_email(self):
        return ["lifted the e-mail block", *self.on(" ")]

    def _note(self, article: str = "a note") -> Ref | str:
        key = self.d.get("note_id")
        return Ref(article, "Note", key) if key else article

    def v_add_note(self):
        kind = {"call": "a call", "email": "an e-mail"}.get(self.d.get("kind"), "a note")
        note = self._note(kind + (" (pinned)" if self.d.get("important") else ""))
        return ["added ", note, *self.on(" to ")] if kind == "a note" else \
            ["logged ", note, *self.on(" with ")]

    def v_pin_note(self):
        return ["pinned ", self._note(), *self.on()]

    def v_unpin_note(self):
        return ["unpinned ", self._note(), *self.on()]

    def _invoice(self) -> Ref:
        number = self.d.get("number")
        if self.event.subject_type == "Invoice" and self.s is not None:
            return Ref(number or self.s.text, "Invoice", self.event.subject_id)
        key = self.d.get("invoice_id")
        return Ref(number or (f"invoice #{key}" if key else "an invoice"), "Invoice", key)

    def v_issue_invoice(self):
        return ["issued ", self._invoice()]

    def v_issue_invoices(self):
        numbers = self.d.get("numbers") or []
        return ["issued ", *_numbers(numbers, "Invoice"),
                f" ({_plural(len(numbers), 'invoice')})" if len(numbers) > 1 else ""]

    def v_void_invoice(self):
        return ["voided ", self._invoice()]

    def v_email_invoice(self):
        return ["e-mailed ", self._invoice(), *self.on(" to ")]

    def _credit_note(self) -> list:
        note = Ref(self.d.get("number") or "a credit note", "CreditNote",
                   self.d.get("credit_note_id"))
        against = self.d.get("invoice_number")
        return [note, *((" against ", Ref(against, "Invoice")) if against else ())]

    def v_raise_credit_note(self):
        total = _amount(self.d.get("total"))
        return ["raised ", *self._credit_note(), f" of {total}" if total else "",
                *self.on(" for ")]

    def v_void_credit_note(self):
        return ["voided ", *self._credit_note()]

    def v_record_payment(self):
        amount = _amount(self.d.get("amount"))
        payment = Ref(f"a payment of {amount}" if amount else "a payment", "Payment",
                      self.d.get("payment_id"))
        invoices = _numbers(self.d.get("invoices"), "Invoice")
        return ["recorded ", payment, *self.on(" from "),
                *((" for ", *invoices) if invoices else ())]

    def v_allocate_credit(self):
        amount = _amount(self.d.get("allocated"))
        invoices = _numbers(self.d.get("invoices"), "Invoice")
        return [f"allocated {amount} of account credit" if amount else "allocated account credit",
                *((" to ", *invoices) if invoices else ()), *self.on(" for ")]

    def v_remove_allocation(self):
        amount = _amount(self.d.get("amount"))
        invoice = self.d.get("invoice")
        return [f"removed an allocation of {amount}" if amount else "removed an allocation",
                *((" from ", Ref(invoice, "Invoice")) if invoice else ()), *self.on(" for ")]

    def v_statements_zip(self):
        n = int(self.d.get("count") or 0)
        return [f"downloaded the statements of {_plural(n, 'customer')}"]

    def v_email_statements(self):
        return self.customers("e-mailed a statement to", timeline="e-mailed a statement") \
            if self.count() is None else [f"e-mailed statements to {_plural(self.count(), 'customer')}"]

    def v_portal_invite(self):
        n = self.count()
        if n is not None:
            return [f"sent portal invitations to {_plural(n, 'customer')}"]
        return ["sent ", *((self.s, " ") if self.s else ()), "a portal invitation"]

    def v_portal_revoke(self):
        return ["revoked the portal access", *self.on(" of ")]

    def v_view_as_customer(self):
        return ["viewed the portal as ", self.s] if self.s else ["viewed the portal as the customer"]

    def v_data_export(self):
        return ["downloaded the data", *self.on(" of ")]

    def v_portal_query(self):
        invoice = self.d.get("invoice")
        return ["asked ", self._note("a question"),
                *((" about ", Ref(invoice, "Invoice")) if invoice else ()), " in the portal"]

    def v_answer_query(self):
        return ["answered ", self._note("a portal question"), *self.on(" from ")]

    def v_portal_sign_in(self):
        return ["signed in to the portal", f" (with a {'link' if self.d.get('by') == 'link' else 'password'})"]

    def v_portal_sign_in_link(self):
        return ["asked for a sign-in link"]

    def v_portal_reset_link(self):
        return ["asked for a password reset link"]

    def v_portal_password_set(self):
        return ["set a portal password"]

    def v_portal_password_changed(self):
        return ["changed the portal password"]

    def v_portal_email_change_requested(self):
        return ["asked to change the sign-in e-mail"]

    def v_portal_email_changed(self):
        return ["changed the sign-in e-mail"]

    def v_end_sessions(self):
        return ["signed ", *((self.s, " ") if self.s else ()), "out everywhere"]

    def v_change_kind(self):
        to, old = self.d.get("to") or "another kind", self.d.get("from")
        n = self.count()
        if n is not None:
            return [f"changed {_plural(n, 'customer')} to {to}"]
        since = f" from {old}" if old else ""
        if self.s is None:
            return [f"changed the kind{since} to {to}"]
        return ["changed the kind of ", self.s, f"{since} to {to}"]

    def _related_to(self) -> list:
        ref = self.d.get("related_to")
        return [Ref(ref, "Customer", self.d.get("related_to_id"))] if ref else \
            ["another customer"]

    def v_hide_related(self):
        n = self.count()
        if n is not None:
            return [f"hid {_plural(n, 'customer')} as related people of ", *self._related_to()]
        if self.s is None:
            return ["hid this customer as a related person of ", *self._related_to()]
        return ["hid ", self.s, " as a related person of ", *self._related_to()]

    def v_unhide_related(self):
        n = self.count()
        if n is not None:
            return [f"showed {_plural(n, 'customer')} in the lists again"]
        return ["showed ", self.s or "this customer", " in the lists again"]

    # --- the service-reminder round: "postponed 2 service reminders of C-000012 to 4 Jan
    # 2027"; a summary "… 12 service reminders for 5 customers"; a customer's own row of a
    # summary "… service reminders".
    def _reminders(self, before: str, after: str = "") -> list:
        n = self.count()
        if n is not None:
            customers = self.d.get("customers")
            tail = f" for {_plural(int(customers), 'customer')}" if customers else ""
            return [f"{before} {_plural(n, 'service reminder')}{tail}{after}"]
        k = self.d.get("count")
        noun = _plural(int(k), "service reminder") if k else "service reminders"
        return [f"{before} {noun}", *self.on(" of "), after]

    def v_book_reminders(self):
        bookings = _numbers(self.d.get("bookings"), "Booking")
        if self.count() is not None:
            return [f"booked {_plural(self.count(), 'job')} from service reminders"
                    + (f" for {_plural(int(self.d['customers']), 'customer')}"
                       if self.d.get("customers") else "")]
        if bookings:
            return ["booked ", *bookings, " from service reminders", *self.on(" of ")]
        return ["booked jobs from service reminders", *self.on(" of ")]

    def v_postpone_reminders(self):
        until = self.d.get("until")
        return self._reminders("postponed", f" to {_day_text(until)}" if until else "")

    def v_skip_reminders(self):
        return self._reminders("skipped", " this time")

    def v_stop_reminders(self):
        return self._reminders("stopped", " for good")

    def v_email_reminders(self):
        return self._reminders("e-mailed")

    # --- leads and bookings: "converted lead #12 into C-000045 with B-000310"; on the
    # timeline "converted lead #12 (new customer) with booking B-000310".
    def _lead(self) -> Ref | str:
        key = self.d.get("lead") if self.event.subject_type != "Lead" else self.event.subject_id
        return Ref(f"lead #{key}", "Lead", key) if key else "a lead"

    def _booking(self, name: str = "booking") -> list:
        ref = self.d.get(name)
        return [Ref(ref, "Booking")] if ref else []

    def v_convert_lead(self):
        booking = self._booking()
        tail = [" with booking ", *booking] if booking else [" as a prospect"]
        if self.s:
            return ["converted ", self._lead(), " into ", self.s, *tail]
        made = " into a new customer" if self.d.get("new_customer") else ""
        return ["converted ", self._lead(), made, *tail]

    def v_move_lead(self):
        to = self.d.get("to") or "another stage"
        return ["moved ", self.s or self._lead(), f" to {to}"]

    def v_attribute_booking(self):
        how = {"exact": "its e-mail and name match", "related": "its e-mail matches, not "
               "the name: to review", "new": "a new customer made from it"}
        why = how.get(self.d.get("outcome"), "")
        return ["attached booking ", *self._booking(), *self.on(" to "),
                f" ({why})" if why else ""]

    def v_attach_bookings(self):
        n = int(self.d.get("count") or 0)
        return [f"attached {_plural(n, 'booking')} made earlier with the same e-mail",
                *self.on(" to ")]

    def v_confirm_booking(self):
        return ["confirmed related booking ", *self._booking(), *self.on(" on ")]

    def v_detach_booking(self):
        moved = [Ref(self.d["from"], "Customer")] if self.d.get("from") else ["a customer"]
        target = [Ref(self.d["to"], "Customer")] if self.d.get("to") else ["another"]
        made = " (a new customer)" if self.d.get("new_customer") else ""
        return ["moved booking ", *self._booking(), " from ", *moved, " to ", *target, made]

    def generic(self):
        return [verb_name(self.event.verb).lower(), *self.on(" ")]

    def parts(self) -> list | None:
        build = getattr(self, f"v_{self.event.verb}", self.generic)
        parts = build()
        return None if parts is None else [p for p in parts if p not in ("", None)]


def sentence(event, role: str, *, subject: Ref | None = None,
             actor: str | None = None) -> list | None:
    """The parts of ``event``'s sentence as ``role`` may read it; None when ``role`` may see
    nothing of it. With ``actor`` (the audit log) it starts with who did it; a customer's
    own doings in the portal start with the customer."""
    if not sees_event(role, event.verb):
        return None
    parts = _Sentence(event, role, subject).parts()
    if parts is None:
        return None
    if actor is None:
        return parts
    if event.actor_label == PORTAL and event.subject_type == "Customer" and subject is not None:
        # "C-000012 signed in to the portal": the customer is the one who did it.
        parts = [p for p in parts if p is not subject]
        return [subject, " (portal) ", *_trim(parts)]
    return [actor, " ", *parts]


def _trim(parts: list) -> list:
    """Parts without the dangling word that led to a subject removed from them."""
    while parts and isinstance(parts[-1], str) and parts[-1].strip() in ("on", "to", "of",
                                                                          "from", "for", "with"):
        parts = parts[:-1]
    return parts
