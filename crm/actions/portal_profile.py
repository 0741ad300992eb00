"""What a customer changes about themselves in the portal: their phone and billing address
(checked as the admin checks them; a stale edit is refused, as in the admin), and their
communication preferences (statement e-mails, service reminders, marketing), which the
statement e-mail run and the due-reminders list honour. Every change is audited on the
customer with the names of the fields, as ``PORTAL``."""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.actions.guards import live_customer
from crm.models import Customer
from crm.models.audit import PORTAL, record
from crm.validation import address_problems, normalize_phone, normalize_postcode

STALE = ("Your details were changed elsewhere while you were editing them (perhaps by us). "
         "Nothing was saved: the form now shows them as they are; make your change again.")
PREFERENCES = ("wants_statements", "wants_reminders", "wants_marketing")


@dataclass(frozen=True)
class Details:
    phone: str | None
    address_line_1: str | None
    address_line_2: str | None
    town: str | None
    county: str | None
    postcode: str | None


LIMITS = {"address_line_1": 200, "address_line_2": 200, "town": 100, "county": 100}
YOUR_ADDRESS = {
    "address_line_1": "Enter the first line of your address, or leave the address empty.",
    "postcode": "Enter your postcode, or leave the address empty.",
}


def update_details(session: Session, *, customer_id: int, details: Details, version: int | None,
                   region: str) -> ActionResult:
    """Save a new phone number and billing address, if nobody changed the customer since the
    form was loaded at ``version``; field problems are refused all at once, by field."""
    customer = live_customer(session, customer_id, doing="change your details")
    if version is None or version != customer.version:
        raise ActionError(STALE)
    cleaned, problems = _clean(details, customer.country or region)
    if problems:
        raise FieldErrors(problems)
    changed = [name for name, value in cleaned.items() if getattr(customer, name) != value]
    if not changed:
        return ActionResult("portal_details", message="Nothing to change.")
    for name in changed:
        setattr(customer, name, cleaned[name])
    session.flush()
    record(session, actor=None, label=PORTAL, verb="update", subject_type="Customer",
           subject_id=customer.id, details={"fields": sorted(changed)})
    return ActionResult("portal_details", changed=1, changed_refs=(customer.reference,),
                        message="Your details are saved.")


class FieldErrors(ActionError):
    """Refusals by field: ``errors`` maps a field to its sentence."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("Please correct the highlighted fields; nothing was saved.")
        self.errors = errors


def _clean(details: Details, country: str) -> tuple[dict, dict]:
    values, problems = {}, {}
    try:
        values["phone"] = normalize_phone(details.phone, country)
    except ValueError as exc:
        problems["phone"] = str(exc)
    for name, limit in LIMITS.items():
        value = (getattr(details, name) or "").strip() or None
        if value is not None and len(value) > limit:
            problems[name] = f"Use at most {limit} characters."
        values[name] = value
    try:
        values["postcode"] = normalize_postcode(details.postcode, country)
    except ValueError as exc:
        problems["postcode"] = str(exc)
    # The address is optional (we reach them by e-mail), but one begun needs both of these.
    for name in address_problems({**values, "postcode": details.postcode}):
        problems.setdefault(name, YOUR_ADDRESS[name])
    return values, problems


def set_preferences(session: Session, *, customer_id: int, wants_statements: bool,
                    wants_reminders: bool, wants_marketing: bool) -> ActionResult:
    customer: Customer = live_customer(session, customer_id, doing="change your preferences")
    wanted = {"wants_statements": bool(wants_statements),
              "wants_reminders": bool(wants_reminders),
              "wants_marketing": bool(wants_marketing)}
    changed = sorted(name for name, value in wanted.items() if getattr(customer, name) != value)
    if not changed:
        return ActionResult("portal_preferences", message="Your preferences are as they were.")
    for name in changed:
        setattr(customer, name, wanted[name])
    session.flush()
    record(session, actor=None, label=PORTAL, verb="update", subject_type="Customer",
           subject_id=customer.id, details={"fields": changed})
    return ActionResult("portal_preferences", changed=1, changed_refs=(customer.reference,),
                        message="Your preferences are saved.")
