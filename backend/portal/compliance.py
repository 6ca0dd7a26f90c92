"""The compliance pages (issue 6 §2, §4, §5), for the operator and the auditor: the fraud and
double-financing flags with their evidence; the sanctions and watch lists with the screening
hits they raise (the operator loads lists from CSV and clears or confirms hits, always with a
note); the alerts on large and structured token movements (the operator clears or reports
them, with a note); and the financing report by month or quarter, with its charts and its CSV and PDF
exports for a regulator.

Everything goes through backend/services (fraud, screening, aml, reports), as the API's
/api/v1/fraud-flags, /watch-lists, /screening-hits, /aml-alerts and /reports/financing do: the auditor sees
the operator's forms refused by the services themselves (403). Anyone else is told the pages do
not exist (404). See docs/portal.md ("Pages") and docs/risk.md for what each figure means.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import LazyString, format_date, format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import DateField, HiddenField, SelectChoice, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from backend.api.fields import ROW_ID
from backend.extensions import db
from backend.intake import RowError
from backend.models import Invoice, Organisation, Role, ScreeningHitStatus
from backend.money import from_minor_units
from backend.portal import layout
from backend.portal.auditor import page_number, query_args
from backend.portal.auth import current_actor, show_service_errors
from backend.portal.dashboards import month_name
from backend.portal.forms import FIRST_CALENDAR_MONTH, LAST_CALENDAR_MONTH
from backend.portal.i18n import format_amount
from backend.portal.invoices import PAGE_SIZE, require_role
from backend.services import aml, fraud, reports, screening
from backend.services.aml import AlertKind, MovementKind
from backend.services.errors import InvalidInput
from backend.services.fraud import Flag, FlagKind
from backend.services.invoice_intake import row_errors_of
from backend.services.ledger import ledger_now, settlement_currency
from backend.services.overview import shift_month
from backend.services.permissions import READ_ALL_ROLES
from backend.services.reports import FinancingReport, Period
from backend.services.screening import MAX_LIST_NAME

blp = Blueprint("compliance_pages", __name__)
layout.setup(blp)
layout.nav_link("compliance_pages.flags", _l("Fraud flags"), READ_ALL_ROLES)
layout.nav_link("compliance_pages.screening_page", _l("Screening"), READ_ALL_ROLES)
layout.nav_link("compliance_pages.token_alerts", _l("Token alerts"), READ_ALL_ROLES)
layout.nav_link("compliance_pages.financing_report", _l("Financing report"), READ_ALL_ROLES)

FLAG_KIND_LABELS: dict[FlagKind, LazyString] = {
    FlagKind.DUPLICATE_DOCUMENT: _l("One document under several invoices"),
    FlagKind.AMOUNT_OUTLIER: _l("Amount far above the supplier's usual"),
    FlagKind.COUNT_SPIKE: _l("Far more invoices in a day than usual"),
    FlagKind.CIRCULAR_FLOW: _l("Two organisations invoicing each other"),
    FlagKind.SPLIT_RETURNED_TO_ORIGIN: _l("Split part returned to its issuer"),
    FlagKind.FAST_CONFIRMATION: _l("Confirmed faster than a person could check"),
}
# The evidence a flag carries (backend/services/fraud.py), by key, in the order shown. The
# invoices it names are shown as links instead, and the currency with its amounts.
EVIDENCE_LABELS: dict[str, LazyString] = {
    "document_sha256": _l("Document SHA-256"),
    "invoices": _l("Invoices under it"),
    "amount_minor": _l("Amount"),
    "median_minor": _l("Median of the earlier invoices"),
    "earlier_invoices": _l("Earlier invoices"),
    "date": _l("Day"),
    "daily_average": _l("Average a day over the 90 days before"),
    "days_apart": _l("Days between their issue dates"),
    "tx_hash": _l("Transfer transaction"),
    "block_number": _l("Block"),
    "seconds": _l("Seconds from registration to confirmation"),
}
HIT_STATUS_LABELS: dict[ScreeningHitStatus, LazyString] = {
    ScreeningHitStatus.OPEN: _l("Open (to be reviewed)"),
    ScreeningHitStatus.CLEARED: _l("Cleared (a false positive)"),
    ScreeningHitStatus.CONFIRMED: _l("Confirmed (a true match)"),
}
ALERT_KIND_LABELS: dict[AlertKind, LazyString] = {
    AlertKind.LARGE_MOVEMENT: _l("Large movement"),
    AlertKind.STRUCTURING: _l("Movements structured under the large-value line"),
}
ALERT_STATUS_LABELS: dict[str, LazyString] = {
    "open": _l("Open (to be reviewed)"),
    "cleared": _l("Cleared (an ordinary payment)"),
    "reported": _l("Reported to the financial intelligence unit"),
}
MOVEMENT_KIND_LABELS: dict[MovementKind, LazyString] = {
    MovementKind.DEPOSIT: _l("Deposit"),
    MovementKind.WITHDRAWAL: _l("Withdrawal"),
    MovementKind.TRANSFER: _l("Transfer"),
}
MATCHED_ON_LABELS: dict[str, LazyString] = {"name": _l("Name"), "address": _l("Address")}
PERIOD_LABELS: dict[Period, LazyString] = {Period.MONTH: _l("By month"), Period.QUARTER: _l("By quarter")}
REPORT_MONTHS = 12  # the report shown before any other range is asked for
MAX_RESOLUTION_NOTE = 2000  # as the API's resolution takes it
PDF_MEDIA_TYPE = "application/pdf"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


# ---------------------------------------------------------------- forms


class FlagFilterForm(FlaskForm):
    """The flags' kind: a GET form, so it has no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    kind = SelectField(_l("Kind"), validators=[Optional()],
                       choices=[SelectChoice("", _l("Every kind")),
                                *(SelectChoice(str(kind), label) for kind, label in FLAG_KIND_LABELS.items())])

    def chosen_kind(self) -> FlagKind | None:
        return FlagKind(self.kind.data) if self.kind.data else None


