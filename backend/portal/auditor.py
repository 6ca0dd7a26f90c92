"""The auditor's pages (issue 5 §6), for those who read everything (the auditor and the
operator), and read-only: no form here changes anything, so every one is a GET without a CSRF
token. The ledger explorer lists every receivable (searched by invoice number, receivable id,
supplier, buyer and status); a receivable's page shows its full history on the ledger (each
indexed event in chain order, in words, with its transaction hash and block; the writes not yet
mined), its split lineage and the check of its stored document against the ledger's anchor.
The audit-log search filters the append-only log; both lists export as CSV, filtered alike.

Everything is read through backend/services (explorer, audit_reads), as the API reads it.
See docs/portal.md ("Pages").
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, format_date, format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from backend.api.fields import ROW_ID
from backend.extensions import db
from backend.models import AuditLog, ChainEvent, Delinquency, InvoiceStatus, Organisation, User
from backend.portal import layout
from backend.portal.auth import current_actor, show_service_errors
from backend.portal.dashboards import INVOICE_STATUS_LABELS
from backend.portal.forms import DISPUTE_REASON_LABELS
from backend.portal.i18n import format_amount
from backend.portal.invoices import TRANSACTION_STATUS_LABELS, dispute_of, require_role
from backend.portal.paging import PAGE_SIZE, page_number
from backend.services import audit_reads, explorer, organisations
from backend.services.errors import InvalidInput
from backend.services.invoices import DISPUTE_REASON_CODES
from backend.services.permissions import READ_ALL_ROLES

blp = Blueprint("auditor_pages", __name__)
layout.setup(blp)
layout.nav_link("auditor_pages.receivables", _l("Ledger explorer"), READ_ALL_ROLES)
layout.nav_link("auditor_pages.audit_log", _l("Audit log"), READ_ALL_ROLES)

ZERO_ADDRESS = "0x" + "00" * 20
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
DELINQUENCY_LABELS: dict[Delinquency, LazyString] = {
    Delinquency.NONE: _l("Not late"),
    Delinquency.OVERDUE: _l("Overdue"),
    Delinquency.DEFAULTED: _l("Defaulted"),
}
DOCUMENT_VERDICT_LABELS: dict[explorer.DocumentVerdict, LazyString] = {
    explorer.DocumentVerdict.MATCH: _l("MATCH: the stored document is the one the ledger anchors"),
    explorer.DocumentVerdict.MISMATCH: _l("MISMATCH: the stored document is not the one the ledger anchors"),
    explorer.DocumentVerdict.MISSING: _l("Document missing: no document is stored for this receivable"),
    explorer.DocumentVerdict.NOT_ANCHORED: _l("Not anchored: the ledger holds no registration of this receivable yet"),
}
HASH_SOURCE_LABELS: dict[explorer.HashSource, LazyString] = {
    explorer.HashSource.LEDGER: _l("the registration event, read from the ledger now"),
    explorer.HashSource.INDEXED_EVENT: _l("the indexed registration event (the ledger did not answer)"),
}
DISPUTE_REASONS_BY_CODE = {code: reason for reason, code in DISPUTE_REASON_CODES.items()}


# ---------------------------------------------------------------- forms (GET: no CSRF token, they change nothing)


class ExplorerFilterForm(FlaskForm):
    class Meta:
        csrf = False

    invoice_number = StringField(_l("Invoice number"), validators=[Optional(), Length(max=100)])
    receivable_id = StringField(_l("Receivable id"), validators=[Optional(), Length(max=80)])
    supplier = StringField(_l("Supplier"), validators=[Optional(), Length(max=200)])
    buyer = StringField(_l("Buyer"), validators=[Optional(), Length(max=200)])
    # Its choices (the statuses with their labels) are set by the view, in the request's language.
    status = SelectField(_l("Status"), validators=[Optional()], choices=[SelectChoice("", "")], validate_choice=False)

    def filters(self) -> dict[str, Any]:
        """The service's filters (explorer.receivable_query) the form states."""
        return {"invoice_number": self.invoice_number.data, "receivable_id": self.receivable_id.data,
                "supplier": self.supplier.data, "buyer": self.buyer.data,
                "status": InvoiceStatus(self.status.data) if self.status.data in set(InvoiceStatus) else None}


