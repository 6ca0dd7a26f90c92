"""The supplier's invoices and the buyer's payables (issue 5 §2 and §3). The supplier: its
invoice list, each invoice's page with its ledger timeline, one invoice from its PDF (the form
filled in from a UBL e-invoice when one is given), a bulk CSV with its per-row error report, a
financing request, the offers side by side and accepting one (or withdrawing the request), and
splitting a receivable for its own suppliers. The buyer: its inbox of registered invoices,
confirmed or disputed one by one (on the invoice's page) or together, its confirmed payables
month by month in a maturity calendar, and repaying them in full or in part, or offering to
pay one early at a discount, which the holder accepts on the same page (issue 6 §3).

Every read and write goes through backend/services (invoices, invoice_intake, financing,
servicing, early_payment), as the API's do: a page of another organisation's invoice is a 404,
a confirmation by anyone but its buyer a 403. See docs/portal.md ("Pages").
"""
from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, time

from babel.dates import get_day_names
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from wtforms import SelectChoice

from backend.api.fields import ROW_ID
from backend.extensions import db
from backend.intake import RowError
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    Role,
)
from backend.money import from_minor_units
from backend.portal import layout
from backend.portal.auth import current_actor, show_service_errors
from backend.portal.dashboards import INVOICE_STATUS_LABELS, month_name
from backend.portal.early_payment import (
    EARLY_PAYMENT_STATUS_LABELS,
    AcceptEarlyPaymentForm,
    EarlyPaymentOfferForm,
    early_payment_section,
)
from backend.portal.forms import (
    DISPUTE_REASON_LABELS,
    FIRST_CALENDAR_MONTH,
    LAST_CALENDAR_MONTH,
    AcceptOfferForm,
    ConfirmForm,
    CsvUploadForm,
    DisputeForm,
    FinancingRequestForm,
    InvoiceFilterForm,
    InvoiceUploadForm,
    MonthForm,
    PayablesForm,
    RepaymentForm,
    SplitForm,
    UblPrefillForm,
)
from backend.portal.paging import PAGE_SIZE, page_number
from backend.services import early_payment, financing, invoice_intake, invoices, overview, servicing
from backend.services.errors import Duplicate, InvalidInput, ServiceError
from backend.services.financing import outstanding_minor
from backend.services.invoice_intake import CsvMode
from backend.services.ledger import ledger_now, settlement_currency

blp = Blueprint("invoice_pages", __name__)
layout.setup(blp)
layout.nav_link("invoice_pages.invoice_list", _l("Invoices"), Role.SUPPLIER)
layout.nav_link("invoice_pages.payables", _l("Payables inbox"), Role.BUYER)
layout.nav_link("invoice_pages.maturity_calendar", _l("Maturity calendar"), Role.BUYER)

# How the timeline names each ledger write (invoices.TIMELINE_FUNCTIONS) and its way to the chain.
LEDGER_STEP_LABELS: dict[str, LazyString] = {
    "register": _l("Registered"),
    "confirm": _l("Confirmed by the buyer"),
    "dispute": _l("Disputed by the buyer"),
    "cancel": _l("Withdrawn by the supplier"),
    "split": _l("Split"),
    "transferFrom": _l("Transferred"),
    "acceptOffer": _l("Financed (offer accepted)"),
    "fundRequest": _l("Financed (request funded)"),
    "repay": _l("Repayment"),
    "markOverdue": _l("Marked overdue"),
    "markDefaulted": _l("Marked defaulted"),
    "offerEarlyPayment": _l("Early payment offered"),
    "withdrawEarlyPayment": _l("Early payment offer withdrawn"),
    "acceptEarlyPayment": _l("Paid early (offer accepted)"),
}
FINANCING_REQUEST_STATUS_LABELS: dict[FinancingRequestStatus, LazyString] = {
    FinancingRequestStatus.PENDING: _l("Awaiting the ledger"),
    FinancingRequestStatus.OPEN: _l("Open to offers"),
    FinancingRequestStatus.FUNDED: _l("Funded"),
    FinancingRequestStatus.CANCELLED: _l("Cancelled"),
    FinancingRequestStatus.EXPIRED: _l("Expired"),
    FinancingRequestStatus.UNWOUND: _l("Unwound"),
}
TRANSACTION_STATUS_LABELS: dict[ChainTransactionStatus, LazyString] = {
    ChainTransactionStatus.QUEUED: _l("Queued"),
    ChainTransactionStatus.SIGNED: _l("Signed"),
    ChainTransactionStatus.SENT: _l("Sent"),
    ChainTransactionStatus.MINED: _l("Mined"),
    ChainTransactionStatus.REVERTED: _l("Refused by the ledger"),
    ChainTransactionStatus.FAILED: _l("Could not be sent"),
    ChainTransactionStatus.BATCHED: _l("Sent in a batch"),
}
# The statuses the buyer still has to answer: a disputed invoice may be confirmed once settled.
AWAITING_DECISION = (InvoiceStatus.REGISTERED,)


