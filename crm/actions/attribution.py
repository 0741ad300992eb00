"""Tie a booking to the customer it came from, by the e-mail address the person gave.

The rule, wherever a booking is made with a contact e-mail (the booking form, a lead's
conversion, an import):

- the e-mail matches a customer and the name agrees: attached, ``exact``;
- the e-mail matches but the name differs (Sam books under the address of Alex, their
  partner): attached as ``related`` and listed in "Related bookings to review", where staff
  *confirm* it or *detach* it to a new customer or another existing one;
- no customer has the e-mail: a confirmed (or completed) booking makes a new customer of kind
  client; an enquiry or a cancelled one waits, unattached, until it is confirmed or until a
  customer with that e-mail is created (``attach_waiting`` runs then and says how many).

Matching reads ``customer.email`` (stored normalized, indexed): a handful of statements per
booking whatever the number of customers. A merged-away record leads to its survivor; a
redacted or blocked customer refuses with the reason. When two live customers share the
e-mail, the oldest (lowest id, not archived first) is chosen and the booking is marked
``related`` so that a person checks it: the address alone does not say which of the two.

A name *agrees* when the surnames are the same (ignoring case, accents, spaces and
punctuation) and the first names, when both are given, start with the same letter — against
the customer or one of its contacts with that e-mail. A booking without a name cannot
disagree.
"""

import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.actions import ActionError
from crm.actions.block_email import ensure_not_blocked, ensure_not_blocked_customer
from crm.actions.guards import live_customer
from crm.models import Booking, Contact, Customer, User
from crm.models.audit import record
from crm.models.base import utcnow
from crm.models.booking import awaiting_review
from crm.validation import normalize_email

# Statuses in which the booking is firm ("locked"): only these create customers.
LOCKED = ("confirmed", "completed")


@dataclass(frozen=True)
class Match:
    """The customer an e-mail leads to, and whether another live customer shares it."""

    customer: Customer | None
    shared: bool = False


def name_key(value: str | None) -> str:
    """A name as compared: without accents, case, spaces or punctuation."""
    text = unicodedata.normalize("NFKD", value or "")
    return "".join(ch for ch in text if ch.isalnum()).casefold()


def names_agree(first: str | None, surname: str | None, people) -> bool:
    """Whether the name given agrees with one of ``people`` ((first, surname) pairs)."""
    if not name_key(surname):
        return True
    given_first = name_key(first)
    for other_first, other_surname in people:
        if name_key(other_surname) != name_key(surname):
            continue
        theirs = name_key(other_first)
        if not given_first or not theirs or given_first[0] == theirs[0]:
            return True
    return False


def match_email(session: Session, email: str | None) -> Match:
    """The live customer ``email`` leads to (following merges), refusing a redacted or
    blocked one with a sentence."""
    email = _normalized(email)
    if email is None:
        return Match(None)
    rows = session.execute(
        select(Customer.id, Customer.merged_into_id).where(Customer.email == email)
        .order_by(Customer.id)
    ).all()
    if not rows:
        return Match(None)
    from crm.actions.merge import live_customer_id

    live_ids = []
    for row in rows:
        live = row.id if row.merged_into_id is None else live_customer_id(session, row.id)
        if live is not None and live not in live_ids:
            live_ids.append(live)
    if not live_ids:
        return Match(None)
    customers = [session.get(Customer, i) for i in live_ids]
    customers.sort(key=lambda c: (c.status == "archived", c.id))
    chosen = customers[0]
    if chosen.redacted_at is not None:
        raise ActionError(f"{chosen.reference} has been redacted: its e-mail address cannot "
                          "be matched to new work.")
    ensure_not_blocked_customer(chosen, what="booking")
    return Match(chosen, shared=len(customers) > 1)


@dataclass(frozen=True)
class Attribution:
    """What ``attribute`` decided: ``exact``, ``related``, ``new`` (a customer was made) or
    ``waiting`` (an unconfirmed booking with no customer yet)."""

    outcome: str
    customer: Customer | None


def ensure_findable(booking: Booking) -> None:
    """A booking belongs to a customer chosen by a person, or names the contact's e-mail it
    can be found by; otherwise it is refused."""
    if booking.customer is None and booking.customer_id is None and not booking.contact_email:
        raise ActionError("Choose the customer, or give the contact's e-mail so the booking "
                          "finds its customer.")


def attribute(session: Session, booking: Booking, *, actor: User | None) -> Attribution:
    """Attach ``booking`` (not attached yet, with a contact e-mail) by its e-mail. It is
    flushed; the caller commits."""
    if booking.customer_id is not None or booking.customer is not None:
        raise ActionError("This booking already belongs to a customer.")
    email = _normalized(booking.contact_email)
    if email is None:
        raise ActionError("Give the booking's contact e-mail, or choose its customer.")
    ensure_not_blocked(session, email, what="booking")
    booking.contact_email = email
    with session.no_autoflush:
        match = match_email(session, email)
    if match.customer is not None:
        customer = match.customer
        agrees = names_agree(booking.contact_first_name, booking.contact_surname,
                             _people(session, customer, email))
        outcome = "exact" if agrees and not match.shared else "related"
        _attach(booking, customer, outcome)
    elif booking.status in LOCKED:
        customer = customer_from_booking(session, booking)
        outcome = "new"
        _attach(booking, customer, "exact")
    else:
        booking.attribution = "manual"
        session.flush()
        return Attribution("waiting", None)
    session.flush()
    record(session, actor=actor, verb="attribute_booking", subject_type="Customer",
           subject_id=customer.id,
           details={"booking": booking.reference, "outcome": outcome})
    return Attribution(outcome, customer)