class WatchListUploadForm(FlaskForm):
    """A sanctions or watch list (screening.load_watch_list; its columns: backend/intake/watch_list.py)."""

    list_name = StringField(_l("List name"), validators=[DataRequired(), Length(max=MAX_LIST_NAME)],
                            render_kw={"autocomplete": "off"})
    file = FileField(_l("CSV file"), validators=[FileRequired()], render_kw={"accept": ".csv,text/csv"})


class HitFilterForm(FlaskForm):
    """The hits' status: a GET form, so it has no CSRF token."""

    class Meta:
        csrf = False

    status = SelectField(_l("Status"), validators=[Optional()],
                         choices=[SelectChoice("", _l("Every status")),
                                  *(SelectChoice(str(status), label) for status, label in HIT_STATUS_LABELS.items())])

    def chosen_status(self) -> ScreeningHitStatus | None:
        return ScreeningHitStatus(self.status.data) if self.status.data else None


class HitResolutionForm(FlaskForm):
    """One open hit's resolution (screening.resolve_hit); each hit's form has its own prefix."""

    note = TextAreaField(_l("What was checked (required)"),
                         validators=[DataRequired(), Length(max=MAX_RESOLUTION_NOTE)], render_kw={"rows": 2})
    clear = SubmitField(_l("Clear: a false positive"))
    confirm = SubmitField(_l("Confirm: a true match"))


class AlertFilterForm(FlaskForm):
    """The alerts' status: a GET form, so it has no CSRF token."""

    class Meta:
        csrf = False

    status = SelectField(_l("Status"), validators=[Optional()],
                         choices=[SelectChoice("", _l("Every status")),
                                  *(SelectChoice(status, label) for status, label in ALERT_STATUS_LABELS.items())])


class AlertReviewForm(FlaskForm):
    """One open alert's review (aml.review_alert); each alert's form has its own prefix."""

    key = HiddenField(validators=[DataRequired()])
    note = TextAreaField(_l("What was checked (required)"),
                         validators=[DataRequired(), Length(max=MAX_RESOLUTION_NOTE)], render_kw={"rows": 2})
    clear = SubmitField(_l("Clear: an ordinary payment"))
    report = SubmitField(_l("Report to the financial intelligence unit"))


def report_start() -> date:
    """The first day of the month REPORT_MONTHS − 1 months before the current one (UTC)."""
    return shift_month(ledger_now().date(), 1 - REPORT_MONTHS)


def report_end() -> date:
    return ledger_now().date()


def within_calendar(form: FlaskForm, field: DateField) -> None:
    """A day within the calendar's months: the report's last period ends on the first day of
    the month after it, which must be a date too (a day in 9999-12 has none)."""
    if field.data is not None and not FIRST_CALENDAR_MONTH <= field.data < LAST_CALENDAR_MONTH:
        raise ValidationError(_("Choose a day from %(first)s to %(last)s.", first=FIRST_CALENDAR_MONTH.isoformat(),
                                last=(LAST_CALENDAR_MONTH - date.resolution).isoformat()))