def require_role(role: Role) -> None:
    """These pages are a role's: anyone else is told they do not exist."""
    if not current_actor().has_any(role):
        abort(404)


@blp.route("/invoices")
@login_required
def invoice_list() -> ResponseReturnValue:
    """The supplier's invoices, newest first, by status, a page at a time."""
    require_role(Role.SUPPLIER)
    form = InvoiceFilterForm(formdata=request.args)
    form.status.choices = [SelectChoice("", _("Every status")),
                           *(SelectChoice(str(status), label) for status, label in INVOICE_STATUS_LABELS.items())]
    form.validate()
    statement = invoices.invoice_query(current_actor(), status=form.chosen_status(),
                                       perspective=invoices.Perspective.SUPPLIER)
    page = db.paginate(statement.order_by(Invoice.created_at.desc(), Invoice.id.desc()), page=page_number(),
                       per_page=PAGE_SIZE, error_out=False)
    return render_template("portal/invoices.html", form=form, page=page, status=form.status.data or "")


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>")
@login_required
def invoice_page(invoice_id: int) -> ResponseReturnValue:
    """One invoice, its ledger timeline, and the buyer's answer while it awaits one."""
    return render_invoice(invoice_id)


def render_invoice(invoice_id: int, dispute_form: DisputeForm | None = None,
                   repayment_form: RepaymentForm | None = None, financing_form: FinancingRequestForm | None = None,
                   split_form: SplitForm | None = None, early_payment_form: EarlyPaymentOfferForm | None = None,
                   status: int = 200) -> ResponseReturnValue:
    """The invoice's page; the buyer's answer forms while it awaits one, its repayment form
    once confirmed and not yet repaid in full; for the holder, its financing requests and the
    form to ask for one; for both, the early payment offer (backend.portal.early_payment)."""
    actor = current_actor()
    invoice = invoices.get_invoice(actor, invoice_id)
    is_buyer = invoice.buyer_id == actor.organisation.id
    is_holder = invoice.holder_id == actor.organisation.id
    outstanding = outstanding_minor(invoice)
    return render_template("portal/invoice.html", invoice=invoice,
                           financing_requests=[request_ for request_ in invoice.financing_requests
                                               if request_.seller_id == actor.organisation.id],
                           financeable=is_holder and invoice.status == InvoiceStatus.CONFIRMED
                           and actor.has_any(Role.SUPPLIER),
                           financing_form=financing_form or FinancingRequestForm(formdata=None),
                           split_form=split_form or SplitForm(formdata=None),
                           history=invoices.ledger_history(actor, invoice_id),
                           awaits_decision=is_buyer and invoice.status in AWAITING_DECISION,
                           repayable=is_buyer and invoice.status == InvoiceStatus.CONFIRMED and outstanding > 0,
                           outstanding_minor=outstanding,
                           confirm_form=ConfirmForm(), dispute_form=dispute_form or DisputeForm(),
                           repayment_form=repayment_form or RepaymentForm(
                               amount=str(from_minor_units(outstanding, invoice.currency))),
                           dispute=dispute_of(invoice),
                           early_payment=early_payment_section(actor, invoice, early_payment_form),
                           early_payment_status_labels=EARLY_PAYMENT_STATUS_LABELS,
                           ledger_step_labels=LEDGER_STEP_LABELS,
                           financing_request_status_labels=FINANCING_REQUEST_STATUS_LABELS,
                           transaction_status_labels=TRANSACTION_STATUS_LABELS), status