def customer_from_booking(session: Session, booking: Booking) -> Customer:
    """A new client from the name, e-mail and phone the booking gives."""
    surname = (booking.contact_surname or "").strip()
    if not surname:
        raise ActionError("The booking gives no surname for its contact, and a new customer "
                          "needs a name: give the contact's name, or choose the customer.")
    customer = Customer(kind="client", customer_type="private",
                        first_name=(booking.contact_first_name or "").strip() or None,
                        surname=surname, email=_normalized(booking.contact_email),
                        phone=booking.contact_phone)
    session.add(customer)
    session.flush()
    return customer


def attach_waiting(session: Session, customer: Customer, *, actor: User | None) -> int:
    """Attach the bookings waiting without a customer whose e-mail is ``customer``'s (when
    the customer is created by hand or from a lead). Returns how many; audited on the
    customer."""
    email = _normalized(customer.email)
    if email is None or customer.merged_into_id is not None or customer.redacted_at:
        return 0
    session.flush()
    waiting = session.execute(
        select(Booking).where(Booking.customer_id.is_(None), Booking.contact_email == email)
        .order_by(Booking.id)
    ).scalars().all()
    if not waiting:
        return 0
    people = _people(session, customer, email)
    outcomes = {"exact": 0, "related": 0}
    for booking in waiting:
        agrees = names_agree(booking.contact_first_name, booking.contact_surname, people)
        outcome = "exact" if agrees else "related"
        _attach(booking, customer, outcome)
        outcomes[outcome] += 1
    session.flush()
    record(session, actor=actor, verb="attach_bookings", subject_type="Customer",
           subject_id=customer.id, details={"count": len(waiting), **outcomes})
    return len(waiting)


# -- the review of related bookings -----------------------------------------------------------

def to_review():
    """The related bookings nobody has reviewed yet (a partial index holds exactly these)."""
    return select(Booking).where(awaiting_review())


def confirm_related(session: Session, *, booking_ids, actor: User | None) -> int:
    """Staff agree a related booking belongs where it is. Returns how many were confirmed."""
    bookings = _under_review(session, booking_ids)
    for booking in bookings:
        booking.reviewed_at = utcnow()
        record(session, actor=actor, verb="confirm_booking", subject_type="Customer",
               subject_id=booking.customer_id, details={"booking": booking.reference})
    session.flush()
    return len(bookings)


def detach(session: Session, *, booking_id: int, actor: User | None,
           to_customer_id: int | None = None) -> Customer:
    """Move a related booking away from the customer it was attached to: to another existing
    customer (``to_customer_id``) or, without one, to a new customer made from the name and
    e-mail the booking gives. Returns the customer it now belongs to."""
    (booking,) = _under_review(session, [booking_id])
    before = booking.customer
    if to_customer_id is not None:
        target = live_customer(session, to_customer_id, doing="attach a booking")
        if target.id == booking.customer_id:
            raise ActionError(f"Booking {booking.reference} already belongs to "
                              f"{target.reference}: confirm it instead.")
        ensure_not_blocked_customer(target, what="booking")
    else:
        ensure_not_blocked(session, booking.contact_email, what="customer")
        target = customer_from_booking(session, booking)
    booking.customer = target
    booking.attribution = "manual"
    booking.reviewed_at = utcnow()
    session.flush()
    details = {"booking": booking.reference, "from": before.reference if before else None,
               "to": target.reference, "new_customer": to_customer_id is None}
    for subject in {before.id if before else None, target.id} - {None}:
        record(session, actor=actor, verb="detach_booking", subject_type="Customer",
               subject_id=subject, details=details)
    return target


def reason_related(booking: Booking) -> str:
    """Why a booking was attached as related, as the review list says it."""
    given = " ".join(p for p in (booking.contact_first_name, booking.contact_surname) if p)
    customer = booking.customer
    if customer is None:
        return ""
    if given and name_key(booking.contact_surname) and not names_agree(
            booking.contact_first_name, booking.contact_surname,
            [(customer.first_name, customer.surname)]):
        return f"Booked as {given}; the customer with that e-mail is {customer.display_name}."
    return "Another customer has the same e-mail address."


# -- helpers ----------------------------------------------------------------------------------

def _normalized(email: str | None) -> str | None:
    try:
        return normalize_email(email)
    except ValueError as exc:
        raise ActionError(str(exc)) from None


def _people(session: Session, customer: Customer, email: str) -> list[tuple]:
    people = [(customer.first_name, customer.surname), (None, customer.company_name)]
    people += session.execute(
        select(Contact.first_name, Contact.surname)
        .where(Contact.customer_id == customer.id, Contact.email == email)
    ).all()
    return people


def _attach(booking: Booking, customer: Customer, attribution: str) -> None:
    booking.customer = customer
    booking.customer_id = customer.id
    booking.attribution = attribution
    booking.reviewed_at = None


def _under_review(session: Session, booking_ids) -> list[Booking]:
    ids = sorted({int(i) for i in booking_ids or ()})
    if not ids:
        raise ActionError("Choose at least one booking to review.")
    found = session.execute(to_review().where(Booking.id.in_(ids))).scalars().all()
    if len(found) != len(ids):
        raise ActionError("Some of those bookings are no longer waiting for review; "
                          "the list has been refreshed.")
    return found


__all__ = ["LOCKED", "Attribution", "Match", "attach_waiting", "attribute", "confirm_related",
           "ensure_findable",
           "customer_from_booking", "detach", "match_email", "names_agree", "reason_related",
           "to_review"]
