"""The portal's forms (WTForms through Flask-WTF: each carries the session's CSRF token).

Labels are lazy translations, read in the language of the request that renders them. A field's
limits are the services' own; the services still check everything and their refusals are shown
on the fields they name.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectChoice, SelectField
from wtforms.validators import DataRequired, EqualTo, Length

from backend.portal.i18n import LANGUAGES
from backend.security.passwords import MAX_PASSWORD_LENGTH
from backend.services.accounts import MAX_EMAIL_LENGTH


class SignInForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=MAX_EMAIL_LENGTH)],
                       render_kw={"autocomplete": "username"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)],
                             render_kw={"autocomplete": "current-password"})
    # Where to go once signed in (a path of this site only: see auth.safe_next).
    next = HiddenField()


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(_l("Current password"),
                                     validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)],
                                 render_kw={"autocomplete": "new-password"})
    confirm_password = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("new_password", message=_l("The two new passwords differ."))],
        render_kw={"autocomplete": "new-password"},
    )


class ConfirmForm(FlaskForm):
    """A button that only posts (signing out, resetting a password): the CSRF token is its content."""


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), validators=[DataRequired()],
                           choices=[SelectChoice(value, name, render_kw={"lang": value.replace("_", "-")})
                                    for value, name in LANGUAGES.items()])
    # The page to return to (a path of this site only).
    next = HiddenField()
