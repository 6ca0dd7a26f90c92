"""The financing report for monitoring and for a regulator (issue 6 §5): by month or quarter,
from the ledger's data as indexed.

Per period:
- fundings: receivables financed (a FinancingSettled event: an accepted offer or a request
  funded at its asking terms) in the period, by when the funding was mined; their advances
  (volume) and face values;
- small suppliers financed: the distinct sellers among them that are not core enterprises
  (organisations without the buyer role);
- average days to cash: from the invoice's issue date to its funding;
- average financing cost: the annualised rate of each funding — discount ÷ advance × 365 ÷
  days from funding to the due date (at least 1), discount = face value − advance, as
  financing.offer_terms states it to the seller — averaged weighted by advance;
- overdue and default ratios: of the face value of the receivables (split parts, not their
  parents) falling due in the period, the share now overdue, and now defaulted.
Only the settlement currency is financed, so every amount is in it.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum

from fpdf import FPDF
from sqlalchemy import and_, select

from backend.extensions import db
from backend.models import (
    ContractName,
    Delinquency,
    Invoice,
    InvoiceStatus,
    Organisation,
    Role,
)
from backend.money import from_minor_units
from backend.services.actors import Actor
from backend.services.errors import InvalidInput
from backend.services.invoices import receivable_hex
from backend.services.ledger import ledger_now, settlement_currency, timed_events
from backend.services.permissions import Action, authorize

MAX_PERIODS = 60
# The periods end on the first day of the month after them, which a date must be able to name.
LAST_REPORTABLE_MONTH = date(9999, 10, 1)


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"


@dataclass
class PeriodFigures:
    label: str  # 2026-11, or 2026-Q4
    start: date
    end: date  # exclusive
    fundings: int = 0
    volume_minor: int = 0  # advances paid
    face_minor: int = 0
    small_suppliers: int = 0
    average_days_to_cash: float | None = None
    average_annual_rate: float | None = None  # 0.12 is 12 % a year
    due_minor: int = 0
    overdue_minor: int = 0
    defaulted_minor: int = 0
    _sellers: set[int] = field(default_factory=set, repr=False)
    _days_to_cash: int = field(default=0, repr=False)
    _weighted_rate: float = field(default=0.0, repr=False)

    @property
    def overdue_ratio(self) -> float | None:
        return self.overdue_minor / self.due_minor if self.due_minor else None

    @property
    def default_ratio(self) -> float | None:
        return self.defaulted_minor / self.due_minor if self.due_minor else None


@dataclass(frozen=True)
class FinancingReport:
    currency: str
    period: Period
    start: date
    end: date  # exclusive
    periods: list[PeriodFigures]
    generated_at: datetime


def financing_report(actor: Actor, *, start: date, end: date, period: Period = Period.MONTH) -> FinancingReport:
    """The report for the periods from the one holding `start` to the one holding `end`
    (inclusive), for the operator and the auditor."""
    authorize(actor, Action.VIEW_REPORTS)
    if end < start:
        raise InvalidInput("the report's end is before its start", errors={"end": ["must not be before start"]})
    if end >= LAST_REPORTABLE_MONTH:
        raise InvalidInput("the report's end is too far ahead",
                           errors={"end": [f"before {LAST_REPORTABLE_MONTH.isoformat()}"]})
    periods = _periods(start, end, period)
    if len(periods) > MAX_PERIODS:
        raise InvalidInput(f"a report covers at most {MAX_PERIODS} periods",
                           errors={"start": [f"at most {MAX_PERIODS} {period}s before the end"]})
    first, last = periods[0].start, periods[-1].end
    currency = settlement_currency()
    _add_fundings(periods, first, last, currency)
    _add_maturities(periods, first, last, currency)
    return FinancingReport(currency, period, first, last, periods, ledger_now())


def _periods(start: date, end: date, period: Period) -> list[PeriodFigures]:
    months = 3 if period is Period.QUARTER else 1
    month = (start.month - 1) // months * months + 1
    cursor = date(start.year, month, 1)
    periods = []
    while cursor <= end:
        following = date(cursor.year + (cursor.month - 1 + months) // 12, (cursor.month - 1 + months) % 12 + 1, 1)
        label = (f"{cursor.year}-Q{(cursor.month - 1) // 3 + 1}" if period is Period.QUARTER
                 else f"{cursor.year}-{cursor.month:02d}")
        periods.append(PeriodFigures(label, cursor, following))
        cursor = following
        if len(periods) > MAX_PERIODS:
            break
    return periods


def _period_of(periods: list[PeriodFigures], day: date) -> PeriodFigures | None:
    return next((figures for figures in periods if figures.start <= day < figures.end), None)


def _add_fundings(periods: list[PeriodFigures], first: date, last: date, currency: str) -> None:
    settled = timed_events(ContractName.FINANCING, "FinancingSettled")
    funded_at = list(settled.selected_columns)[-1]  # the mined time, after the event's columns
    # Only the report's own fundings: not every funding ever, with its invoice, for one month.
    in_range = settled.where(funded_at >= datetime.combine(first, time(), UTC),
                             funded_at < datetime.combine(last, time(), UTC))
    rows = [(event.args, moment) for event, moment in db.session.execute(in_range)]
    sellers = {args["seller"] for args, _ in rows}
    # The sellers that count as small suppliers, by ledger address: not core enterprises.
    small = {organisation.chain_address: organisation.id for organisation in db.session.scalars(
        select(Organisation).where(Organisation.chain_address.in_(sellers))) if not organisation.roles & Role.BUYER}
    invoices = {invoice.receivable_id: invoice for invoice in db.session.scalars(
        select(Invoice).where(Invoice.receivable_id.in_([receivable_hex(int(args["id"])) for args, _ in rows])))}
    for args, moment in rows:
        funded_on = moment.date()
        figures = _period_of(periods, funded_on) if first <= funded_on < last else None
        invoice = invoices.get(receivable_hex(int(args["id"])))
        if figures is None or invoice is None or invoice.currency != currency:
            continue
        advance = int(args["advance"])
        figures.fundings += 1
        figures.volume_minor += advance
        figures.face_minor += invoice.amount_minor
        if args["seller"] in small:
            figures._sellers.add(small[args["seller"]])
        figures._days_to_cash += (funded_on - invoice.issue_date).days
        tenor = max(1, (invoice.due_date - funded_on).days)
        figures._weighted_rate += (invoice.amount_minor - advance) * 365 / tenor
    for figures in periods:
        figures.small_suppliers = len(figures._sellers)
        if figures.fundings:
            figures.average_days_to_cash = figures._days_to_cash / figures.fundings
            figures.average_annual_rate = figures._weighted_rate / figures.volume_minor


def _add_maturities(periods: list[PeriodFigures], first: date, last: date, currency: str) -> None:
    rows = db.session.execute(
        select(Invoice.due_date, Invoice.amount_minor, Invoice.delinquency)
        .where(and_(Invoice.due_date >= first, Invoice.due_date < last, Invoice.currency == currency,
                    Invoice.status.in_((InvoiceStatus.CONFIRMED, InvoiceStatus.REPAID))))
    ).all()
    for due_date, amount_minor, delinquency in rows:
        figures = _period_of(periods, due_date)
        if figures is None:
            continue
        figures.due_minor += amount_minor
        if delinquency == Delinquency.OVERDUE:
            figures.overdue_minor += amount_minor
        elif delinquency == Delinquency.DEFAULTED:
            figures.defaulted_minor += amount_minor


# ---------------------------------------------------------------- exports

CSV_COLUMNS = ("period", "start", "end", "currency", "fundings", "volume", "face_value", "small_suppliers_financed",
               "average_days_to_cash", "average_annual_rate_percent", "due", "overdue", "defaulted",
               "overdue_ratio_percent", "default_ratio_percent")


def report_rows(report: FinancingReport) -> Iterator[list[str]]:
    """The report as table rows of text: a header, then one row per period (amounts in major
    units, rates and ratios in percent with two decimals, blank where there is nothing to average)."""
    yield list(CSV_COLUMNS)
    for figures in report.periods:
        yield [figures.label, figures.start.isoformat(), figures.end.isoformat(), report.currency,
               str(figures.fundings), _major(figures.volume_minor, report.currency),
               _major(figures.face_minor, report.currency), str(figures.small_suppliers),
               _decimal(figures.average_days_to_cash), _percent(figures.average_annual_rate),
               _major(figures.due_minor, report.currency), _major(figures.overdue_minor, report.currency),
               _major(figures.defaulted_minor, report.currency), _percent(figures.overdue_ratio),
               _percent(figures.default_ratio)]


def report_filename(report: FinancingReport, suffix: str) -> str:
    """The name a downloaded report is saved under: its scope and format."""
    return f"anchorline-financing-{report.start.isoformat()}-{report.end.isoformat()}.{suffix}"


def report_csv(report: FinancingReport) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(report_rows(report))
    return out.getvalue()


def report_pdf(report: FinancingReport) -> bytes:
    """The report as a landscape A4 PDF: its scope, the table, and how each figure is defined."""
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_title("Anchorline financing report")
    pdf.set_creator("Anchorline")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 10, "Anchorline - supply-chain financing report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, f"Periods: {report.period}s from {report.start.isoformat()} to {report.end.isoformat()} "
                   f"(exclusive). Currency: {report.currency}. Generated {report.generated_at.isoformat()} UTC.",
             new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    headings = ["Period", "Fundings", "Volume", "Face value", "Small suppliers", "Days to cash",
                "Annual rate %", "Due", "Overdue %", "Default %"]
    columns = (0, 4, 5, 6, 7, 8, 9, 10, 13, 14)
    pdf.set_font("Helvetica", size=8)
    with pdf.table(text_align="RIGHT", first_row_as_headings=True) as table:
        table.row(headings)
        rows = report_rows(report)
        next(rows)
        for row in rows:
            table.row([row[index] or "-" for index in columns])
    pdf.ln(4)
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(0, 4, _definitions())
    return bytes(pdf.output())


def _definitions() -> str:
    return ("Volume: advances paid to sellers. Small suppliers: distinct sellers financed that are not core "
            "enterprises. Days to cash: from the invoice's issue date to its funding. Annual rate: "
            "discount / advance x 365 / days from funding to maturity, weighted by advance. Overdue and default: "
            "share of the face value falling due in the period that is now overdue, or defaulted. Source: the "
            "events of the permissioned ledger, as indexed.")


def _major(minor_units: int, currency: str) -> str:
    return str(from_minor_units(minor_units, currency))


def _decimal(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.2f}"