def dispute_of(invoice: Invoice) -> tuple[LazyString | str, str | None] | None:
    """The buyer's dispute as the page shows it: the reason in the user's language, and the
    note (invoices.dispute_invoice stores them as "<reason>: <note>")."""
    if not invoice.dispute_reason:
        return None
    code, _separator, note = invoice.dispute_reason.partition(": ")
    reason = next((label for known, label in DISPUTE_REASON_LABELS.items() if known == code), code)
    return reason, note or None


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/confirm", methods=["POST"])
@login_required
def confirm_invoice(invoice_id: int) -> ResponseReturnValue:
    return one_button_write(invoice_id, lambda: invoices.confirm_invoice(current_actor(), invoice_id),
                            _("The confirmation is on its way to the ledger."))


def form_write(invoice_id: int, form_name: str, form: FlaskForm, write: Callable[[], object],
               message: str) -> ResponseReturnValue:
    """A write the invoice's page asks for with a form: checked, the service called, the message
    shown back on the page; a refusal of the form's input shown beside its fields on the page
    again (400), as `render_invoice`'s argument `form_name`."""
    if form.validate_on_submit():
        try:
            write()
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            flash(message, "success")
            return redirect(url_for("invoice_pages.invoice_page", invoice_id=invoice_id))
    return render_invoice(invoice_id, **{form_name: form}, status=400)


def one_button_write(invoice_id: int, write: Callable[[], object], message: str) -> ResponseReturnValue:
    """A write the invoice's page asks for with one button: its CSRF token checked, the service
    called (its refusal is the error page), the message shown back on the page."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    write()
    flash(message, "success")
    return redirect(url_for("invoice_pages.invoice_page", invoice_id=invoice_id))


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/dispute", methods=["POST"])
@login_required
def dispute_invoice(invoice_id: int) -> ResponseReturnValue:
    form = DisputeForm()
    return form_write(invoice_id, "dispute_form", form, lambda: invoices.dispute_invoice(
        current_actor(), invoice_id, invoices.DisputeReason(form.reason.data), form.note.data),
        _("The dispute is on its way to the ledger."))


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/repay", methods=["POST"])
@login_required
def repay_invoice(invoice_id: int) -> ResponseReturnValue:
    """The buyer pays the holder in full or in part (servicing.repay)."""
    form = RepaymentForm()
    return form_write(invoice_id, "repayment_form", form, lambda: servicing.repay(
        current_actor(), invoice_id, amount=form.amount.data.strip(),
        currency=invoices.get_invoice(current_actor(), invoice_id).currency),
        _("The repayment is on its way to the ledger."))


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/early-payment", methods=["POST"])
@login_required
def offer_early_payment(invoice_id: int) -> ResponseReturnValue:
    """The buyer offers to pay its payable early at a discount, or revises its offer
    (early_payment.offer_early_payment)."""
    form = EarlyPaymentOfferForm()
    return form_write(invoice_id, "early_payment_form", form, lambda: early_payment.offer_early_payment(
        current_actor(), invoice_id, annual_rate=form.annual_rate.data.strip(),
        expiry=datetime.combine(form.expiry.data, time.max, UTC)),
        _("The early payment offer is on its way to the ledger."))


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/early-payment/withdraw", methods=["POST"])
@login_required
def withdraw_early_payment(invoice_id: int) -> ResponseReturnValue:
    """The buyer withdraws its open early payment offer (early_payment.withdraw_early_payment)."""
    return one_button_write(invoice_id, lambda: early_payment.withdraw_early_payment(current_actor(), invoice_id),
                            _("The withdrawal of the early payment offer is on its way to the ledger."))


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/early-payment/accept", methods=["POST"])
@login_required
def accept_early_payment(invoice_id: int) -> ResponseReturnValue:
    """The holder accepts the buyer's offer at the discount it was shown, at most
    (early_payment.accept_early_payment)."""
    form = AcceptEarlyPaymentForm()
    if not form.validate_on_submit():
        abort(400)
    actor = current_actor()
    offer = early_payment.early_payment_offer(actor, invoice_id)
    early_payment.accept_early_payment(actor, offer.id, discount_seen=form.discount_seen.data)
    flash(_("The acceptance of the early payment is on its way to the ledger."), "success")
    return redirect(url_for("invoice_pages.invoice_page", invoice_id=invoice_id))


@blp.route("/payables", methods=["GET", "POST"])
@login_required
def payables() -> ResponseReturnValue:
    """The buyer's inbox: registered invoices awaiting its answer, soonest due first, with who
    holds each one now; the ticked ones are confirmed, or disputed for one reason, together."""
    require_role(Role.BUYER)
    actor = current_actor()
    current_page = page_number()
    statement = invoices.invoice_query(actor, status=InvoiceStatus.REGISTERED, perspective=invoices.Perspective.BUYER)
    page = db.paginate(statement.order_by(Invoice.due_date, Invoice.id), page=current_page,
                       per_page=PAGE_SIZE, error_out=False)
    form = PayablesForm()
    form.invoices.choices = [SelectChoice(invoice.id, invoice.invoice_number or str(invoice.id)) for invoice in page.items]
    status = 200
    if form.validate_on_submit():
        decide(form)
        return redirect(url_for("invoice_pages.payables", page=current_page))
    if form.is_submitted():
        status = 400
    return render_template("portal/payables.html", form=form, page=page), status


@blp.route("/payables/confirmed")
@login_required
def confirmed_payables() -> ResponseReturnValue:
    """The buyer's confirmed payables, soonest due first: what it still owes, and to whom (the
    receivable's holder now, whom the ledger pays)."""
    require_role(Role.BUYER)
    current_page = page_number()
    statement = invoices.invoice_query(current_actor(), status=InvoiceStatus.CONFIRMED,
                                       perspective=invoices.Perspective.BUYER)
    page = db.paginate(statement.order_by(Invoice.due_date, Invoice.id), page=current_page,
                       per_page=PAGE_SIZE, error_out=False)
    return render_template("portal/payables_confirmed.html", page=page)


