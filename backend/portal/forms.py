"""The portal's forms (WTForms through Flask-WTF: each carries the session's CSRF token).

Labels are lazy translations, read in the language of the request that renders them. A field's
limits are the services' own; the services still check everything and their refusals are shown
on the fields they name.
"""
from __future__ import annotations

from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    SubmitField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional, Regexp, StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from backend.models import InvoiceStatus
from backend.portal.i18n import LANGUAGES
from backend.security.passwords import MAX_PASSWORD_LENGTH
from backend.services.accounts import MAX_EMAIL_LENGTH
from backend.services.invoice_intake import CsvMode
from backend.services.invoices import MAX_DISPUTE_NOTE_LENGTH, DisputeReason



class CheckboxesField(SelectMultipleField):
    """Several choices, one checkbox each (`_forms.html`'s `checkboxes` renders it as a fieldset
    with a legend)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def at_least_one(form: FlaskForm, field: CheckboxesField) -> None:
    """A CheckboxesField's DataRequired: without its `required` flag, which a browser would put
    on every checkbox, demanding them all."""
    if not field.data:
        raise StopValidation(_("Choose at least one."))

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


# How the buyer's dispute reasons read, in the user's language (the ledger keeps their codes).
DISPUTE_REASON_LABELS = {
    DisputeReason.GOODS_NOT_RECEIVED: _l("Goods or services not received"),
    DisputeReason.GOODS_DEFECTIVE: _l("Goods defective"),
    DisputeReason.AMOUNT_INCORRECT: _l("Amount incorrect"),
    DisputeReason.NOT_ORDERED: _l("Not ordered"),
    DisputeReason.DUPLICATE_INVOICE: _l("Duplicate invoice"),
    DisputeReason.OTHER: _l("Other"),
}


class InvoiceFilterForm(FlaskForm):
    """The filters of an invoice list: a GET form, so it has no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    # Its choices (the statuses with their labels) are set by the view, in the request's language.
    status = SelectField(_l("Status"), validators=[Optional()], choices=[SelectChoice("", "")],
                         validate_choice=False)
    page = IntegerField(_l("Page"), validators=[Optional(), NumberRange(min=1)], default=1)

    def chosen_status(self) -> InvoiceStatus | None:
        return InvoiceStatus(self.status.data) if self.status.data in set(InvoiceStatus) else None


class DisputeForm(FlaskForm):
    reason = SelectField(_l("Reason"), validators=[DataRequired()],
                         choices=[SelectChoice(str(reason), label) for reason, label in DISPUTE_REASON_LABELS.items()])
    note = TextAreaField(_l("Note (stays off the ledger)"), validators=[Optional(), Length(max=MAX_DISPUTE_NOTE_LENGTH)])


class PayablesForm(DisputeForm):
    """The payables inbox: the invoices ticked, confirmed together or disputed for one reason."""

    # Its choices are the inbox page's invoices (set by the view).
    invoices = SelectMultipleField(_l("Invoices"), coerce=int,
                                   validators=[DataRequired(message=_l("Select at least one invoice."))])
    confirm = SubmitField(_l("Confirm the selected invoices"))
    dispute = SubmitField(_l("Dispute the selected invoices"))


class RepaymentForm(FlaskForm):
    # A decimal amount of the invoice's currency ("1250.50"); the service reads it exactly.
    amount = StringField(_l("Amount to pay"), validators=[DataRequired(), Length(max=40)],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})


class InvoiceUploadForm(FlaskForm):
    """One invoice: its PDF (the document the ledger anchors) and the terms it states."""

    file = FileField(_l("Invoice PDF"), validators=[FileRequired()], render_kw={"accept": "application/pdf"})
    invoice_number = StringField(_l("Invoice number"), validators=[DataRequired(), Length(max=100)])
    buyer = StringField(_l("Buyer (legal identifier, ledger address or organisation number)"),
                        validators=[DataRequired(), Length(max=200)])
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=40)],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})
    currency = StringField(_l("Currency"), validators=[DataRequired(), Length(min=3, max=3)])
    issue_date = DateField(_l("Issue date"), validators=[DataRequired()])
    due_date = DateField(_l("Due date"), validators=[DataRequired()])


class UblPrefillForm(FlaskForm):
    ubl = FileField(_l("UBL 2.1 e-invoice (XML)"), validators=[FileRequired()],
                    render_kw={"accept": ".xml,application/xml,text/xml"})


class CsvUploadForm(FlaskForm):
    """Many invoices in one CSV file (its columns: docs/portal.md and backend/intake/csv_bulk.py)."""

    file = FileField(_l("CSV file"), validators=[FileRequired()], render_kw={"accept": ".csv,text/csv"})
    mode = SelectField(_l("When some rows have errors"), validators=[DataRequired()], choices=[
        SelectChoice(str(CsvMode.ALL_OR_NOTHING), _l("Register nothing, and list the errors")),
        SelectChoice(str(CsvMode.VALID_ROWS_ONLY), _l("Register the good rows, and list the errors")),
    ])


class FinancingRequestForm(FlaskForm):
    asking_advance = StringField(_l("Smallest advance you accept"), validators=[DataRequired(), Length(max=40)],
                                 render_kw={"inputmode": "decimal", "autocomplete": "off"})
    # Offers are taken until the end of this day (UTC); it must come before the due date.
    deadline = DateField(_l("Open to offers until (the end of the day, UTC)"), validators=[DataRequired()])
    recourse = BooleanField(_l("With recourse: we stay liable for what the buyer fails to pay"))


class AcceptOfferForm(FlaskForm):
    # The advance the seller saw: if the financier has revised its offer since, nothing happens.
    advance = HiddenField(validators=[DataRequired()])


class SplitForm(FlaskForm):
    # One part a line: "amount, recipient" (the recipient's legal identifier, ledger address or
    # organisation number; the holder's own keeps that part).
    parts = TextAreaField(_l("Parts, one a line: amount, recipient"), validators=[DataRequired(), Length(max=10_000)],
                          render_kw={"rows": 4})


# The months a calendar shows (MonthForm's pattern accepts these years).
FIRST_CALENDAR_MONTH, LAST_CALENDAR_MONTH = date(1900, 1, 1), date(2999, 12, 1)


class MonthForm(FlaskForm):
    """The month a calendar shows: a GET form, so it has no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    month = StringField(_l("Month (YYYY-MM)"), validators=[Optional(), Regexp(
        r"^(19|2\d)\d\d-(0[1-9]|1[0-2])$",
        message=_l("Give a month from 1900-01 to 2999-12 as YYYY-MM, for example 2027-01."))],
        render_kw={"type": "month", "min": "1900-01", "max": "2999-12"})

    def chosen_month(self) -> date | None:
        """The first day of the month asked for (validated), None when none is."""
        if not self.month.data:
            return None
        year, month = self.month.data.split("-")
        return date(int(year), int(month), 1)
