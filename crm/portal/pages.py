"""The customer's pages: the statement (home), invoices and credit notes with their PDFs,
payments, bookings, a question about an invoice, details and preferences, the password and
sign-in e-mail, and "download my data". Every read goes through ``g.scope`` (the signed-in
customer's ``CustomerScope``); what is not theirs is a 404 like what does not exist."""

import tempfile
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from sqlalchemy.orm.exc import StaleDataError
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from crm import mail
from crm.actions import ActionError
from crm.actions.data_export import export_customer_data
from crm.actions.portal_access import MIN_PASSWORD, change_password, request_email_change
from crm.actions.portal_profile import (
    STALE,
    Details,
    FieldErrors,
    set_preferences,
    update_details,
)
from crm.actions.portal_queries import MAX_QUESTION, ask_about_invoice
from crm.documents import (
    credit_note_pdf,
    document_filename,
    invoice_pdf,
    statement_filename,
    statement_pdf,
)
from crm.extensions import db, limiter
from crm.formatting import DATE_EXAMPLE, parse_day
from crm.portal.blueprint import bp, cookie_token
from crm.portal_links import VIEW_AS, link_maker
from crm.statements import StatementError


def _page_arg() -> int:
    value = request.args.get("page", "0")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 7 else 0


def _date_arg(name: str) -> date | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return parse_day(value[:40])
    except ValueError:
        label = {"start": "From", "end": "To"}.get(name, name)
        raise StatementError(f"{label}: type a date like {DATE_EXAMPLE}.") from None


def _statement_options() -> dict:
    """Outstanding now (the default), or activity for a period: by default the last three
    months, which is never empty early in a month as month-to-date would be."""
    kind = request.args.get("kind") or "outstanding"
    if kind == "activity":
        end = _date_arg("end") or date.today()
        start = _date_arg("start") or (end - timedelta(days=91)).replace(day=1)
        return {"kind": "activity", "start": start, "end": end}
    return {"kind": "outstanding"}


def _pdf(content: bytes, name: str):
    return send_file(BytesIO(content), mimetype="application/pdf", as_attachment=True,
                     download_name=name)


# --- the statement ----------------------------------------------------------------------

@bp.get("/")
def home():
    error, statement = None, None
    try:
        options = _statement_options()
        statement = g.scope.statement(**options)
    except StatementError as exc:
        error, options = str(exc), {"kind": "activity"}
    return render_template("portal/home.html", statement=statement, options=options,
                           error=error, chart=_aging_chart(statement) if statement else None,
                           active="home"), (400 if error else 200)


@bp.get("/statement.pdf")
def statement_download():
    try:
        statement = g.scope.statement(**_statement_options())
    except StatementError as exc:
        abort(400, str(exc))
    return _pdf(statement_pdf(statement), statement_filename(statement))


def _aging_chart(statement) -> list[dict]:
    """The aging buckets as bars (width in per cent of the largest), for an SVG drawn on
    the server: no script."""
    largest = max((amount for _, amount in statement.aging), default=Decimal(0))
    return [{"label": label, "amount": amount,
             "width": float(amount / largest * 100) if largest > 0 else 0.0,
             "overdue": index > 0}
            for index, (label, amount) in enumerate(statement.aging)]


# --- documents --------------------------------------------------------------------------

@bp.get("/invoices")
def invoices():
    return render_template("portal/invoices.html", listed=g.scope.invoices(_page_arg()),
                           active="documents")


class QuestionForm(FlaskForm):
    message = TextAreaField("Your question", validators=[
        DataRequired("Write your question."), Length(max=MAX_QUESTION)])


def _invoice_or_404(invoice_id: int):
    invoice = g.scope.invoice(invoice_id)
    if invoice is None:
        abort(404)
    return invoice


