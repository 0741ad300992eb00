"""The public inquiry form (``/inquiry``): the page a business links its website to, where
anyone may ask for a booking without signing in. What is sent becomes a lead
(``crm.actions.inquiry.capture_inquiry``: the rules live there); the person is then shown a
thank-you page (``/inquiry/thanks``, after a redirect, so reloading it sends nothing again).

Against spam and probing:

- **A honeypot**: a text box that people never see (hidden by ``static/css/inquiry.css``,
  skipped by the keyboard, labelled "leave this empty" for screen readers). A robot that fills
  it in is thanked like anyone, and nothing is stored.
- **A limit per address** (``CRM_INQUIRY_LIMIT_PER_ADDRESS``, "5/hour" by default): each
  inquiry taken (stored, dropped by the honeypot, or from a blocked address) counts; a form
  sent back with mistakes to correct does not. Past it, a polite page with status 429.
- **Blocked addresses** are thanked like anyone, and nothing is stored: the form never tells
  whether an address is blocked, or anything about the customers on file.
- CSRF on the POST, the security headers of every page; the page runs no script at all.

The page wears the business's own name (Settings > Business, else ``CRM_BUSINESS_NAME``),
its logo when one is saved, and its phone and e-mail on the thank-you page.
"""

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from wtforms import EmailField, StringField, TelField, TextAreaField

from crm.actions.inquiry import FIELDS, InquiryError, capture_inquiry
from crm.business import header_logo_uri, identity
from crm.extensions import db, limiter
from crm.formatting import DATE_EXAMPLE

bp = Blueprint("inquiry", __name__)

THANKS = "inquiry_thanks"  # what the thank-you page says back, kept in the session


class InquiryForm(FlaskForm):
    """The fields; what they may hold is checked by the action, whose sentences are shown
    next to them."""

    first_name = StringField("First name", render_kw={"autocomplete": "given-name"})
    surname = StringField("Surname", render_kw={"autocomplete": "family-name"})
    email = EmailField("E-mail", description="So that we can reply to you.",
                       render_kw={"autocomplete": "email"})
    phone = TelField("Phone (optional)", description="If you would like a call back.",
                     render_kw={"autocomplete": "tel"})
    purpose = StringField("What is it for? (optional)",
                          description="For example: a wedding for 120 guests, a team day, "
                                      "a boiler service.")
    preferred_date = StringField("Preferred date (optional)",
                                 description=f"Type a date like {DATE_EXAMPLE}.",
                                 render_kw={"placeholder": f"e.g. {DATE_EXAMPLE}",
                                            "autocomplete": "off", "inputmode": "text"})
    message = TextAreaField("Message (optional)",
                            description="Anything else we should know: the place, the time, "
                                        "how many people.")
    # The honeypot: hidden from people by the stylesheet; a robot fills it in.
    website = StringField("Leave this empty",
                          render_kw={"autocomplete": "off", "tabindex": "-1"})


for _name, (_words, _limit) in FIELDS.items():
    # The browser stops typing at the limit too (the action still checks it).
    getattr(InquiryForm, _name).kwargs.setdefault("render_kw", {})["maxlength"] = _limit


def _per_address_limit() -> str:
    return current_app.config["CRM_INQUIRY_LIMIT_PER_ADDRESS"]


def _taken(response) -> bool:
    # Counted: an inquiry taken (a redirect to the thanks); not a form sent back to correct.
    return request.method == "POST" and response.status_code == 302


@bp.route("/inquiry", methods=["GET", "POST"])
@limiter.limit(
    _per_address_limit,
    methods=["POST"],
    deduct_when=_taken,
    error_message="You have sent several inquiries in a short time. Please wait a while and "
                  "try again, or get in touch with us directly.",
)
def form():
    form = InquiryForm()
    status = 200
    if request.method == "POST" and form.validate():
        if (form.website.data or "").strip():
            return _thank(form)  # the honeypot: a robot; nothing is stored
        try:
            capture_inquiry(
                db.session,
                first_name=form.first_name.data, surname=form.surname.data,
                email=form.email.data, phone=form.phone.data, message=form.message.data,
                purpose=form.purpose.data, preferred_date=form.preferred_date.data,
                region=current_app.config["CRM_DEFAULT_REGION"],
            )
        except InquiryError as exc:
            db.session.rollback()
            for name, sentence in exc.problems.items():
                getattr(form, name).errors = [sentence]
        else:
            db.session.commit()  # None (a blocked address): nothing was written
            return _thank(form)
    if request.method == "POST":
        status = 400
    return _page("inquiry/form.html", status, form=form,
                 problems=sum(1 for f in form if f.errors))


@bp.get("/inquiry/thanks")
def thanks():
    return _page("inquiry/thanks.html", 200, sent=session.get(THANKS) or {})


def _thank(form: InquiryForm):
    """The thanks, the same whatever became of the inquiry (stored, a robot's, blocked)."""
    name = (form.first_name.data or "").strip() or (form.surname.data or "").strip()
    session[THANKS] = {"name": name[:100], "email": (form.email.data or "").strip()[:254]}
    return redirect(url_for("inquiry.thanks"))


def _page(template: str, status: int, **context):
    business = identity(db.session)
    return render_template(template, business=business, business_name=business.name,
                           logo=header_logo_uri(db.session, business), **context), status


@bp.after_request
def _not_kept(response):
    # What a person typed (and the thanks naming them) is never kept by a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the same pages for what goes wrong ------------------------------------------------------

ERRORS = {
    400: ("Something went wrong", "The form could not be read. Please fill it in again."),
    413: ("Too long", "That was more than the form takes. Please shorten your message."),
    429: ("Please wait a while", "You have sent several inquiries in a short time. Please "
                                 "wait a while and try again, or get in touch with us "
                                 "directly."),
}


def _error(code: int, message: str | None = None):
    title, default = ERRORS[code]
    return _page("inquiry/error.html", code, title=title, message=message or default)


def _described(exc) -> str | None:
    """Our own sentence (the rate limit's, the input guard's), never werkzeug's default."""
    text = getattr(exc, "description", None)
    default = getattr(type(exc), "description", None)
    return text if isinstance(text, str) and text and text != default else None


for _code in ERRORS:
    bp.register_error_handler(_code, lambda exc, code=_code: _error(code, _described(exc)))


@bp.errorhandler(CSRFError)
def _stale_form(exc):
    """The form without a valid token (open since the browser was restarted, or posted from
    another site): nothing is sent, and the form comes back with what was typed and a new
    token, so that nobody has to type a long message again. A forged post gets no further:
    it only shows its sender's own words back, escaped."""
    if request.endpoint != "inquiry.form" or request.method != "POST":
        return _error(400, "The form had expired, or did not come from this site. Please "
                           "fill it in again.")
    form = InquiryForm()
    form.website.data = ""  # a robot's honeypot is not shown back
    return _page("inquiry/form.html", 400, form=form, problems=0, stale=True)