class AuditLogFilterForm(FlaskForm):
    class Meta:
        csrf = False

    # The choices of the three selects are set by the view: the organisations, and the actions
    # and kinds of subject the log holds.
    organisation = SelectField(_l("Organisation"), validators=[Optional()], choices=[SelectChoice("", "")])
    user = StringField(_l("User (e-mail address)"), validators=[Optional(), Length(max=320)])
    action = SelectField(_l("Action"), validators=[Optional()], choices=[SelectChoice("", "")])
    subject_type = SelectField(_l("Kind of subject"), validators=[Optional()], choices=[SelectChoice("", "")])
    subject_id = StringField(_l("Subject id"), validators=[Optional(), Length(max=66)])
    date_from = DateField(_l("From (UTC)"), validators=[Optional()])
    date_to = DateField(_l("To (UTC, included)"), validators=[Optional()])
    text = StringField(_l("Containing the text"), validators=[Optional(), Length(max=200)])

    def validate_date_to(self, field: DateField) -> None:
        if field.data and self.date_from.data and field.data < self.date_from.data:
            raise ValidationError(_("The last day comes before the first."))

    def filters(self) -> dict[str, Any]:
        """The service's filters (audit_reads.audit_entries) the form states: whole UTC days."""
        filters: dict[str, Any] = {"action": self.action.data or None, "subject_type": self.subject_type.data or None,
                                   "subject_id": (self.subject_id.data or "").strip() or None,
                                   "actor_email": (self.user.data or "").strip() or None,
                                   "text": (self.text.data or "").strip() or None}
        if self.organisation.data:
            filters["actor_organisation_id"] = int(self.organisation.data)
        if self.date_from.data:
            filters["since"] = datetime.combine(self.date_from.data, time.min, UTC)
        # The last day a date can name has no day after it to end at: it bounds nothing.
        if self.date_to.data and self.date_to.data < date.max:
            filters["until"] = datetime.combine(self.date_to.data + timedelta(days=1), time.min, UTC)
        return filters


# ---------------------------------------------------------------- the ledger explorer


@blp.route("/explorer")
@login_required
def receivables() -> ResponseReturnValue:
    """Every receivable, newest first, searched by the form's filters, a page at a time."""
    require_role(READ_ALL_ROLES)
    form = explorer_form()
    statement = filtered(form, explorer.receivable_query)
    if statement is None:
        return render_template("portal/auditor_explorer.html", form=form, page=None, query_args={}), 400
    page = db.paginate(statement, page=page_number(), per_page=PAGE_SIZE, error_out=False)
    return render_template("portal/auditor_explorer.html", form=form, page=page, query_args=query_args(form))


@blp.route("/explorer/export.csv")
@login_required
def explorer_export() -> ResponseReturnValue:
    """The receivables the explorer's filters find (every page), as CSV."""
    require_role(READ_ALL_ROLES)
    form = explorer_form()
    lines = filtered(form, explorer.receivables_csv)
    if lines is None:
        return render_template("portal/auditor_explorer.html", form=form, page=None, query_args={}), 400
    return csv_response(lines, "receivables")


@blp.route(f"/explorer/receivables/<{ROW_ID}:invoice_id>")
@login_required
def receivable_page(invoice_id: int) -> ResponseReturnValue:
    """One receivable: its terms, its history on the ledger, its split lineage, its document check."""
    require_role(READ_ALL_ROLES)
    actor = current_actor()
    history = explorer.receivable_history(actor, invoice_id)
    currency = history.invoice.currency
    return render_template(
        "portal/auditor_receivable.html", invoice=history.invoice, history=history, dispute=dispute_of(history.invoice),
        descriptions={event.id: describe_event(event, currency, history.organisations) for event in history.events},
        lineage=explorer.split_lineage(actor, invoice_id), check=explorer.check_document(actor, invoice_id),
        delinquency_labels=DELINQUENCY_LABELS, verdict_labels=DOCUMENT_VERDICT_LABELS,
        source_labels=HASH_SOURCE_LABELS, transaction_status_labels=TRANSACTION_STATUS_LABELS)


def explorer_form() -> ExplorerFilterForm:
    form = ExplorerFilterForm(formdata=request.args)
    form.status.choices = [SelectChoice("", _("Every status")),
                           *(SelectChoice(str(status), label) for status, label in INVOICE_STATUS_LABELS.items())]
    return form


# ---------------------------------------------------------------- the audit log


@blp.route("/audit-log")
@login_required
def audit_log() -> ResponseReturnValue:
    """The audit log, newest first, searched by the form's filters, a page at a time."""
    require_role(READ_ALL_ROLES)
    form = audit_log_form()
    statement = filtered(form, audit_reads.audit_entries)
    if statement is None:
        return render_template("portal/auditor_audit_log.html", form=form, page=None, query_args={}), 400
    page = db.paginate(statement.order_by(AuditLog.occurred_at.desc(), AuditLog.id.desc()),
                       page=page_number(), per_page=PAGE_SIZE, error_out=False)
    return render_template("portal/auditor_audit_log.html", form=form, page=page, query_args=query_args(form),
                           **actor_names(page.items))


