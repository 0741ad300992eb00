"""Getting into the portal: sign in with e-mail and password, ask for a sign-in link or a
password reset (the answer is the same for a known and an unknown address), open a link,
set a password, confirm a new sign-in e-mail, sign out.

A link's token arrives in the query string (the access log keeps no query strings); the
page keeps it in the session and sends the browser to its own address without it (out of
the address bar, the history and any Referer; those pages also send no Referer at all). It is
used only by the POST of that page, so a mail scanner that follows links does not use it up.
Sign-in and link requests are rate-limited per address and per account, in the same storage as staff sign-ins.
"""

from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from crm import mail
from crm.actions import ActionError
from crm.actions.portal_access import (
    LINK_MINUTES,
    MIN_PASSWORD,
    PortalRefused,
    confirm_email_change,
    end_session,
    peek,
    request_link,
    set_password_with_link,
    sign_in,
    sign_in_with_link,
    start_session,
)
from crm.extensions import db, limiter
from crm.portal.blueprint import bp, clear_cookie, cookie_token, set_cookie
from crm.portal_links import link_maker


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in on this device")


class EmailForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])


class TokenForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(max=100)])


class NewPasswordForm(TokenForm):
    password = PasswordField("New password",
                             validators=[DataRequired(), Length(max=200)],
                             description=f"At least {MIN_PASSWORD} characters; a few unusual "
                                         "words make a strong one.")
    confirm = PasswordField("The same again",
                            validators=[DataRequired(), EqualTo("password", "The two differ.")])


def portal_next(target: str | None) -> str:
    """Only a page of the portal."""
    home = url_for("portal.home")
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/portal/") \
            or target.startswith("//"):
        return home
    return target


def _signed_in_response(account, *, remember: bool, target: str | None = None):
    # A new session at every sign-in: one this browser held before ends (no fixation).
    end_session(db.session, token=cookie_token())
    token = start_session(db.session, account=account)
    db.session.commit()
    response = redirect(portal_next(target))
    set_cookie(response, token, remember=remember)
    return response


def _login_account_key() -> str:
    return "portal-login:" + (request.form.get("email") or "").strip().lower()[:254]


def _failed(response) -> bool:
    return request.method == "POST" and response.status_code != 302


def _per_address():
    return current_app.config["CRM_LOGIN_LIMIT_PER_ADDRESS"]


def _per_account():
    return current_app.config["CRM_LOGIN_LIMIT_PER_ACCOUNT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_per_address, methods=["POST"], deduct_when=_failed,
               error_message="Too many failed sign-ins from this address; wait a while and "
                             "try again.")
@limiter.limit(_per_account, key_func=_login_account_key, methods=["POST"],
               deduct_when=_failed,
               error_message="Too many failed sign-ins for this account; wait a while and try "
                             "again, or ask for a sign-in link.")
def login():
    if g.portal_account is not None and not g.read_only:
        return redirect(portal_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            account = sign_in(db.session, email=form.email.data, password=form.password.data)
        except PortalRefused as exc:
            db.session.rollback()
            return render_template("portal/login.html", form=form, error=str(exc)), 401
        return _signed_in_response(account, remember=form.remember.data,
                                   target=request.args.get("next"))
    return render_template("portal/login.html", form=form), (400 if form.errors else 200)


def _link_request_key() -> str:
    return "portal-link:" + (request.form.get("email") or "").strip().lower()[:254]


LINK_LIMIT_PER_ACCOUNT = "5/hour"


def _ask(purpose: str, template: str):
    form = EmailForm()
    if form.validate_on_submit():
        try:
            request_link(db.session, email=form.email.data, purpose=purpose,
                         link=link_maker(purpose))
            db.session.commit()
        except mail.MailError:
            db.session.rollback()
            current_app.logger.exception("A portal %s link could not be sent", purpose)
        # The same answer whether the address has an account or not.
        return render_template("portal/link_sent.html", purpose=purpose,
                               minutes=LINK_MINUTES)
    return render_template(template, form=form, purpose=purpose), (400 if form.errors else 200)


@bp.route("/link", methods=["GET", "POST"], endpoint="request_link")
@limiter.limit(_per_address, methods=["POST"])
@limiter.limit(LINK_LIMIT_PER_ACCOUNT, key_func=_link_request_key, methods=["POST"])
def ask_for_link():
    return _ask("sign_in", "portal/request_link.html")


@bp.route("/forgot", methods=["GET", "POST"])
@limiter.limit(_per_address, methods=["POST"])
@limiter.limit(LINK_LIMIT_PER_ACCOUNT, key_func=_link_request_key, methods=["POST"])
def forgot():
    return _ask("reset", "portal/request_link.html")


def _link_token(purpose: str):
    """(a redirect, None) when the request came from an e-mailed link: the token is kept in
    the session and the browser sent to the same page without it, so it leaves the address
    bar, the history and any Referer; else (None, the token kept)."""
    key = f"portal_link_{purpose}"
    if "token" in request.args:
        session[key] = request.args.get("token", "")[:100]
        return redirect(url_for(request.endpoint)), None
    return None, session.get(key, "")


def _forget_token(purpose: str) -> None:
    session.pop(f"portal_link_{purpose}", None)


@bp.route("/access", methods=["GET", "POST"])
@limiter.limit(_per_address, methods=["POST"], deduct_when=_failed)
def access():
    """A sign-in link: the page asks to continue; the POST uses the link up."""
    moved, token = _link_token("sign_in")
    if moved:
        return moved
    form = TokenForm(token=token)
    if form.validate_on_submit():
        try:
            account = sign_in_with_link(db.session, token=form.token.data)
        except PortalRefused as exc:
            db.session.rollback()
            return render_template("portal/access.html", form=form, error=str(exc)), 400
        _forget_token("sign_in")
        return _signed_in_response(account, remember=False)
    return render_template("portal/access.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@limiter.limit(_per_address, methods=["POST"], deduct_when=_failed)
def set_password():
    """An invitation or a reset link: choose a password, and be signed in."""
    moved, token = _link_token("password")
    if moved:
        return moved
    form = NewPasswordForm(token=token)
    try:
        account = peek(db.session, form.token.data, ("invite", "reset"))
    except PortalRefused as exc:
        return render_template("portal/set_password.html", form=None, error=str(exc)), 400
    error = None
    if form.validate_on_submit():
        try:
            account = set_password_with_link(db.session, token=form.token.data,
                                             password=form.password.data)
        except ActionError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            _forget_token("password")
            flash("Your password is set. Welcome.", "success")
            return _signed_in_response(account, remember=False)
    return render_template("portal/set_password.html", form=form, email=account.email,
                           error=error), (400 if error or form.errors else 200)


@bp.route("/confirm-email", methods=["GET", "POST"])
def confirm_email():
    moved, token = _link_token("email")
    if moved:
        return moved
    form = TokenForm(token=token)
    if form.validate_on_submit():
        try:
            confirm_email_change(db.session, token=form.token.data)
            db.session.commit()
        except ActionError as exc:
            db.session.rollback()
            return render_template("portal/confirm_email.html", form=form, error=str(exc)), 400
        _forget_token("email")
        flash("Your sign-in e-mail is changed.", "success")
        return redirect(url_for("portal.profile") if g.portal_customer is not None
                        else url_for("portal.login"))
    return render_template("portal/confirm_email.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    end_session(db.session, token=cookie_token())
    db.session.commit()
    response = redirect(url_for("portal.login"))
    clear_cookie(response)
    flash("You are signed out.", "info")
    return response
