"""The financing report by month or quarter (backend/services/reports.py), as JSON, as CSV and
as a PDF for a regulator; for the operator and the auditor."""
from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import decimal_amount
from backend.services import reports
from backend.services.ledger import settlement_currency
from backend.services.reports import FinancingReport, Period

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description="Financing volume, small suppliers financed, days to cash, financing cost, overdue and default.",
)


def _amount(name: str, description: str) -> fields.Field:
    return decimal_amount(lambda figures: getattr(figures, f"{name}_minor"), lambda _: settlement_currency(),
                          description)


class PeriodFiguresSchema(Schema):
    label = fields.String(required=True, metadata={"description": "2026-11, or 2026-Q4"})
    start = fields.Date(required=True)
    end = fields.Date(required=True, metadata={"description": "The day after the period"})
    fundings = fields.Integer(required=True)
    volume = _amount("volume", "Advances paid to sellers")
    face = _amount("face", "Face value of the receivables financed")
    small_suppliers = fields.Integer(required=True, metadata={
        "description": "Distinct sellers financed that are not core enterprises"})
    average_days_to_cash = fields.Float(required=True, allow_none=True)
    average_annual_rate = fields.Float(required=True, allow_none=True, metadata={
        "description": "Advance-weighted annualised financing cost: 0.12 is 12 % a year"})
    due = _amount("due", "Face value of the receivables falling due in the period")
    overdue = _amount("overdue", "Of which overdue now")
    defaulted = _amount("defaulted", "Of which defaulted now")
    overdue_ratio = fields.Float(required=True, allow_none=True)
    default_ratio = fields.Float(required=True, allow_none=True)


class FinancingReportSchema(Schema):
    currency = fields.String(required=True)
    period = fields.Enum(Period, by_value=True, required=True)
    start = fields.Date(required=True)
    end = fields.Date(required=True, metadata={"description": "The day after the last period"})
    generated_at = fields.DateTime(required=True)
    periods = fields.List(fields.Nested(PeriodFiguresSchema), required=True)


class ReportArgs(Schema):
    start = fields.Date(required=True, metadata={"description": "A day in the first period"})
    end = fields.Date(required=True, metadata={"description": "A day in the last period"})
    period = fields.Enum(Period, by_value=True, load_default=Period.MONTH)


def _report(args: dict[str, Any]) -> FinancingReport:
    return reports.financing_report(current_actor(), **args)


def _attachment(report: FinancingReport, body: str | bytes, media_type: str, suffix: str) -> Response:
    return Response(body, mimetype=media_type, headers={
        "Content-Disposition": f'attachment; filename="{reports.report_filename(report, suffix)}"'})


@blp.route("/financing", methods=["GET"])
@blp.arguments(ReportArgs, location="query")
@blp.response(200, FinancingReportSchema)
@blp.doc(security=SECURITY)
def financing_report(args: dict[str, Any]) -> FinancingReport:
    """The financing report, one entry per period"""
    return _report(args)


@blp.route("/financing.csv", methods=["GET"])
@blp.arguments(ReportArgs, location="query")
@blp.response(200, content_type="text/csv", description="The report as CSV, one row per period")
@blp.doc(security=SECURITY)
def financing_report_csv(args: dict[str, Any]) -> Response:
    """The financing report as CSV"""
    report = _report(args)
    return _attachment(report, reports.report_csv(report), "text/csv", "csv")


@blp.route("/financing.pdf", methods=["GET"])
@blp.arguments(ReportArgs, location="query")
@blp.response(200, content_type="application/pdf", description="The report as a PDF for a regulator")
@blp.doc(security=SECURITY)
def financing_report_pdf(args: dict[str, Any]) -> Response:
    """The financing report as a PDF"""
    report = _report(args)
    return _attachment(report, reports.report_pdf(report), "application/pdf", "pdf")