@bp.get("/invoices/<int(max=2147483647):invoice_id>")
def invoice(invoice_id: int):
    found = _invoice_or_404(invoice_id)
    return render_template("portal/invoice.html", invoice=found,
                           applied=g.scope.applied_to(found),
                           questions=g.scope.questions(found), form=QuestionForm(),
                           active="documents")


@bp.get("/invoices/<int(max=2147483647):invoice_id>.pdf")
def invoice_download(invoice_id: int):
    found = _invoice_or_404(invoice_id)
    return _pdf(invoice_pdf(found), document_filename(found))


def _per_session(what: str):
    """A rate-limit key per signed-in session (the limits are checked before the portal
    knows who is signed in)."""
    return lambda: f"portal-{what}:{cookie_token() or request.remote_addr}"


@bp.post("/invoices/<int(max=2147483647):invoice_id>/question")
@limiter.limit("10/hour", key_func=_per_session("question"),
               error_message="That is many questions in a short time; we will answer those "
                             "first. Try again later.")
def ask(invoice_id: int):
    found = _invoice_or_404(invoice_id)
    form = QuestionForm()
    if form.validate_on_submit():
        try:
            result = ask_about_invoice(db.session, customer_id=g.portal_customer.id,
                                       invoice_id=found.id, message=form.message.data)
            db.session.commit()
        except ActionError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            flash(result.message, "success")
            return redirect(url_for("portal.invoice", invoice_id=found.id) + "#questions")
    return render_template("portal/invoice.html", invoice=found,
                           applied=g.scope.applied_to(found),
                           questions=g.scope.questions(found), form=form,
                           active="documents"), 400


@bp.get("/credit-notes")
def credit_notes():
    return render_template("portal/credit_notes.html",
                           listed=g.scope.credit_notes(_page_arg()), active="documents")


def _credit_note_or_404(note_id: int):
    note = g.scope.credit_note(note_id)
    if note is None:
        abort(404)
    return note


@bp.get("/credit-notes/<int(max=2147483647):note_id>")
def credit_note(note_id: int):
    return render_template("portal/credit_note.html", note=_credit_note_or_404(note_id),
                           active="documents")


@bp.get("/credit-notes/<int(max=2147483647):note_id>.pdf")
def credit_note_download(note_id: int):
    note = _credit_note_or_404(note_id)
    return _pdf(credit_note_pdf(note), document_filename(note))


@bp.get("/payments")
def payments():
    listed, paid = g.scope.payments(_page_arg())
    return render_template("portal/payments.html", listed=listed, paid=paid,
                           active="payments")


@bp.get("/bookings")
def bookings():
    upcoming, past = g.scope.bookings()
    return render_template("portal/bookings.html", upcoming=upcoming, past=past,
                           active="bookings")


# --- details, preferences, password, e-mail ---------------------------------------------

class DetailsForm(FlaskForm):
    version = HiddenField()
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    address_line_1 = StringField("Address", validators=[Length(max=200)])
    address_line_2 = StringField("Address line 2", validators=[Optional(), Length(max=200)])
    town = StringField("Town", validators=[Optional(), Length(max=100)])
    county = StringField("County", validators=[Optional(), Length(max=100)])
    postcode = StringField("Postcode", validators=[Length(max=12)])


class PreferencesForm(FlaskForm):
    wants_statements = BooleanField("Statements of account by e-mail")
    wants_reminders = BooleanField("Service reminders")
    wants_marketing = BooleanField("News and offers")


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=1024)])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)],
                             description=f"At least {MIN_PASSWORD} characters; a few unusual "
                                         "words make a strong one.")
    confirm = PasswordField("The same again",
                            validators=[DataRequired(), EqualTo("password", "The two differ.")])


class EmailChangeForm(FlaskForm):
    email = EmailField("New sign-in e-mail", validators=[DataRequired(), Length(max=254)])


