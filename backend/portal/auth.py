"""Signing in and out, changing one's password, and the operator's password resets.

Sessions are Flask-Login's, in the `anchorline_session` cookie (HttpOnly, SameSite=Lax, Secure
outside development: backend/config.py). Signing in calls the same service as the API's
POST /api/v1/session (backend/services/authentication.py), under the same limits per login
name and per client address; every request re-reads the user, so a deactivated user or a
suspended organisation is signed out at their next click. The portal's sign-in does not sign
in to the JSON API: the API takes API keys, or its own session sign-in.
"""
from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm

from backend.api.fields import ROW_ID
from backend.extensions import db, limiter, login_manager
from backend.models import Role, User
from backend.portal import layout
from backend.portal.forms import ConfirmForm, PasswordChangeForm, SignInForm
from backend.portal.i18n import LANGUAGE_SESSION_KEY
from backend.services import accounts
from backend.services.actors import Actor
from backend.services.authentication import actor_for_user, authenticate_user
from backend.services.errors import AuthenticationFailed, InvalidInput, OrganisationInactive

blp = Blueprint("auth", __name__)
layout.setup(blp)
layout.nav_link("auth.users_for_reset", _l("Users"), Role.OPERATOR)


class PortalUser(UserMixin):
    """Flask-Login's user: the signed-in person, as the Actor the services take."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    @property
    def user(self) -> User:
        assert self.actor.user is not None  # a portal session is always a person's
        return self.actor.user

    def get_id(self) -> str:
        return str(self.user.id)


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = _l("Sign in to see this page.")
    login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str) -> PortalUser | None:
    """The session's user, while they are active and their organisation approved and not
    suspended (the services' own checks); otherwise nobody is signed in."""
    try:
        actor = actor_for_user(int(user_id), request_id=uuid.uuid4().hex)
    except (ValueError, AuthenticationFailed, OrganisationInactive):
        return None
    return PortalUser(actor)


def current_actor() -> Actor:
    """The signed-in user's Actor (for views under login_required)."""
    return current_user.actor


# ---------------------------------------------------------------- signing in and out


def login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def login_address_rate_limit() -> str:
    return current_app.config["LOGIN_ADDRESS_RATE_LIMIT"]


def login_name() -> str:
    """The address an attempt signs in as, however it is written (the limit's key)."""
    return f"login-name:{request.form.get('email', '').strip().lower()}"


def client_address() -> str:
    return f"address:{get_remote_address()}"


@blp.route("/sign-in", methods=["GET", "POST"])
# Every attempt counts, a malformed one or one without a CSRF token as well.
@limiter.limit(login_rate_limit, key_func=login_name, methods=["POST"], override_defaults=False)
@limiter.limit(login_address_rate_limit, key_func=client_address, methods=["POST"], override_defaults=False)
def sign_in() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("portal.home"))
    form = SignInForm(next=request.args.get("next", ""))
    status = 200
    if form.validate_on_submit():
        try:
            user = authenticate_user(form.email.data, form.password.data)
        except OrganisationInactive as refusal:
            flash(_("Your organisation cannot use Anchorline at present: %(reason)s.", reason=refusal.detail),
                  "error")
            status = 403
        except AuthenticationFailed:
            flash(_("Wrong e-mail address or password."), "error")
            status = 401
        else:
            start_session(user)
            return redirect(safe_next(form.next.data) or url_for("portal.home"))
    elif form.is_submitted():
        status = 400
    return render_template("portal/sign_in.html", form=form), status


def start_session(user: User) -> None:
    """A fresh session for `user`: nothing of an earlier one survives but the language."""
    language = session.get(LANGUAGE_SESSION_KEY)
    session.clear()
    if language is not None:
        session[LANGUAGE_SESSION_KEY] = language
    session.permanent = True  # the cookie expires PERMANENT_SESSION_LIFETIME after the last request
    login_user(PortalUser(Actor(organisation=user.organisation, user=user)))


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site; never another site (an open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


@blp.route("/sign-out", methods=["POST"])
def sign_out() -> ResponseReturnValue:
    language = session.get(LANGUAGE_SESSION_KEY)
    logout_user()
    session.clear()
    if language is not None:
        session[LANGUAGE_SESSION_KEY] = language
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.sign_in"))


# ---------------------------------------------------------------- passwords


@blp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> ResponseReturnValue:
    form = PasswordChangeForm()
    status = 200
    if form.validate_on_submit():
        try:
            accounts.change_password(current_actor(), current_password=form.current_password.data,
                                     new_password=form.new_password.data)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
            status = 400
        else:
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("portal.home"))
    elif form.is_submitted():
        status = 400
    return render_template("portal/change_password.html", form=form), status


@blp.route("/operator/users")
@login_required
def users_for_reset() -> ResponseReturnValue:
    users = db.session.scalars(accounts.users_for_password_reset(current_actor())).all()
    return render_template("portal/users.html", users=users, form=ConfirmForm())


@blp.route(f"/operator/users/<{ROW_ID}:user_id>/password", methods=["POST"])
@login_required
def reset_password(user_id: int) -> ResponseReturnValue:
    """Sets a temporary password and shows it on this one page, never again (it is not kept)."""
    user, temporary_password = accounts.reset_password(current_actor(), user_id)
    return render_template("portal/password_reset.html", user=user, temporary_password=temporary_password)


def show_service_errors(form: FlaskForm, refusal: InvalidInput) -> None:
    """A service's refusal on the fields it names (the rest as a message at the top)."""
    for field_name, messages in refusal.errors.items():
        field = getattr(form, field_name, None)
        if field is None:
            flash(" ".join(messages), "error")
        else:
            field.errors = [*field.errors, *messages]
    if not refusal.errors:
        flash(refusal.detail, "error")
