"""Work a lead through the pipeline and convert it into a customer (with a booking).

Stages: new -> contacted -> quoted, then won or lost. The open stages move freely forward
and back; *lost* needs a reason; a lost lead can be reopened; *won* is reached only by
converting (a won lead has its customer, and its booking when there was one).

Converting reuses the customer whose e-mail matches (``crm.actions.attribution``: following
a merged-away record to its survivor, refusing a redacted or blocked one) or creates one;
adds the lead's person as the primary contact when the customer has none; creates the booking
from the lead (title, preferred date, e-mail, name); links lead, customer and booking; and
marks the lead won. *Convert to prospect* does the same without a booking, for people to
market to later. One audit event per lead, on the customer, so the customer's timeline says
when and who.

Two open leads with one e-mail (the person asked twice): the first conversion creates the
customer, the second finds it by e-mail and adds its booking there. Each lead says so
before: ``open_duplicates`` flags an open lead that shares its e-mail with another open one.
"""

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult, Skip
from crm.actions.attribution import match_email, name_key, names_agree
from crm.actions.block_email import ensure_not_blocked
from crm.models import Booking, Contact, Customer, Lead, User
from crm.models.audit import record
from crm.models.booking import LEAD_STATUSES, OPEN_LEAD_STATUSES, open_lead
from crm.models.sequence import next_number

LOST_REASON_MAX = 200
# A booking made from a lead starts at this hour of its preferred day unless told otherwise.
DEFAULT_START = time(9, 0)
STAGE_LABELS = {"new": "New", "contacted": "Contacted", "quoted": "Quoted", "won": "Won",
                "lost": "Lost"}


def move(session: Session, *, lead_ids, stage: str, actor: User | None,
         lost_reason: str | None = None) -> ActionResult:
    """Move leads to ``stage`` (an open stage, or lost with a reason). Leads already there,
    and won ones, are skipped with the reason."""
    if stage not in LEAD_STATUSES:
        raise ActionError("Choose a stage: new, contacted, quoted or lost.")
    if stage == "won":
        raise ActionError("A lead is won by converting it: use Convert.")
    reason = (lost_reason or "").strip()
    if stage == "lost":
        if not reason:
            raise ActionError("Say why the lead was lost (too expensive, date taken, ...).")
        if len(reason) > LOST_REASON_MAX:
            raise ActionError(f"Keep the reason to {LOST_REASON_MAX} characters or fewer.")
    leads = _leads(session, lead_ids)
    changed, skipped = [], []
    for lead in leads:
        if lead.status == "won":
            skipped.append(Skip(_label(lead), "already converted"))
            continue
        if lead.status == stage:
            skipped.append(Skip(_label(lead), f"already {STAGE_LABELS[stage].lower()}"))
            continue
        before = lead.status
        lead.status = stage
        lead.lost_reason = reason if stage == "lost" else None
        record(session, actor=actor, verb="move_lead", subject_type="Lead", subject_id=lead.id,
               details={"from": before, "to": stage})
        changed.append(lead)
    session.flush()
    message = (f"Moved {_leads_count(len(changed))} to {STAGE_LABELS[stage].lower()}."
               if changed else "Nothing to move.")
    return ActionResult(verb="move_lead", changed=len(changed),
                        changed_refs=tuple(_label(lead) for lead in changed),
                        skipped=tuple(skipped), skipped_count=len(skipped), message=message)


@dataclass(frozen=True)
class BookingDetails:
    """What the booking made by a conversion says; anything left empty comes from the lead
    (title: what it is for; start: the preferred date at 9:00)."""

    title: str | None = None
    starts_at: datetime | None = None
    status: str = "confirmed"


