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
    LedgerDay,
    LedgerTotal,
    Payment,
)
from crm.models.job import ImportMapping, Job, JobItem
from crm.models.merge import CustomerMerge, CustomerMergeMove
from crm.models.property import ServiceReminder, WorkAddress
from crm.models.sequence import DocumentSequence
from crm.models.settings import BusinessProfile, ListPreference, SavedFilter, StoredCount

__all__ = [
    "ROLES",
    "Allocation",
    "AuditEvent",
    "Base",
    "BlockedEmail",
    "BusinessProfile",
    "Booking",
    "Branch",
    "Contact",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "CustomerMerge",
    "CustomerMergeMove",
    "DocumentSequence",
    "ImportMapping",
    "Invoice",
    "InvoiceLine",
    "Job",
    "JobItem",
    "Lead",
    "LedgerDay",
    "LedgerTotal",
    "ListPreference",
    "Note",
    "Payment",
    "PortalAccount",
    "PortalSession",
    "PortalToken",
    "SavedFilter",
    "SentMessage",
    "ServiceReminder",
    "StaffSession",
    "StoredCount",
    "Tag",
    "User",
    "WorkAddress",
    "customer_tag",
]
