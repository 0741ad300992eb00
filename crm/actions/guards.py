"""Refusals that several actions and screens share, each written once: a customer that must be
live (not merged away) and, for most work, not redacted; a record whose customer has been
redacted. Each raises ``ActionError`` with a sentence a person can read."""

from sqlalchemy.orm import Session, object_session

from crm.actions import ActionError
from crm.models import Customer


def live_customer(session: Session, customer_id, *, doing: str,
                  allow_redacted: bool = False) -> Customer:
    """The customer ``customer_id`` names, refused when there is none, when it was merged into
    another (the message names the survivor) and, unless ``allow_redacted``, when it has
    been redacted. ``doing`` says what the caller is about to do ("record a payment"), for
    the sentence."""
    customer = session.get(Customer, customer_id) if _is_id(customer_id) else None
    if customer is None:
        raise ActionError("That customer does not exist.")
    if customer.merged_into_id is not None:
        survivor = session.get(Customer, customer.merged_into_id)
        raise ActionError(f"{customer.reference} was merged into "
                          f"{survivor.reference if survivor else 'another customer'}: "
                          f"{doing} there instead.")
    if not allow_redacted:
        ensure_not_redacted(customer, doing=doing)
    return customer


def ensure_not_redacted(customer: Customer, *, doing: str | None = None) -> None:
    """Refuse work that would bring personal data back under a record the person asked to
    have erased: editing the customer (``doing`` None) or ``doing`` something for it."""
    if customer.redacted_at is None:
        return
    if doing is None:
        raise ActionError(f"{customer.reference} has been redacted; it can no longer be edited.")
    raise ActionError(f"{customer.reference} has been redacted; you cannot {doing} for it.")


def ensure_record_not_redacted(record) -> None:
    """Refuse adding or changing a row that hangs off a redacted customer (a contact, note,
    booking, work address, ...): found through its ``customer`` or its work address's."""
    session = object_session(record)
    if session is None:
        customer = owning_customer(record)
    else:
        with session.no_autoflush:  # the row being saved must not be flushed half-made
            customer = owning_customer(record)
    if customer is not None and customer.redacted_at is not None:
        raise ActionError(f"{customer.reference} has been redacted: its records can no longer "
                          "be added to or changed.")


def owning_customer(record) -> Customer | None:
    customer = getattr(record, "customer", None)
    address = getattr(record, "work_address", None)
    if customer is None and address is not None:
        customer = address.customer
    return customer


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
