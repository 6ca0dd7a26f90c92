"""Risk profiles: an organisation's history on the ledger as a supplier or as a buyer, and a
score whose every contribution is listed (backend/services/risk.py, docs/risk.md)."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, decimal_amount
from backend.services import risk
from backend.services.risk import RiskProfile, Side

blp = Blueprint(
    "risk",
    __name__,
    url_prefix="/api/v1/organisations",
    description="Risk profiles from ledger history, with an explained score.",
)


class ContributionSchema(Schema):
    factor = fields.String(required=True, metadata={"description": "One of: " + ", ".join(risk.SCORE_RULES)})
    measured = fields.Float(required=True, allow_none=True, metadata={
        "description": "The factor's figure (a rate, days, or a count); null while there is nothing to measure"})
    points = fields.Float(required=True, metadata={"description": "What the factor adds to the score (or takes)"})
    rule = fields.String(required=True, metadata={"description": "How the points follow from the figure"})


class RiskProfileSchema(Schema):
    organisation_id = fields.Integer(required=True)
    side = fields.Enum(Side, by_value=True, required=True)
    currency = fields.String(required=True, metadata={"description": "The settlement currency, the only one counted"})
    receivables = fields.Integer(required=True, metadata={"description": "Confirmed receivables, as issued"})
    volume = decimal_amount(lambda profile: profile.volume_minor, lambda profile: profile.currency,
                            "Their face value")
    volume_minor = fields.Integer(required=True)
    matured = fields.Integer(required=True, metadata={"description": "Receivables past due, or repaid"})
    on_time = fields.Integer(required=True, metadata={"description": "Of those, repaid in full by the due date"})
    on_time_rate = fields.Float(required=True, allow_none=True)
    average_days_late = fields.Float(required=True, allow_none=True)
    answered = fields.Integer(required=True, metadata={"description": "Invoices confirmed or disputed"})
    disputed = fields.Integer(required=True)
    dispute_rate = fields.Float(required=True, allow_none=True)
    largest_counterparty_id = fields.Integer(required=True, allow_none=True)
    concentration = fields.Float(required=True, allow_none=True, metadata={
        "description": "The largest counterparty's share of the volume"})
    tenure_days = fields.Integer(required=True)
    score = fields.Integer(required=True, metadata={"description": "0 to 100: the sum of the contributions"})
    contributions = fields.List(fields.Nested(ContributionSchema), required=True)


class SideArgs(Schema):
    side = fields.Enum(Side, by_value=True, required=True, metadata={
        "description": "The organisation as the supplier of its invoices, or as their buyer"})


@blp.route(f"/<{ROW_ID}:organisation_id>/risk-profile", methods=["GET"])
@blp.arguments(SideArgs, location="query")
@blp.response(200, RiskProfileSchema)
@blp.doc(security=SECURITY)
def get_risk_profile(args: dict[str, Any], organisation_id: int) -> RiskProfile:
    """An organisation's risk profile (financiers, the operator and the auditor: any; others: their own)"""
    return risk.risk_profile(current_actor(), organisation_id, args["side"])