@blp.route("/audit-log/export.csv")
@login_required
def audit_log_export() -> ResponseReturnValue:
    """The audit entries the search's filters find (every page), newest first, as CSV."""
    require_role(READ_ALL_ROLES)
    form = audit_log_form()
    lines = filtered(form, explorer.audit_csv)
    if lines is None:
        return render_template("portal/auditor_audit_log.html", form=form, page=None, query_args={}), 400
    return csv_response(lines, "audit-log")


def audit_log_form() -> AuditLogFilterForm:
    actor = current_actor()
    form = AuditLogFilterForm(formdata=request.args)
    every = SelectChoice("", _("Any"))
    form.organisation.choices = [every, *(SelectChoice(str(org.id), org.name) for org in db.session.scalars(
        organisations.organisation_directory(actor).order_by(Organisation.name, Organisation.id)))]
    form.action.choices = [every, *audit_reads.recorded_actions(actor)]
    form.subject_type.choices = [every, *audit_reads.recorded_subject_types(actor)]
    return form


def actor_names(entries: list[AuditLog]) -> dict[str, dict[int, str]]:
    """Who acted in `entries`: `organisation_names` and `user_emails`, by id."""
    organisation_ids = sorted({entry.actor_organisation_id for entry in entries} - {None})
    user_ids = sorted({entry.actor_user_id for entry in entries} - {None})
    return {
        "organisation_names": dict(db.session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(organisation_ids))).all()),
        "user_emails": dict(db.session.execute(select(User.id, User.email).where(User.id.in_(user_ids))).all()),
    }


# ---------------------------------------------------------------- shared


def filtered(form: ExplorerFilterForm | AuditLogFilterForm, read: Callable[..., Any]) -> Any | None:
    """What the service `read` answers the signed-in actor for the form's filters; None, with
    the problems on the form's fields, when the form is not valid or the service refuses them."""
    if not form.validate():
        return None
    try:
        return read(current_actor(), **form.filters())
    except InvalidInput as refusal:
        show_service_errors(form, refusal)
        return None


def query_args(form: FlaskForm) -> dict[str, str]:
    """The form's filters as query arguments (for the other pages and the export), page aside."""
    return {name: value for name, value in request.args.items() if name != "page" and name in form and value}


