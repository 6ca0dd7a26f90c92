"""Alerts on settlement-token movements for review (backend/services/aml.py): the operator and
the auditor read them, the operator clears or reports each."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import decimal_amount
from backend.services import aml
from backend.services.aml import AlertKind, AmlAlert, MovementKind
from backend.services.ledger import settlement_currency

blp = Blueprint(
    "aml",
    __name__,
    url_prefix="/api/v1/aml-alerts",
    description="Large and structured settlement-token movements, for review.",
)


class MovementSchema(Schema):
    kind = fields.Enum(MovementKind, by_value=True, required=True)
    account = fields.String(required=True)
    counterparty = fields.String(required=True, metadata={"description": "The zero address for a mint or a burn"})
    amount = decimal_amount(lambda movement: movement.amount_minor, lambda _: settlement_currency(), "The amount")
    at = fields.DateTime(required=True, metadata={"description": "When its transaction was mined"})
    tx_hash = fields.String(required=True)
    log_index = fields.Integer(required=True)


class AlertSchema(Schema):
    key = fields.String(required=True, metadata={"description": "Names the alert's kind and transactions"})
    kind = fields.Enum(AlertKind, by_value=True, required=True)
    account = fields.String(required=True)
    organisation_id = fields.Integer(required=True, allow_none=True)
    total = decimal_amount(lambda alert: alert.total_minor, lambda _: settlement_currency(), "All its movements")
    status = fields.String(required=True, metadata={"description": "open, cleared or reported"})
    note = fields.Function(lambda alert: alert.review.note if alert.review else None, allow_none=True,
                           metadata={"type": "string"})
    reviewed_at = fields.Function(lambda alert: alert.review.reviewed_at.isoformat() if alert.review else None,
                                  allow_none=True, metadata={"type": "string", "format": "date-time"})
    movements = fields.List(fields.Nested(MovementSchema), required=True)


class AlertArgs(Schema):
    status = fields.String(validate=validate.OneOf(["open", "cleared", "reported"]))


class ReviewSchema(Schema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=300))
    decision = fields.String(required=True, validate=validate.OneOf(["clear", "report"]), metadata={
        "description": "clear: an ordinary payment; report: reported to the financial intelligence unit"})
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))


@blp.route("", methods=["GET"])
@blp.arguments(AlertArgs, location="query")
@blp.response(200, AlertSchema(many=True))
@blp.doc(security=SECURITY)
def list_alerts(args: dict[str, Any]) -> list[AmlAlert]:
    """Alerts, oldest first (operator, auditor)"""
    return aml.token_alerts(current_actor(), status=args.get("status"))


@blp.route("/review", methods=["POST"])
@blp.arguments(ReviewSchema)
@blp.response(200, AlertSchema)
@blp.doc(security=SECURITY)
def review_alert(review: dict[str, Any]) -> AmlAlert:
    """Clear or report an open alert, saying why (operator)"""
    return aml.review_alert(current_actor(), review["key"], reported=review["decision"] == "report",
                            note=review["note"])
