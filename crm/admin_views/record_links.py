"""Records that link: every reference a page shows (an invoice number, a customer
reference, a payment, a contact, a merged customer...) opens that record in the viewer's own
role's panel, when the role has that screen.

- ``ref_url(role, ref)``: the address of a ``crm.audit_sentences.Ref``: by id when it has
  one (nothing to look up), else by its text through the customer view's reference page
  (``/admin/<role>/customer/ref/<text>/``), which finds it when followed. So a page of
  fifty references costs no extra statement.
- ``parts_html(role, parts)``: a sentence with its references as links.
- ``record_link(role, obj)``: a related record of a details page as a link.
"""

import re

from flask import current_app, url_for
from markupsafe import Markup, escape

from crm.audit_sentences import Ref
from crm.permissions import can

# Model -> the slug of its screen (crm.admin_views.REGISTRY; a test keeps the two in step).
SLUGS: dict[str, str] = {
    "Customer": "customer",
    "Contact": "contact",
    "Branch": "branch",
    "Tag": "tag",
    "Lead": "lead",
    "Booking": "booking",
    "WorkAddress": "work_address",
    "ServiceReminder": "service_reminder",
    "Note": "note",
    "Invoice": "invoice",
    "CreditNote": "credit_note",
    "Payment": "payment",
    "Allocation": "allocation",
    "BlockedEmail": "blocked_email",
    "User": "user",
    "PortalAccount": "portal_account",
    "AuditEvent": "audit_event",
}
# A reference's prefix -> the kind of record it names (customer references, booking
# references and document numbers, crm.models.sequence).
PREFIXES: dict[str, str] = {"C-": "Customer", "B-": "Booking", "INV-": "Invoice",
                            "CN-": "CreditNote"}
REFERENCE = re.compile(r"(C-|B-|INV-|CN-)[0-9]{1,18}")


def has_screen(role: str, model: str) -> bool:
    slug = SLUGS.get(model)
    return slug is not None and slug in current_app.extensions["crm_role_slugs"].get(role, ())


def details_url(role: str, model: str, key: int) -> str | None:
    if not has_screen(role, model):
        return None
    return url_for(f"{SLUGS[model]}_{role}.details_view", id=key)


def kind_of(reference: str) -> str | None:
    """The kind of record a reference names by its prefix ("INV-000321": "Invoice"); None
    for anything that is not a prefix and digits (crm.models.sequence), so nothing else is
    ever looked up."""
    found = REFERENCE.fullmatch(reference)
    return PREFIXES[found.group(1)] if found else None


def ref_url(role: str, ref: Ref) -> str | None:
    if ref.model == "merge":
        if ref.key is None or not can(role, "merge"):
            return None
        return url_for(f"customer_{role}.undo_merge_view", merge_id=ref.key)
    if ref.model is None:
        return None
    if ref.key is not None:
        return details_url(role, ref.model, ref.key)
    if kind_of(ref.text) == ref.model and has_screen(role, ref.model):
        return url_for(f"customer_{role}.reference_view", ref=ref.text)
    return None


def parts_html(role: str, parts) -> Markup:
    """A sentence (text and ``Ref``s) as HTML, each reference a link where it can be one."""
    out = []
    for part in parts or ():
        if isinstance(part, Ref):
            href = ref_url(role, part)
            out.append(Markup('<a href="{}">{}</a>').format(href, part.text) if href
                       else escape(part.text))
        else:
            out.append(escape(part))
    return Markup("").join(out)


def record_link(role: str, obj) -> Markup | str:
    """A related record as a link to its own page (its text when the role has no screen
    of it)."""
    if obj is None:
        return ""
    model = type(obj).__name__
    key = getattr(obj, "id", None)
    href = details_url(role, model, key) if key is not None else None
    return Markup('<a href="{}">{}</a>').format(href, str(obj)) if href else str(obj)