@blp.route("/payables/calendar")
@login_required
def maturity_calendar() -> ResponseReturnValue:
    """The buyer's confirmed payables falling due in a month (`?month=YYYY-MM`, else the
    current one, UTC), day by day in a calendar whose weeks start on the day the user's
    language starts them: what is still to pay each day and in the month, and to whom."""
    require_role(Role.BUYER)
    form = MonthForm(formdata=request.args)
    chosen = form.chosen_month() if form.validate() else None
    month = chosen or ledger_now().date().replace(day=1)
    locale = get_locale()
    first_weekday = locale.first_week_day
    wide, abbreviated = get_day_names("wide", locale=locale), get_day_names("abbreviated", locale=locale)
    return render_template(
        "portal/payables_calendar.html", form=form, month=month, month_title=month_name(month),
        maturities=overview.maturity_calendar(current_actor(), month),
        weeks=calendar.Calendar(first_weekday).monthdatescalendar(month.year, month.month),
        weekday_names=[(wide[(first_weekday + offset) % 7], abbreviated[(first_weekday + offset) % 7])
                       for offset in range(7)],
        previous_month=shifted_month(month, -1), next_month=shifted_month(month, 1),
    ), 400 if form.errors else 200


def shifted_month(month: date, months: int) -> date | None:
    """The month `months` after `month` (its first day), or None beyond the calendar's months."""
    shifted = overview.shift_month(month, months)
    return shifted if FIRST_CALENDAR_MONTH <= shifted <= LAST_CALENDAR_MONTH else None


def decide(form: PayablesForm) -> None:
    """Confirms or disputes each ticked invoice on its own: one refused (answered meanwhile,
    say) leaves the others done, and is named in a message."""
    actor = current_actor()
    names = {choice.value: choice.label for choice in form.invoices.choices}
    done = 0
    for invoice_id in form.invoices.data:
        try:
            if form.dispute.data:
                invoices.dispute_invoice(actor, invoice_id, invoices.DisputeReason(form.reason.data), form.note.data)
            else:
                invoices.confirm_invoice(actor, invoice_id)
        except ServiceError as refusal:
            flash(_("Invoice %(number)s: %(reason)s", number=names[invoice_id], reason=refusal.detail), "error")
        else:
            done += 1
    if form.dispute.data:
        flash(_("Disputes on their way to the ledger: %(count)d.", count=done), "success")
    else:
        flash(_("Confirmations on their way to the ledger: %(count)d.", count=done), "success")


# ---------------------------------------------------------------- the supplier's uploads


