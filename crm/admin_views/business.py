"""Settings > Business: the business's identity as customers see it on documents and
e-mails (``crm.actions.business_profile`` checks and saves it; ``crm.business`` reads it).

A page of its own rather than a model form: one row, a logo upload checked by its content,
and fields that explain where each is printed. Owners and admins only (``manage_business``);
one instance per role like every screen, so a coordinator gets 403. The logo is served to
signed-in staff at a URL carrying its version, so a browser may keep it for good.
"""

from flask import Response, abort, current_app, flash, redirect, request
from flask_admin import expose

from crm.actions.business_profile import BusinessDetails, FieldErrors, save_business_profile
from crm.admin_views.access import RolePage
from crm.admin_views.adapters import run_action
from crm.business import identity, logo_content
from crm.extensions import db
from crm.models.settings import LOGO_MAX_BYTES, BusinessProfile

FIELDS = tuple(BusinessDetails.__dataclass_fields__)


class BusinessView(RolePage):
    capability = "manage_business"

    @expose("/", methods=("GET", "POST"))
    def index(self):
        if request.method == "POST":
            return self._save()
        return self._page(_values_of(db.session.get(BusinessProfile, 1)), errors={})

    @expose("/logo/")
    def logo_view(self):
        """The logo; ``?v=`` names its version (a new logo, a new URL)."""
        found = logo_content(db.session)
        if found is None:
            abort(404)
        content, mime = found
        current = identity(db.session).logo_stamp
        response = Response(content, mimetype=mime)
        response.headers["Cache-Control"] = ("private, max-age=31536000, immutable"
                                             if request.args.get("v") == current
                                             else "private, no-cache")
        return response

    def _save(self):
        form = request.form
        details = BusinessDetails(**{name: form.get(name, "") for name in FIELDS})
        upload = request.files.get("logo")
        logo = upload.read(LOGO_MAX_BYTES + 1) if upload is not None and upload.filename else None
        refused: dict[str, str] = {}

        def attempt(session, **kwargs):
            try:
                return save_business_profile(session, **kwargs)
            except FieldErrors as exc:  # the sentences by field, for the form
                refused.update(exc.errors)
                raise

        result, error = run_action(
            attempt, details=details, version=_version(form.get("version")),
            logo=logo, remove_logo=form.get("remove_logo") == "1",
            region=current_app.config["CRM_DEFAULT_REGION"],
        )
        if error is None:
            flash(result.message, "success" if result.changed else "info")
            return redirect(self.get_url(".index"))
        errors = refused
        if not errors:
            # Stale (or a database refusal): show what is saved now, with the sentence.
            flash(error, "error")
            return self._page(_values_of(db.session.get(BusinessProfile, 1)), errors={},
                              status=409)
        if logo:
            errors.setdefault("logo", "Nothing was saved: choose the logo file again.")
        values = {name: form.get(name, "") for name in FIELDS}
        values["version"] = form.get("version", "")
        flash(error, "error")
        return self._page(values, errors=errors, status=400)

    def _page(self, values: dict, *, errors: dict, status: int = 200):
        business = identity(db.session)
        return self.render(
            "admin/business/index.html", values=values, errors=errors, business=business,
            saved=business.version is not None, fallback_sender=current_app.config["MAIL_FROM"],
            logo_max_kb=LOGO_MAX_BYTES // 1024,
        ), status


def _version(value) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _values_of(profile: BusinessProfile | None) -> dict:
    """The form's values: what is saved, or the defaults of a first save."""
    if profile is None:
        values = {name: "" for name in FIELDS}
        values.update(name=current_app.config["CRM_BUSINESS_NAME"], payment_terms_days="30",
                      version="0")
        return values
    values = {name: getattr(profile, name) or "" for name in FIELDS}
    values["payment_terms_days"] = str(profile.payment_terms_days)
    values["version"] = str(profile.version)
    return values
