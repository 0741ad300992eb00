"""Who may do what, declared once: the staff roles, the capabilities each role has, and the
columns each role may see.

Everything that gates reads from here: the admin builds one view per role from a view's
``capability`` and strips every surface of the columns ``GATES`` keeps from that role; each
endpoint checks its capability again on every request; the bulk verbs, the menus and the
role-matrix tests are derived from the same table. A new capability is one entry in
``CAPABILITIES``; ``tests/integration/test_capabilities.py`` then probes every surface that
requires it, for every role.

This module imports nothing of the application, so models, actions, views and the portal
can all depend on it.
"""

from dataclasses import dataclass

ROLES = ("owner", "admin", "coordinator")
STAFF = frozenset(ROLES)
FINANCE = frozenset({"owner", "admin"})


@dataclass(frozen=True)
class Capability:
    name: str
    roles: frozenset[str]
    what: str  # what it lets a person do, as the role-matrix tests and docs say it


CAPABILITIES: dict[str, Capability] = {
    capability.name: capability
    for capability in (
        # Money: owners and admins only; a coordinator never sees an amount anywhere.
        Capability("see_money", FINANCE,
                   "see balances and amounts, and open the invoices, credit notes, payments "
                   "and allocations"),
        Capability("invoice", FINANCE, "create draft invoices, issue and void them"),
        Capability("raise_credit_note", FINANCE, "raise and void credit notes"),
        Capability("record_payment", FINANCE,
                   "record payments, allocate account credit and remove allocations"),
        Capability("statements", FINANCE,
                   "make statements (page, PDF, ZIP), e-mail them and read the outbox"),
        # Irreversible or sweeping customer actions.
        Capability("merge", FINANCE, "merge customers and undo a merge"),
        Capability("redact", FINANCE, "erase a customer's personal data"),
        Capability("delete", FINANCE,
                   "delete customers (those with anything attached are archived)"),
        # Everyday customer work: every staff role.
        Capability("set_dormant", STAFF, "set customers dormant, reactivate or deactivate them"),
        Capability("block_email", STAFF, "block and unblock e-mail addresses and domains"),
        Capability("change_kind", STAFF,
                   "change customers' kind (lead, prospect, client), with a reason"),
        Capability("hide_related", STAFF,
                   "hide related people (a spouse, a child) under the customer they belong "
                   "to, and show them again"),
        Capability("reminders", STAFF,
                   "decide on due service reminders (book a job, postpone, skip this time, "
                   "stop for good) and send reminder e-mails"),
        Capability("convert_lead", STAFF, "convert a lead into a customer with a booking"),
        Capability("attribute_booking", STAFF, "attach a booking to the customer it came from"),
        Capability("import_records", STAFF,
                   "import customers and work addresses from a spreadsheet"),
        # Settings.
        Capability("manage_staff", FINANCE,
                   "manage staff accounts (an admin never manages owners)"),
        Capability("portal_invite", FINANCE,
                   "invite customers to the portal and manage their portal accounts"),
        Capability("view_as_customer", FINANCE, "open the portal as a customer sees it"),
        Capability("export_data", FINANCE,
                   "download everything held about a customer (their data export, with the "
                   "money documents)"),
        Capability("audit_log", FINANCE, "read the audit log"),
        Capability("manage_business", FINANCE,
                   "change the business's name, address, numbers, bank details, payment "
                   "terms, logo and e-mail sender that documents and customer e-mails show"),
        Capability("run_jobs", FINANCE, "see every colleague's background jobs and start the "
                   "ledger check"),
    )
}

# Column -> the capability that may see it, on every surface (list, details, forms, export,
# filters, search, sorting, inline edit, look-ups). One declaration for the whole panel.
GATES: dict[str, str] = {
    "Customer.balance": "see_money",
    "Customer.account_credit": "see_money",
    "Customer.overdue_amount": "see_money",
    "Customer.oldest_overdue_on": "see_money",
    "Customer.overdue_days": "see_money",
    "Customer.next_due_on": "see_money",
    "Customer.ledger_as_of": "see_money",
    "Customer.creditor_days": "see_money",
    "Customer.price_book": "see_money",
    "Customer.third_party_reference": "see_money",
    "Booking.value": "see_money",
}


# Audit verb -> the capability that may see its events, wherever the trail is shown (the
# customer's timeline lists every event on the customer, and a coordinator reads it).
# The money actions: that a payment was recorded or a statement sent is money.
AUDIT_GATES: dict[str, str] = {
    verb: "see_money"
    for verb in (
        "record_payment", "allocate_credit", "remove_allocation",
        "raise_credit_note", "void_credit_note",
        "issue_invoice", "issue_invoices", "void_invoice", "email_invoice",
        "email_statements", "statements_zip",
    )
}


def can(role: str | None, capability: str | None) -> bool:
    """Whether ``role`` has ``capability`` (None: something every staff role may do).
    An unknown capability is a programming error, not a refusal."""
    if capability is None:
        return role in STAFF
    return role in CAPABILITIES[capability].roles


def roles_with(capability: str | None) -> frozenset[str]:
    return STAFF if capability is None else CAPABILITIES[capability].roles


def allowed(model_name: str, column: str, role: str) -> bool:
    """Whether ``role`` may see ``model_name.column`` on any surface."""
    return can(role, GATES.get(f"{model_name}.{column}"))


def sees_event(role: str, verb: str) -> bool:
    """Whether ``role`` may see an audit event of ``verb`` at all."""
    return can(role, AUDIT_GATES.get(verb))


def hidden_verbs(role: str) -> list[str]:
    """The audit verbs ``role`` may not see (for a query's NOT IN)."""
    return sorted(verb for verb in AUDIT_GATES if not sees_event(role, verb))


def visible_fields(model_name: str, fields, role: str) -> list[str]:
    """The changed-field names of an audit event that ``role`` may read: a gated column's
    name says as much as its value would ("credit days changed")."""
    return [name for name in fields if allowed(model_name, name, role)]