def convert(session: Session, *, lead_ids, actor: User | None, with_booking: bool = True,
            booking: BookingDetails | None = None) -> ActionResult:
    """Convert leads: each to a customer (found by e-mail or made) and, ``with_booking``, a
    booking. A lead that cannot be converted is skipped with the reason; the others go on."""
    leads = _leads(session, lead_ids)
    booking = booking or BookingDetails()
    changed, skipped, customers = [], [], []
    for lead in leads:
        try:  # every refusal comes before the first write, so a skip leaves nothing behind
            customer, made = _convert_one(session, lead, actor=actor,
                                          with_booking=with_booking, details=booking)
        except ActionError as exc:
            skipped.append(Skip(_label(lead), str(exc)))
            continue
        changed.append(lead)
        customers.append((customer, made))
    session.flush()
    made = sum(1 for _, new in customers if new)
    noun = "client" if with_booking else "prospect"
    if changed:
        message = (f"Converted {_leads_count(len(changed))}: {made} new "
                   f"{noun}{'' if made == 1 else 's'}, {len(changed) - made} matched by e-mail"
                   + (", each with a booking." if with_booking else "."))
    else:
        message = "Nothing was converted."
    return ActionResult(
        verb="convert_lead" if with_booking else "convert_lead_prospect",
        changed=len(changed),
        changed_refs=tuple(c.reference for c, _ in customers),
        skipped=tuple(skipped), skipped_count=len(skipped), message=message,
        details={"customer_ids": [c.id for c, _ in customers]},
    )


def default_start(lead: Lead) -> datetime | None:
    """When a booking made from ``lead`` starts unless told: its preferred day at 9:00."""
    if lead.preferred_date is None:
        return None
    return datetime.combine(lead.preferred_date, DEFAULT_START)


def check_edit(lead: Lead, *, is_created: bool) -> None:
    """The pipeline's rules for a lead saved from its form: lost needs a reason (≤ 200
    characters), won is reached only by converting; a lead that is not lost keeps no
    reason."""
    from sqlalchemy import inspect

    changed = is_created or inspect(lead).attrs["status"].history.has_changes()
    reason = (lead.lost_reason or "").strip()
    if lead.status == "lost" and not reason:
        raise ActionError("Say why the lead was lost (too expensive, date taken, ...).")
    if len(reason) > LOST_REASON_MAX:
        raise ActionError(f"Keep the reason to {LOST_REASON_MAX} characters or fewer.")
    if changed and lead.status == "won":
        raise ActionError("A lead is won by converting it: save it, then use Convert.")
    lead.lost_reason = reason if lead.status == "lost" else None


def other_open_leads(session: Session, lead: Lead, limit: int = 10) -> list[Lead]:
    """The other open leads with ``lead``'s e-mail (the lead's page names them), through the
    lead e-mail index."""
    if not lead.email or lead.status not in OPEN_LEAD_STATUSES:
        return []
    return session.scalars(select(Lead).where(
        Lead.email == lead.email, Lead.id != lead.id, Lead.status.in_(OPEN_LEAD_STATUSES))
        .order_by(Lead.id).limit(limit)).all()


def open_duplicates(session: Session, leads) -> dict[int, int]:
    """For each open lead among ``leads``: how many other open leads share its e-mail (only
    those with at least one). One statement, through the lead e-mail index."""
    emails = {lead.email for lead in leads if lead.email and lead.status in OPEN_LEAD_STATUSES}
    if not emails:
        return {}
    counts = dict(session.execute(
        select(Lead.email, func.count()).where(Lead.email.in_(emails),
                                               Lead.status.in_(OPEN_LEAD_STATUSES))
        .group_by(Lead.email)
    ).all())
    return {lead.id: counts[lead.email] - 1 for lead in leads
            if lead.status in OPEN_LEAD_STATUSES and counts.get(lead.email, 0) > 1}


# -- one conversion -------------------------------------------------------------------------