def csv_response(lines: Any, name: str) -> Response:
    """`lines` streamed as a CSV attachment named after `name` and today's date (UTC)."""
    filename = f"anchorline-{name}-{datetime.now(UTC).date().isoformat()}.csv"
    return Response(stream_with_context(lines), mimetype=CSV_MEDIA_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# ---------------------------------------------------------------- a ledger event in words


def describe_event(event: ChainEvent, currency: str, names: Mapping[str, Organisation]) -> str:
    """What `event` says, in the user's language: organisations by name (else their ledger
    address), amounts in `currency` (the receivable's: the ledger's amounts are its minor
    units), dates and times from the ledger's Unix seconds. An event of no known kind lists
    its arguments as they are."""
    describe = EVENT_DESCRIPTIONS.get(event.event)
    if describe is None:
        return "; ".join(f"{name}: {value}" for name, value in event.args.items())
    return describe(EventWords(event.args, currency, names))


class EventWords:
    """An event's arguments, each as people read it."""

    def __init__(self, args: Mapping[str, Any], currency: str, names: Mapping[str, Organisation]) -> None:
        self.args, self.currency, self.names = args, currency, names

    def who(self, name: str) -> str:
        address = self.args[name]
        organisation = self.names.get(address)
        return organisation.name if organisation is not None else address

    def money(self, name: str) -> str:
        return format_amount(int(self.args[name]), self.currency)

    def day(self, name: str) -> str:
        return format_date(datetime.fromtimestamp(int(self.args[name]), UTC).date())

    def moment(self, name: str) -> str:
        return format_datetime(datetime.fromtimestamp(int(self.args[name]), UTC))

    def __getitem__(self, name: str) -> Any:
        return self.args[name]


def _transfer(words: EventWords) -> str:
    if words["from"] == ZERO_ADDRESS:
        return _("Issued to %(holder)s", holder=words.who("to"))
    if words["to"] == ZERO_ADDRESS:
        return _("Retired from %(holder)s", holder=words.who("from"))
    return _("Passed from %(sender)s to %(recipient)s", sender=words.who("from"), recipient=words.who("to"))


def _dispute(words: EventWords) -> str:
    reason = DISPUTE_REASONS_BY_CODE.get(words["reasonCode"])
    return _("Disputed by the buyer: %(reason)s",
             reason=DISPUTE_REASON_LABELS[reason] if reason is not None else words["reasonCode"])


def _delinquency(words: EventWords) -> str:
    return (_("No longer late"), _("Marked overdue"), _("Marked defaulted"))[words["delinquency"]]


def _settlement(words: EventWords) -> str:
    if words["viaOffer"]:
        return _("Financed: %(seller)s accepted the offer of %(financier)s, an advance of %(advance)s (round %(round)s)",
                 seller=words.who("seller"), financier=words.who("financier"), advance=words.money("advance"),
                 round=words["round"])
    return _("Financed: %(financier)s paid %(seller)s the asked advance of %(advance)s (round %(round)s)",
             seller=words.who("seller"), financier=words.who("financier"), advance=words.money("advance"),
             round=words["round"])


EVENT_DESCRIPTIONS: dict[str, Callable[[EventWords], str]] = {
    "ReceivableRegistered": lambda words: _(
        "Registered by %(supplier)s for %(buyer)s: %(amount)s, issued %(issued)s, due %(due)s; document SHA-256 "
        "%(document)s", supplier=words.who("supplier"), buyer=words.who("buyer"), amount=words.money("amount"),
        issued=words.day("issueDate"), due=words.day("dueDate"), document=words["documentHash"]),
    "ReceivableConfirmed": lambda words: _("Confirmed by the buyer"),
    "ReceivableDisputed": _dispute,
    "ReceivableCancelled": lambda words: _("Withdrawn by %(supplier)s", supplier=words.who("supplier")),
    "ReceivableSplit": lambda words: _(
        "Split into parts of %(amounts)s", amounts=", ".join(format_amount(int(amount), words.currency)
                                                             for amount in words["amounts"])),
    "Transfer": _transfer,
    "Approval": lambda words: _("%(owner)s let %(approved)s move it", owner=words.who("owner"),
                                approved=words.who("approved")),
    "RepaymentRecorded": lambda words: _("Repayment of %(amount)s; %(total)s repaid in all",
                                         amount=words.money("amount"), total=words.money("repaidTotal")),
    "DelinquencyChanged": _delinquency,
    "FinancingRequested": lambda words: _(
        "%(seller)s asked for an advance of at least %(advance)s until %(deadline)s, %(recourse)s (round %(round)s)",
        seller=words.who("seller"), advance=words.money("askingAdvance"), deadline=words.moment("deadline"),
        recourse=_("with recourse") if words["recourse"] else _("without recourse"), round=words["round"]),
    "FinancingRequestCancelled": lambda words: _("Financing request withdrawn (round %(round)s)",
                                                 round=words["round"]),
    "FinancingRequestExpired": lambda words: _("Financing request expired (round %(round)s)", round=words["round"]),
    "OfferMade": lambda words: _(
        "%(financier)s offered an advance of %(advance)s, good until %(expiry)s (round %(round)s)",
        financier=words.who("financier"), advance=words.money("advance"), expiry=words.moment("expiry"),
        round=words["round"]),
    "OfferWithdrawn": lambda words: _("%(financier)s withdrew its offer (round %(round)s)",
                                      financier=words.who("financier"), round=words["round"]),
    "FinancingSettled": _settlement,
    "ReceivableOverdue": lambda words: _("Overdue, %(amount)s outstanding, held by %(holder)s",
                                         amount=words.money("outstanding"), holder=words.who("holder")),
    "ReceivableDefaulted": lambda words: _("Defaulted, %(amount)s outstanding, held by %(holder)s",
                                           amount=words.money("outstanding"), holder=words.who("holder")),
    "RecourseLiabilityRecorded": lambda words: _(
        "%(seller)s owes %(creditor)s %(amount)s under recourse", seller=words.who("seller"),
        creditor=words.who("creditor"), amount=words.money("amount")),
    "RecourseLiabilityReduced": lambda words: _("Recourse liability now %(amount)s",
                                                amount=words.money("liability")),
    "RecourseSettled": lambda words: _("%(seller)s settled %(amount)s of recourse with %(creditor)s",
                                       seller=words.who("seller"), creditor=words.who("creditor"),
                                       amount=words.money("amount")),
}
