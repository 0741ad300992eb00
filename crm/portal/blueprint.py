"""The portal's blueprint and who is looking. The customer portal (``/portal/``): a customer
signs in and sees their statement,
documents, payments and bookings, asks about an invoice, keeps their details and downloads
their data. Staff may view it as a customer, read-only.

Who is looking is settled before every portal request (``_identify``):

- a **customer**: the portal's own cookie (``crm_portal``, signed, HttpOnly) names a server-side
  session (``crm.actions.portal_access``); it is not the staff session, so signing out of
  one leaves the other alone, and a portal session never opens ``/admin/``;
- a **staff member viewing as the customer**: an owner or admin started it from the
  customer's record page (audited); every POST but "stop viewing" is refused.

Every read goes through ``crm.portal_scope.CustomerScope`` for that customer, so another
customer's id answers 404 exactly as a missing one does. The portal never imports the
admin's views; what both need lives below them (statements, documents, actions).
"""

from datetime import date

from flask import Blueprint, abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer

from crm.actions.portal_access import signed_in
from crm.extensions import db
from crm.models import Customer, PortalAccount
from crm.permissions import can
from crm.portal_links import VIEW_AS
from crm.portal_scope import CustomerScope

bp = Blueprint("portal", __name__, url_prefix="/portal")

COOKIE = "crm_portal"
# Pages anyone may open (signing in, the e-mailed links, signing out).
PUBLIC = {"portal.login", "portal.request_link", "portal.forgot", "portal.access",
          "portal.set_password", "portal.confirm_email", "portal.logout"}
# Pages reached by a link with a token: no Referer may carry it anywhere.
TOKEN_PAGES = {"portal.access", "portal.set_password", "portal.confirm_email"}


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="crm-portal-session")


def cookie_token() -> str | None:
    """The session token in the portal's cookie, if its signature holds."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 500:
        return None
    try:
        token = _serializer().loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def set_cookie(response, token: str, *, remember: bool) -> None:
    response.set_cookie(
        COOKIE, _serializer().dumps(token), httponly=True, samesite="Lax",
        secure=current_app.config["CRM_ENV"] == "production", path="/portal",
        max_age=30 * 24 * 3600 if remember else None,
    )


def clear_cookie(response) -> None:
    response.delete_cookie(COOKIE, path="/portal", httponly=True, samesite="Lax",
                           secure=current_app.config["CRM_ENV"] == "production")


@bp.before_request
def _identify():
    g.portal_customer = g.portal_account = g.viewer = None
    g.read_only = False
    found = signed_in(db.session, cookie_token())
    if found is not None:
        g.portal_account, g.portal_customer = found
    elif VIEW_AS in session and current_user.is_authenticated \
            and can(current_user.role, "view_as_customer"):
        customer = db.session.get(Customer, session[VIEW_AS])
        if customer is not None and customer.merged_into_id is None:
            g.portal_customer, g.viewer, g.read_only = customer, current_user, True
            g.portal_account = db.session.query(PortalAccount).filter_by(
                customer_id=customer.id).one_or_none()
    if request.endpoint in PUBLIC:
        return None
    if g.portal_customer is None:
        return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
    if g.read_only and request.method == "POST" and request.endpoint != "portal.stop_viewing":
        abort(403, "You are viewing the portal as the customer: nothing can be changed here.")
    g.scope = CustomerScope(db.session, g.portal_customer)
    return None


@bp.after_request
def _private(response):
    # A customer's own figures: never kept by a shared cache or the browser's back button.
    response.headers["Cache-Control"] = "no-store"
    if request.endpoint in TOKEN_PAGES:
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.app_context_processor
def _portal_context():
    return {"business_name": current_app.config["CRM_BUSINESS_NAME"]}


@bp.context_processor
def _pages_context():
    def document_url(line) -> str | None:
        """Where a statement's line opens in the portal (a payment has no page of its own)."""
        if line.kind == "invoice":
            return url_for("portal.invoice", invoice_id=line.id)
        if line.kind == "credit_note":
            return url_for("portal.credit_note", note_id=line.id)
        return None

    return {"today": date.today(), "portal_document_url": document_url}
