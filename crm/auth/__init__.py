"""Staff login and logout."""

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from crm.actions.staff_sessions import end_session, start_session
from crm.extensions import db, limiter
from crm.models import User
from crm.security import verify_password

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in on this device")


def safe_next(target: str | None) -> str:
    """Only a path on this site: no scheme, no host, no '//' or '\\' tricks."""
    fallback = url_for("admin.index")
    if not target:
        return fallback
    target = target.strip()
    if "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


def _account_key() -> str:
    # Cut to the longest address the form accepts: the key names a stored counter, and a
    # megabyte typed into the field must not become a megabyte key on every attempt.
    return "login-account:" + (request.form.get("email") or "").strip().lower()[:254]


def _failed(response) -> bool:
    # Only failed attempts count against the limits; a successful login redirects.
    return request.method == "POST" and response.status_code != 302


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["CRM_LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_failed,
    error_message="Too many failed sign-ins from this address; wait a while and try again.",
)
@limiter.limit(
    lambda: current_app.config["CRM_LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed,
    error_message="Too many failed sign-ins for this account; wait a while and try again.",
)
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if verify_password(user.password_hash if user else None, form.password.data) and (
            user is not None and user.is_active
        ):
            session.clear()  # a fresh session at login: no fixation
            start_session(db.session, user=user)
            db.session.commit()
            login_user(user, remember=form.remember.data)
            return redirect(safe_next(request.args.get("next")))
        flash("Wrong e-mail or password, or the account is disabled.", "error")
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form), (400 if form.errors else 200)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    # A link on another site must not sign anyone out: browsers say where a navigation came
    # from, and a cross-site GET gets a button to press instead (the POST carries CSRF).
    cross_site = request.headers.get("Sec-Fetch-Site") == "cross-site"
    if request.method == "GET" and cross_site and current_user.is_authenticated:
        return render_template("auth/logout.html")
    if current_user.is_authenticated:
        # Ended on the server too: a copy of the cookie taken before no longer opens anything.
        end_session(db.session, user_id=current_user.id, token=current_user.session_token)
        db.session.commit()
    # Clear first: logout_user() leaves the order to delete the remember-me cookie in the
    # session, and a clear after it would lose that order (the cookie would sign them back in).
    session.clear()
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
