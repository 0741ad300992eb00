"""The admin panel: every view is registered once per role (see base.role_views)."""

from flask import Flask, redirect, request, url_for
from flask_admin import Admin, AdminIndexView, expose
from flask_admin.theme import Bootstrap4Theme
from flask_login import current_user

from crm.admin_views.base import FINANCE, role_views
from crm.admin_views.credit_notes import CreditNoteView
from crm.admin_views.customers import BranchView, ContactView, CustomerView, TagView
from crm.admin_views.duplicates import duplicates_views
from crm.admin_views.invoices import InvoiceView
from crm.admin_views.outbox import outbox_views
from crm.admin_views.payments import AllocationView, PaymentView
from crm.admin_views.settings import AuditEventView, BlockedEmailView, PortalAccountView, UserView
from crm.admin_views.work import (
    BookingView,
    DueReminderView,
    LeadView,
    NoteView,
    ServiceReminderView,
    WorkAddressView,
)

CustomerView.delete_roles = FINANCE

# (spec, menu name, menu category, url slug) — the panel's whole table of contents.
REGISTRY = (
    (CustomerView, "Customers", "Customers", "customer"),
    (ContactView, "Contacts", "Customers", "contact"),
    (BranchView, "Branches", "Customers", "branch"),
    (TagView, "Tags", "Customers", "tag"),
    (LeadView, "Leads", "Work", "lead"),
    (BookingView, "Bookings", "Work", "booking"),
    (WorkAddressView, "Work addresses", "Work", "work_address"),
    (ServiceReminderView, "Service reminders", "Work", "service_reminder"),
    (DueReminderView, "Due reminders", "Work", "due_reminder"),
    (NoteView, "Notes", "Work", "note"),
    (InvoiceView, "Invoices", "Money", "invoice"),
    (CreditNoteView, "Credit notes", "Money", "credit_note"),
    (PaymentView, "Payments", "Money", "payment"),
    (AllocationView, "Allocations", "Money", "allocation"),
    (BlockedEmailView, "Blocked e-mails", "Settings", "blocked_email"),
    (UserView, "Staff users", "Settings", "user"),
    (PortalAccountView, "Portal accounts", "Settings", "portal_account"),
    (AuditEventView, "Audit log", "Settings", "audit_event"),
)


class HomeView(AdminIndexView):
    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return self.render("admin/index.html")


def init_admin(app: Flask) -> Admin:
    admin = Admin(
        app,
        name="CRM",
        theme=Bootstrap4Theme(swatch="cerulean", fluid=True),
        index_view=HomeView(url="/admin"),
    )
    slugs: dict[str, set[str]] = {}
    for spec, name, category, slug in REGISTRY:
        for view in role_views(spec, name=name, category=category, slug=slug):
            admin.add_view(view)
            slugs.setdefault(view.role, set()).add(slug)
    for view in duplicates_views():
        admin.add_view(view)
    for view in outbox_views():
        admin.add_view(view)
    app.extensions["crm_role_slugs"] = slugs
    return admin
