"""Fraud and double-financing signals, each with its evidence (backend/services/fraud.py): all
of them for the operator and the auditor, those on one invoice for whoever may see it."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, row_id
from backend.services import fraud
from backend.services.fraud import Flag, FlagKind

# The routes live under two collections (/fraud-flags and /invoices/<id>/...).
blp = Blueprint(
    "fraud",
    __name__,
    url_prefix="/api/v1/",
    description="Fraud and double-financing signals with their evidence.",
)


class FlagSchema(Schema):
    kind = fields.Enum(FlagKind, by_value=True, required=True)
    invoice_ids = fields.List(fields.Integer(), required=True)
    organisation_ids = fields.List(fields.Integer(), required=True)
    summary = fields.String(required=True)
    evidence = fields.Dict(required=True, metadata={"description": "The figures behind the flag; by kind"})


class FlagArgs(Schema):
    kind = fields.Enum(FlagKind, by_value=True)
    organisation_id = row_id(metadata={"description": "Only the flags about this organisation"})


@blp.route("/fraud-flags", methods=["GET"])
@blp.arguments(FlagArgs, location="query")
@blp.response(200, FlagSchema(many=True))
@blp.doc(security=SECURITY)
def list_flags(args: dict[str, Any]) -> list[Flag]:
    """Every flag (the operator and the auditor)"""
    return fraud.fraud_flags(current_actor(), **args)


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/fraud-flags", methods=["GET"])
@blp.response(200, FlagSchema(many=True))
@blp.doc(security=SECURITY)
def invoice_flags(invoice_id: int) -> list[Flag]:
    """The flags on one invoice (a financier: without the other parties' invoices)"""
    return fraud.flags_on_invoice(current_actor(), invoice_id)
