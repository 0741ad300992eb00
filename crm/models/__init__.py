"""All models, importable from one place (Alembic and the admin read the metadata here)."""

from crm.models.access import (
    ROLES,
    PortalAccount,
    PortalSession,
    PortalToken,
    StaffSession,
    User,
)
from crm.models.audit import AuditEvent
from crm.models.base import Base
from crm.models.booking import Booking, Lead
from crm.models.comms import BlockedEmail, Note, SentMessage
from crm.models.customer import Branch, Contact, Customer, Tag, customer_tag
from crm.models.finance import (
    Allocation,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    Payment,
)
from crm.models.merge import CustomerMerge, CustomerMergeMove
from crm.models.property import ServiceReminder, WorkAddress
from crm.models.sequence import DocumentSequence

__all__ = [
    "ROLES",
    "Allocation",
    "AuditEvent",
    "Base",
    "BlockedEmail",
    "Booking",
    "Branch",
    "Contact",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "CustomerMerge",
    "CustomerMergeMove",
    "DocumentSequence",
    "Invoice",
    "InvoiceLine",
    "Lead",
    "Note",
    "Payment",
    "PortalAccount",
    "PortalSession",
    "PortalToken",
    "SentMessage",
    "ServiceReminder",
    "StaffSession",
    "Tag",
    "User",
    "WorkAddress",
    "customer_tag",
]