class ReportForm(FlaskForm):
    """The report's range and periods: a GET form, so it has no CSRF token. A field left out
    keeps its default: the last REPORT_MONTHS months, by month."""

    class Meta:
        csrf = False

    start = DateField(_l("From (a day in the first period)"), validators=[DataRequired(), within_calendar],
                      default=report_start)
    end = DateField(_l("To (a day in the last period)"), validators=[DataRequired(), within_calendar],
                    default=report_end)
    period = SelectField(_l("Periods"), validators=[DataRequired()], default=str(Period.MONTH),
                         choices=[SelectChoice(str(period), label) for period, label in PERIOD_LABELS.items()])

    def arguments(self) -> dict[str, Any]:
        """The service's arguments (reports.financing_report) the form states."""
        return {"start": self.start.data, "end": self.end.data, "period": Period(self.period.data)}


# ---------------------------------------------------------------- fraud flags


@blp.route("/compliance/flags")
@login_required
def flags() -> ResponseReturnValue:
    """The fraud and double-financing flags, of one kind or every kind, each with its evidence
    and the invoices and organisations it is about."""
    require_role(READ_ALL_ROLES)
    form = FlagFilterForm(formdata=request.args)
    if not form.validate():
        return render_template("portal/compliance_flags.html", form=form, flags=None), 400
    found = fraud.fraud_flags(current_actor(), kind=form.chosen_kind())
    return render_template("portal/compliance_flags.html", form=form, flags=found, **flag_subjects(found),
                           evidence_of=shown_evidence, kind_labels=FLAG_KIND_LABELS)


def flag_subjects(found: list[Flag]) -> dict[str, dict[int, Any]]:
    """The invoices (`invoices`) and organisations (`organisations`) the flags name, by id: one
    query each for the whole list."""
    invoice_ids = sorted({invoice_id for flag in found for invoice_id in flag.invoice_ids})
    organisation_ids = sorted({organisation_id for flag in found for organisation_id in flag.organisation_ids})
    return {
        "invoices": {invoice.id: invoice for invoice in db.session.scalars(
            select(Invoice).where(Invoice.id.in_(invoice_ids)))},
        "organisations": dict(db.session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(organisation_ids))).all()),
    }


def shown_evidence(flag: Flag) -> list[tuple[LazyString, str, bool]]:
    """(label, value, whether the value is a hash) of each piece of the flag's evidence, in
    EVIDENCE_LABELS order; amounts and numbers in the user's language."""
    evidence = flag.evidence
    shown = []
    for key, label in EVIDENCE_LABELS.items():
        if key not in evidence:
            continue
        value = evidence[key]
        if key.endswith("_minor"):
            text = format_amount(round(value), evidence["currency"])
        elif key == "date":
            text = format_date(date.fromisoformat(value))
        else:
            text = value if isinstance(value, str) else format_decimal(value)
        shown.append((label, text, key in ("document_sha256", "tx_hash")))
    return shown


# ---------------------------------------------------------------- watch lists and screening hits


@blp.route("/compliance/screening")
@login_required
def screening_page() -> ResponseReturnValue:
    """The loaded watch lists, the operator's upload form, and the screening hits by status, a
    page at a time, each open one with the operator's resolution form."""
    return render_screening()


def render_screening(upload_form: WatchListUploadForm | None = None, row_errors: list[RowError] | None = None,
                     resolved: tuple[int, HitResolutionForm] | None = None, status: int = 200) -> ResponseReturnValue:
    """The screening page; `upload_form` and `row_errors`: a refused upload, shown with its
    problems; `resolved`: a hit's refused resolution form, shown with its errors."""
    require_role(READ_ALL_ROLES)
    actor = current_actor()
    filter_form = HitFilterForm(formdata=request.args)
    if not filter_form.validate():
        status = 400
    statement = screening.screening_hits(actor, status=filter_form.chosen_status() if not filter_form.errors else None)
    page = db.paginate(statement, page=page_number(), per_page=PAGE_SIZE, error_out=False)
    operates = actor.has_any(Role.OPERATOR)  # the services refuse anyone else's load or resolution
    resolution_forms = {hit.id: HitResolutionForm(formdata=None, prefix=resolution_prefix(hit.id))
                        for hit in page.items if operates and hit.status == ScreeningHitStatus.OPEN}
    if resolved is not None:
        resolution_forms[resolved[0]] = resolved[1]
    return render_template(
        "portal/compliance_screening.html", watch_lists=screening.watch_list_summary(actor), operates=operates,
        upload_form=upload_form or WatchListUploadForm(formdata=None), row_errors=row_errors or [],
        filter_form=filter_form, page=page, query_args=query_args(filter_form), resolution_forms=resolution_forms,
        status_labels=HIT_STATUS_LABELS, matched_on_labels=MATCHED_ON_LABELS), status