def _profile(status: int = 200, **forms):
    customer = g.portal_customer
    forms.setdefault("details", DetailsForm(formdata=None, obj=customer,
                                            version=str(customer.version)))
    forms.setdefault("preferences", PreferencesForm(formdata=None, obj=customer))
    forms.setdefault("password", PasswordForm(formdata=None))
    forms.setdefault("email", EmailChangeForm(formdata=None))
    return render_template("portal/profile.html", forms=forms, active="profile"), status


@bp.get("/profile")
def profile():
    return _profile()


@bp.post("/profile/details")
def save_details():
    form = DetailsForm()
    if not form.validate_on_submit():
        return _profile(400, details=form)
    version = form.version.data
    try:
        result = update_details(
            db.session, customer_id=g.portal_customer.id,
            details=Details(**{name: getattr(form, name).data for name in (
                "phone", "address_line_1", "address_line_2", "town", "county", "postcode")}),
            version=int(version) if version and version.isdigit() else None,
            region=current_app.config["CRM_DEFAULT_REGION"])
        db.session.commit()
    except FieldErrors as exc:
        db.session.rollback()
        for name, message in exc.errors.items():
            getattr(form, name).errors = [message]
        return _profile(400, details=form)
    except (ActionError, StaleDataError) as exc:
        db.session.rollback()
        flash(str(exc) if isinstance(exc, ActionError) else STALE, "error")
        return redirect(url_for("portal.profile"))
    flash(result.message, "success")
    return redirect(url_for("portal.profile"))


@bp.post("/profile/preferences")
def save_preferences():
    form = PreferencesForm()
    if not form.validate_on_submit():
        return _profile(400, preferences=form)
    result = set_preferences(db.session, customer_id=g.portal_customer.id,
                             wants_statements=form.wants_statements.data,
                             wants_reminders=form.wants_reminders.data,
                             wants_marketing=form.wants_marketing.data)
    db.session.commit()
    flash(result.message, "success")
    return redirect(url_for("portal.profile"))


@bp.post("/profile/password")
@limiter.limit("10/hour", key_func=_per_session("password"))
def save_password():
    form = PasswordForm()
    if not form.validate_on_submit():
        return _profile(400, password=form)
    try:
        result = change_password(db.session, account_id=g.portal_account.id,
                                 current=form.current.data, new=form.password.data,
                                 keep_session=cookie_token())
        db.session.commit()
    except ActionError as exc:
        db.session.rollback()
        form.password.errors = [str(exc)]
        return _profile(400, password=form)
    flash(result.message, "success")
    return redirect(url_for("portal.profile"))


@bp.post("/profile/email")
@limiter.limit("5/hour", key_func=_per_session("email"))
def change_email():
    form = EmailChangeForm()
    if not form.validate_on_submit():
        return _profile(400, email=form)
    try:
        result = request_email_change(db.session, account_id=g.portal_account.id,
                                      new_email=form.email.data,
                                      link=link_maker("email"))
        db.session.commit()
    except (ActionError, mail.MailError) as exc:
        db.session.rollback()
        form.email.errors = [str(exc)]
        return _profile(400, email=form)
    flash(result.message, "success")
    return redirect(url_for("portal.profile"))


# --- download my data -------------------------------------------------------------------

@bp.post("/my-data")
@limiter.limit("5/hour", key_func=_per_session("export"))
def my_data():
    out = tempfile.TemporaryFile()
    export_customer_data(db.session, customer_id=g.portal_customer.id, out=out, actor=None,
                         by_customer=True)
    db.session.commit()
    out.seek(0)
    return send_file(out, mimetype="application/zip", as_attachment=True,
                     download_name=f"my-data-{g.portal_customer.reference}.zip")


# --- staff viewing as the customer ------------------------------------------------------

@bp.post("/stop-viewing")
def stop_viewing():
    customer_id = session.pop(VIEW_AS, None)
    if g.viewer is None or customer_id is None:
        return redirect(url_for("portal.home"))
    return redirect(f"/admin/{g.viewer.role}/customer/details/?id={customer_id}")
