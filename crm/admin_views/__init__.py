"""The admin panel: every screen is built once per staff role (``/admin/<role>/<slug>/``),
from the table of contents below."""

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from crm.admin_views.access import role_pages
from crm.admin_views.business import BusinessView
from crm.admin_views.credit_notes import CreditNoteView
from crm.admin_views.customers import BranchView, ContactView, CustomerView, TagView
from crm.admin_views.dashboard import HomeView
from crm.admin_views.duplicates import DuplicatesView
from crm.admin_views.imports import ImportsView
from crm.admin_views.invoices import InvoiceView
from crm.admin_views.jobs import JobsView
from crm.admin_views.leads import LeadsBoardView, LeadView, RelatedBookingsView
from crm.admin_views.outbox import OutboxView
from crm.admin_views.payments import AllocationView, PaymentView
from crm.admin_views.portal import PortalAccountView, PortalQueryView
from crm.admin_views.reminders import DueReminderView, ServiceReminderView
from crm.admin_views.settings import AuditEventView, BlockedEmailView, UserView
from crm.admin_views.spec import CrmModelView, role_views
from crm.admin_views.work import (
    BookingView,
    NoteView,
    WorkAddressView,
)

# (view or page, menu name, menu category, url slug): the panel's whole table of contents,
# in menu order. Who gets each is the view's own ``capability`` (crm.permissions).
REGISTRY = (
    (CustomerView, "Customers", "Customers", "customer"),
    (ContactView, "Contacts", "Customers", "contact"),
    (BranchView, "Branches", "Customers", "branch"),
    (TagView, "Tags", "Customers", "tag"),
    (DuplicatesView, "Possible duplicates", "Customers", "duplicates"),
    (ImportsView, "Import", "Customers", "imports"),
    (LeadsBoardView, "Leads board", "Work", "leads_board"),
    (LeadView, "Leads", "Work", "lead"),
    (BookingView, "Bookings", "Work", "booking"),
    (RelatedBookingsView, "Related bookings to review", "Work", "related_bookings"),
    (WorkAddressView, "Work addresses", "Work", "work_address"),
    (ServiceReminderView, "Service reminders", "Work", "service_reminder"),
    (DueReminderView, "Due reminders", "Work", "due_reminder"),
    (NoteView, "Notes", "Work", "note"),
    (InvoiceView, "Invoices", "Money", "invoice"),
    (CreditNoteView, "Credit notes", "Money", "credit_note"),
    (PaymentView, "Payments", "Money", "payment"),
    (AllocationView, "Allocations", "Money", "allocation"),
    (PortalQueryView, "Portal queries", "Money", "portal_query"),
    (BusinessView, "Business", "Settings", "business"),
    (BlockedEmailView, "Blocked e-mails", "Settings", "blocked_email"),
    (UserView, "Staff users", "Settings", "user"),
    (PortalAccountView, "Portal accounts", "Settings", "portal_account"),
    (AuditEventView, "Audit log", "Settings", "audit_event"),
    (OutboxView, "Outbox", "Settings", "outbox"),
    (JobsView, "Jobs", "Settings", "jobs"),
)

# The model views among them (the rest are pages: possible duplicates, the outbox).
MODEL_VIEWS = tuple(entry for entry in REGISTRY if issubclass(entry[0], CrmModelView))


def build_views(screen, *, name: str, category: str, slug: str) -> list:
    """The per-role instances of one entry of ``REGISTRY``."""
    make = role_views if issubclass(screen, CrmModelView) else role_pages
    return make(screen, name=name, category=category, slug=slug)


def init_admin(app: Flask) -> Admin:
    admin = Admin(
        app,
        name="CRM",
        theme=Bootstrap4Theme(swatch="cerulean", fluid=True),
        index_view=HomeView(url="/admin"),
    )
    slugs: dict[str, set[str]] = {}
    for screen, name, category, slug in REGISTRY:
        for view in build_views(screen, name=name, category=category, slug=slug):
            admin.add_view(view)
            if view.can(view.capability):
                slugs.setdefault(view.role, set()).add(slug)
    app.extensions["crm_role_slugs"] = slugs
    return admin