def resolution_prefix(hit_id: int) -> str:
    return f"hit-{hit_id}"


@blp.route("/compliance/screening/watch-lists", methods=["POST"])
@login_required
def load_watch_list() -> ResponseReturnValue:
    """Loads a list from the operator's CSV, replacing the list of the same name, and screens
    every organisation against it; a bad file loads nothing and lists each row's problems."""
    require_role(READ_ALL_ROLES)
    form = WatchListUploadForm()
    row_errors: list[RowError] = []
    if form.validate_on_submit():
        try:
            loaded = screening.load_watch_list(current_actor(), form.list_name.data, form.file.data.read())
        except InvalidInput as refusal:
            row_errors = row_errors_of(refusal)
            if not row_errors:
                show_service_errors(form, refusal)
        else:
            flash(_("%(name)s is loaded: %(entries)d entries (replacing %(replaced)d); new hits: %(hits)d.",
                    name=loaded.list_name, entries=loaded.entries, replaced=loaded.replaced, hits=loaded.new_hits),
                  "success")
            return redirect(url_for("compliance_pages.screening_page"))
    return render_screening(upload_form=form, row_errors=row_errors, status=400)


@blp.route(f"/compliance/screening/hits/<{ROW_ID}:hit_id>/resolution", methods=["POST"])
@login_required
def resolve_hit(hit_id: int) -> ResponseReturnValue:
    """Clears an open hit as a false positive, or confirms it as a true match, with a note."""
    require_role(READ_ALL_ROLES)
    form = HitResolutionForm(prefix=resolution_prefix(hit_id))
    if form.validate_on_submit() and (form.clear.data or form.confirm.data):
        try:
            hit = screening.resolve_hit(current_actor(), hit_id, confirmed=form.confirm.data, note=form.note.data)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            if hit.status == ScreeningHitStatus.CONFIRMED:
                flash(_("The hit on %(name)s is confirmed: its approval stays refused.", name=hit.organisation.name),
                      "success")
            else:
                flash(_("The hit on %(name)s is cleared.", name=hit.organisation.name), "success")
            return redirect(url_for("compliance_pages.screening_page", **request.args))
    return render_screening(resolved=(hit_id, form), status=400)


# ---------------------------------------------------------------- alerts on token movements


@blp.route("/compliance/alerts")
@login_required
def token_alerts() -> ResponseReturnValue:
    """Large and structured settlement-token movements, oldest first, each open one with the
    operator's review form."""
    return render_alerts()


def render_alerts(reviewed: tuple[str, AlertReviewForm] | None = None, status: int = 200) -> ResponseReturnValue:
    """The alerts page; `reviewed`: an alert's refused review form, shown with its errors."""
    require_role(READ_ALL_ROLES)
    actor = current_actor()
    filter_form = AlertFilterForm(formdata=request.args)
    if not filter_form.validate():
        status = 400
    chosen = None if filter_form.errors else filter_form.status.data or None
    alerts = aml.token_alerts(actor, status=chosen)
    operates = actor.has_any(Role.OPERATOR)  # the service refuses anyone else's review
    review_forms = {alert.key: AlertReviewForm(formdata=None, prefix=f"alert-{index}", key=alert.key)
                    for index, alert in enumerate(alerts) if operates and alert.review is None}
    if reviewed is not None:
        review_forms[reviewed[0]] = reviewed[1]
    organisations = dict(db.session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_({alert.organisation_id for alert in alerts if alert.organisation_id}))).all())
    return render_template(
        "portal/compliance_alerts.html", filter_form=filter_form, alerts=alerts, review_forms=review_forms,
        organisations=organisations, currency=settlement_currency(), kind_labels=ALERT_KIND_LABELS,
        status_labels=ALERT_STATUS_LABELS, movement_labels=MOVEMENT_KIND_LABELS), status