def _convert_one(session: Session, lead: Lead, *, actor, with_booking: bool,
                 details: BookingDetails) -> tuple[Customer, bool]:
    if lead.status == "won":
        raise ActionError("already converted")
    if lead.status == "lost":
        raise ActionError("lost: reopen it before converting")
    if not (lead.surname or "").strip():
        raise ActionError("it has no surname")
    ensure_not_blocked(session, lead.email, what="customer")
    starts_at = details.starts_at or default_start(lead)
    if with_booking and starts_at is None:
        raise ActionError("no preferred date: convert it on its own and give the date")
    with session.no_autoflush:
        match = match_email(session, lead.email)
    customer, made = match.customer, match.customer is None
    if customer is None:
        customer = Customer(
            kind="client" if with_booking else "prospect", customer_type="private",
            first_name=lead.first_name, surname=lead.surname, company_name=lead.company_name,
            email=lead.email, phone=lead.phone, advertising_source=lead.source,
        )
        session.add(customer)
        session.flush()
    elif with_booking and customer.kind != "client":
        customer.kind = "client"  # a booking makes a client of a lead or a prospect
    # Compared before the lead's person may become the customer's primary contact.
    agrees = made or names_agree(lead.first_name, lead.surname,
                                 [(customer.first_name, customer.surname),
                                  (None, customer.company_name)]
                                 + _contacts_named(session, customer, lead.email))
    contact_added = _add_primary_contact(session, customer, lead)
    booking = None
    if with_booking:
        booking = Booking(
            reference=next_number(session, "booking"), customer=customer, lead=lead,
            title=(details.title or lead.purpose or f"{lead.surname} inquiry")[:200],
            status=details.status, starts_at=starts_at, contact_email=lead.email,
            contact_first_name=lead.first_name, contact_surname=lead.surname,
            contact_phone=lead.phone,
            attribution="exact" if agrees and not match.shared else "related",
        )
        session.add(booking)
    lead.customer = customer
    lead.status = "won"
    lead.lost_reason = None
    session.flush()
    record(session, actor=actor, verb="convert_lead", subject_type="Customer",
           subject_id=customer.id,
           details={"lead": lead.id, "new_customer": made, "contact_added": contact_added,
                    "booking": booking.reference if booking else None,
                    "attribution": booking.attribution if booking else None})
    return customer, made


def _add_primary_contact(session: Session, customer: Customer, lead: Lead) -> bool:
    has_primary = session.execute(
        select(Contact.id).where(Contact.customer_id == customer.id, Contact.is_primary)
    ).first()
    if has_primary:
        return False
    session.add(Contact(customer_id=customer.id, is_primary=True, first_name=lead.first_name,
                        surname=lead.surname, email=lead.email, phone=lead.phone))
    return True


def _contacts_named(session: Session, customer: Customer, email: str | None) -> list[tuple]:
    if not email:
        return []
    return session.execute(select(Contact.first_name, Contact.surname).where(
        Contact.customer_id == customer.id, Contact.email == email)).all()


def _leads(session: Session, lead_ids) -> list[Lead]:
    try:
        ids = sorted({int(i) for i in lead_ids or ()})
    except (TypeError, ValueError):
        raise ActionError("Those are not leads.") from None
    if not ids:
        raise ActionError("Choose at least one lead.")
    leads = session.execute(select(Lead).where(Lead.id.in_(ids)).order_by(Lead.id)).scalars().all()
    if len(leads) != len(ids):
        raise ActionError("Some of those leads no longer exist; reload the page.")
    return leads


def _label(lead: Lead) -> str:
    return str(lead) or f"lead #{lead.id}"


def _leads_count(n: int) -> str:
    return f"{n} lead{'' if n == 1 else 's'}"


def follow_ups_due(today: date):
    """Open leads whose follow-up date has come (the board's top row), oldest first."""
    # Told which index to read: without statistics SQLite would take the stage index and
    # sort every open lead (PostgreSQL picks the partial index itself).
    return (select(Lead).where(open_lead(), Lead.follow_up_on <= today)
            .order_by(Lead.follow_up_on, Lead.id)
            .with_hint(Lead, "INDEXED BY ix_lead_open_follow_up_on", "sqlite"))


__all__ = ["BookingDetails", "STAGE_LABELS", "check_edit", "convert", "default_start",
           "follow_ups_due", "move", "name_key", "open_duplicates", "other_open_leads"]