@blp.route("/invoices/new", methods=["GET", "POST"])
@login_required
def upload_invoice() -> ResponseReturnValue:
    """One invoice: its PDF and its terms, registered on the ledger (invoice_intake)."""
    require_role(Role.SUPPLIER)
    form = InvoiceUploadForm()
    if not form.is_submitted():
        form.currency.data = settlement_currency()
    status = 200
    if form.validate_on_submit():
        try:
            invoice = invoice_intake.register_pdf_invoice(
                current_actor(), form.file.data.read(), filename=form.file.data.filename,
                invoice_number=form.invoice_number.data, buyer=form.buyer.data.strip(), amount=form.amount.data.strip(),
                currency=form.currency.data, issue_date=form.issue_date.data, due_date=form.due_date.data)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        except Duplicate as refusal:
            form.invoice_number.errors = [*form.invoice_number.errors, refusal.detail]
        else:
            flash(_("The invoice is on its way to the ledger."), "success")
            return redirect(url_for("invoice_pages.invoice_page", invoice_id=invoice.id))
    if form.is_submitted():
        status = 400
    return render_template("portal/upload_invoice.html", form=form, prefill_form=UblPrefillForm()), status


@blp.route("/invoices/new/from-ubl", methods=["POST"])
@login_required
def prefill_from_ubl() -> ResponseReturnValue:
    """The upload form filled in with a UBL e-invoice's terms; nothing is registered yet."""
    require_role(Role.SUPPLIER)
    prefill_form = UblPrefillForm()
    form = InvoiceUploadForm(formdata=None, currency=settlement_currency())
    if prefill_form.validate_on_submit():
        try:
            draft = invoice_intake.read_ubl_terms(current_actor(), prefill_form.ubl.data.read())
        except InvalidInput as refusal:
            show_service_errors(prefill_form, refusal)
        else:
            form = InvoiceUploadForm(
                formdata=None, invoice_number=draft.invoice_number, buyer=draft.buyer.identifier or draft.buyer.address,
                amount=str(from_minor_units(draft.amount_minor, draft.currency)), currency=draft.currency,
                issue_date=draft.issue_date, due_date=draft.due_date)
            flash(_("The form is filled in from the e-invoice: check it, add the invoice's PDF and register it."),
                  "info")
            return render_template("portal/upload_invoice.html", form=form, prefill_form=prefill_form)
    return render_template("portal/upload_invoice.html", form=form, prefill_form=prefill_form), 400


@blp.route("/invoices/upload-csv", methods=["GET", "POST"])
@login_required
def upload_csv() -> ResponseReturnValue:
    """Many invoices from a CSV file, registered in batches; each bad row's problems listed."""
    require_role(Role.SUPPLIER)
    form = CsvUploadForm()
    registered: list[Invoice] = []
    row_errors: list[RowError] = []
    status = 200
    if form.validate_on_submit():
        try:
            result = invoice_intake.register_csv_invoices(current_actor(), form.file.data.read(),
                                                          mode=CsvMode(form.mode.data))
        except InvalidInput as refusal:
            row_errors = invoice_intake.row_errors_of(refusal)
            if not row_errors:
                show_service_errors(form, refusal)
            status = 400
        else:
            registered, row_errors = result.invoices, result.errors
            flash(_("Invoices on their way to the ledger: %(count)d.", count=len(registered)), "success")
    elif form.is_submitted():
        status = 400
    return render_template("portal/upload_csv.html", form=form, registered=registered,
                           row_errors=row_errors), status


# ---------------------------------------------------------------- the supplier's financing


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/financing", methods=["POST"])
@login_required
def request_financing(invoice_id: int) -> ResponseReturnValue:
    """The holder asks for an advance on its confirmed receivable (financing.request_financing)."""
    form = FinancingRequestForm()
    return form_write(invoice_id, "financing_form", form, lambda: financing.request_financing(
        current_actor(), invoice_id, asking_advance=form.asking_advance.data.strip(),
        currency=invoices.get_invoice(current_actor(), invoice_id).currency,
        deadline=datetime.combine(form.deadline.data, time.max, UTC), recourse=form.recourse.data),
        _("The financing request is on its way to the ledger."))