@blp.route("/compliance/alerts/review/<int:index>", methods=["POST"])
@login_required
def review_alert(index: int) -> ResponseReturnValue:
    """Clears or reports one open alert, with a note."""
    require_role(READ_ALL_ROLES)
    form = AlertReviewForm(prefix=f"alert-{index}")
    if form.validate_on_submit() and (form.clear.data or form.report.data):
        try:
            aml.review_alert(current_actor(), form.key.data, reported=form.report.data, note=form.note.data)
        except InvalidInput as refusal:
            show_service_errors(form, refusal)
        else:
            flash(_("The alert is reported.") if form.report.data else _("The alert is cleared."), "success")
            return redirect(url_for("compliance_pages.token_alerts", **request.args))
    return render_alerts(reviewed=(form.key.data or "", form), status=400)


# ---------------------------------------------------------------- the financing report


@blp.route("/compliance/reports")
@login_required
def financing_report() -> ResponseReturnValue:
    """The financing report for the form's range (the last REPORT_MONTHS months by month at
    first): a table of the periods, two charts, and the CSV and PDF downloads."""
    require_role(READ_ALL_ROLES)
    form = ReportForm(formdata=request.args)
    report = report_of(form)
    if report is None:
        return render_template("portal/compliance_reports.html", form=form, report=None), 400
    return render_template("portal/compliance_reports.html", form=form, report=report,
                           labels=[period_name(report, figures) for figures in report.periods],
                           last_day=report.end - timedelta(days=1),
                           download_args=download_args(form), **chart_series(report))


@blp.route("/compliance/reports.csv")
@login_required
def financing_report_csv() -> ResponseReturnValue:
    """The report as CSV (reports.report_csv), an attachment."""
    return report_download(reports.report_csv, CSV_MEDIA_TYPE, "csv")


@blp.route("/compliance/reports.pdf")
@login_required
def financing_report_pdf() -> ResponseReturnValue:
    """The report as a PDF for a regulator (reports.report_pdf), an attachment."""
    return report_download(reports.report_pdf, PDF_MEDIA_TYPE, "pdf")


def report_download(render: Callable[[FinancingReport], str | bytes], media_type: str,
                    suffix: str) -> ResponseReturnValue:
    """The report the query asks for, rendered by `render`, as an attachment named after its
    range; a bad range is the report's page with the errors (400)."""
    require_role(READ_ALL_ROLES)
    form = ReportForm(formdata=request.args)
    report = report_of(form)
    if report is None:
        return render_template("portal/compliance_reports.html", form=form, report=None), 400
    return Response(render(report), mimetype=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{reports.report_filename(report, suffix)}"'})


def report_of(form: ReportForm) -> FinancingReport | None:
    """The report the form asks for; None, with the problems on its fields, for a bad range."""
    if not form.validate():
        return None
    try:
        return reports.financing_report(current_actor(), **form.arguments())
    except InvalidInput as refusal:
        show_service_errors(form, refusal)
        return None


def download_args(form: ReportForm) -> dict[str, str]:
    """The query of the report shown, for its downloads (the defaults written out)."""
    return {"start": form.start.data.isoformat(), "end": form.end.data.isoformat(), "period": form.period.data}


def period_name(report: FinancingReport, figures: reports.PeriodFigures) -> str:
    """A period as the user's language names it: "Nov 2026", "Q4 2026", "2026年第4季度"."""
    return month_name(figures.start, "yQQQ" if report.period is Period.QUARTER else "yMMM")


def chart_series(report: FinancingReport) -> dict[str, Any]:
    """The charts' figures: `volumes` (major units) and `rate_series` (the average annual rate
    and the overdue and default ratios, in percent; None where there is nothing to average)."""

    def percent(values: list[float | None]) -> list[float | None]:
        return [None if value is None else round(value * 100, 2) for value in values]

    periods = report.periods
    return {
        "volumes": [float(from_minor_units(figures.volume_minor, report.currency)) for figures in periods],
        "rate_series": [
            {"label": _("Average annual cost (%)"),
             "values": percent([figures.average_annual_rate for figures in periods])},
            {"label": _("Overdue ratio (%)"), "values": percent([figures.overdue_ratio for figures in periods])},
            {"label": _("Default ratio (%)"), "values": percent([figures.default_ratio for figures in periods])},
        ],
    }