@blp.route(f"/financing-requests/<{ROW_ID}:request_id>")
@login_required
def financing_offers(request_id: int) -> ResponseReturnValue:
    """A financing request's open offers side by side: advance, discount, implied yearly rate."""
    actor = current_actor()
    request_ = financing.get_financing_request(actor, request_id)
    terms = financing.compare_offers(actor, request_id)
    forms = {entry.offer.id: AcceptOfferForm(formdata=None, advance=str(from_minor_units(
        entry.advance_minor, request_.invoice.currency))) for entry in terms}
    is_seller = request_.seller_id == actor.organisation.id
    return render_template("portal/financing_offers.html", financing_request=request_, terms=terms, forms=forms,
                           can_accept=is_seller, closing=closing_writes(request_),
                           withdrawable=is_seller and request_.status == FinancingRequestStatus.OPEN,
                           withdraw_form=ConfirmForm(formdata=None),
                           financing_request_status_labels=FINANCING_REQUEST_STATUS_LABELS)


def closing_writes(request_: FinancingRequest) -> list[ChainTransaction]:
    """The request's withdrawal, acceptance or funding on its way to the ledger: it will close."""
    return [row for row in financing.pending_actions(request_) if row.function in financing.CLOSING_FUNCTIONS]


@blp.route(f"/financing-requests/<{ROW_ID}:request_id>/withdraw", methods=["POST"])
@login_required
def withdraw_financing_request(request_id: int) -> ResponseReturnValue:
    """The seller withdraws its open request (financing.cancel_financing_request): once the
    ledger has it, every offer on it lapses."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    financing.cancel_financing_request(current_actor(), request_id)
    flash(_("The withdrawal of the request is on its way to the ledger."), "success")
    return redirect(url_for("invoice_pages.financing_offers", request_id=request_id))


@blp.route(f"/offers/<{ROW_ID}:offer_id>/accept", methods=["POST"])
@login_required
def accept_offer(offer_id: int) -> ResponseReturnValue:
    """The seller accepts an offer: the advance and the receivable change hands on the ledger."""
    form = AcceptOfferForm()
    if not form.validate_on_submit():
        abort(400)
    actor = current_actor()
    offer = financing.get_offer(actor, offer_id)
    financing.accept_offer(actor, offer_id, advance=form.advance.data,
                           currency=offer.financing_request.invoice.currency)
    flash(_("The acceptance is on its way to the ledger."), "success")
    return redirect(url_for("invoice_pages.invoice_page", invoice_id=offer.financing_request.invoice_id))


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/split", methods=["POST"])
@login_required
def split_invoice(invoice_id: int) -> ResponseReturnValue:
    """The holder splits its confirmed receivable into parts, passed to its own suppliers."""
    form = SplitForm()
    if form.validate_on_submit():
        invoice = invoices.get_invoice(current_actor(), invoice_id)
        parts = split_parts(form)
        if parts is not None:
            try:
                invoices.split_invoice(current_actor(), invoice_id, currency=invoice.currency, parts=parts)
            except InvalidInput as refusal:
                form.parts.errors = [*form.parts.errors, *split_refusals(refusal)]
            else:
                flash(_("The split is on its way to the ledger."), "success")
                return redirect(url_for("invoice_pages.invoice_page", invoice_id=invoice_id))
    return render_invoice(invoice_id, split_form=form, status=400)


def split_parts(form: SplitForm) -> list[invoices.SplitPart] | None:
    """The form's lines as parts, or None with each malformed line named on the field."""
    parts, errors = [], []
    for line_number, line in enumerate(form.parts.data.splitlines(), start=1):
        if not line.strip():
            continue
        amount, comma, recipient = line.partition(",")
        if not comma or not amount.strip() or not recipient.strip():
            errors.append(_("Line %(line)d: write the amount, a comma, then the recipient.", line=line_number))
        else:
            parts.append(invoices.SplitPart(amount=amount.strip(), holder=recipient.strip()))
    form.parts.errors = [*form.parts.errors, *errors]
    return None if errors else parts


def split_refusals(refusal: InvalidInput) -> list[str]:
    """The service's refusal of a split as the form shows it: the service names a part by its
    index ("parts.0.amount"), people read the form's line numbers (blank lines aside)."""
    messages = []
    for field, reasons in refusal.errors.items():
        path = field.split(".")
        for reason in reasons:
            if len(path) == 3 and path[1].isdigit():
                messages.append(_("Part %(part)d: %(reason)s", part=int(path[1]) + 1, reason=reason))
            else:
                messages.append(reason)
    return messages
