"""A financier's exposure limits per buyer and per supplier: what it will have at stake with
each at most (backend/services/exposure.py). An offer or a funding above a limit is refused
with 409 `exposure-limit-exceeded`."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, decimal_amount
from backend.models import Side
from backend.services import exposure
from backend.services.exposure import Exposure
from backend.services.ledger import settlement_currency

blp = Blueprint(
    "exposure",
    __name__,
    url_prefix="/api/v1/exposure-limits",
    description="A financier's limits on what it has at stake per buyer and per supplier.",
)
LIMIT_PATH = f"/<any(buyer, supplier):side>/<{ROW_ID}:counterparty_id>"


class ExposureSchema(Schema):
    counterparty_id = fields.Integer(required=True, attribute="limit.counterparty_id")
    side = fields.Enum(Side, by_value=True, required=True, attribute="limit.side")
    currency = fields.Function(lambda _: settlement_currency(), required=True, metadata={"type": "string"})
    limit = decimal_amount(lambda item: item.limit.limit_minor, lambda _: settlement_currency(), "The limit")
    limit_minor = fields.Integer(required=True, attribute="limit.limit_minor")
    at_stake = decimal_amount(lambda item: item.at_stake_minor, lambda _: settlement_currency(),
                              "The outstanding face value held unpaid or offered for now")
    at_stake_minor = fields.Integer(required=True)
    headroom_minor = fields.Integer(required=True, metadata={
        "description": "Limit minus what is at stake (negative after a limit was lowered below it)"})


class LimitSchema(Schema):
    limit = fields.String(required=True, metadata={"description": "Greater than zero, in major units: 50000.00"})
    currency = fields.String(required=True, metadata={"description": "The settlement currency (ISO 4217)"})


@blp.route("", methods=["GET"])
@blp.response(200, ExposureSchema(many=True))
@blp.doc(security=SECURITY)
def list_exposures() -> list[Exposure]:
    """The caller's limits, each with what is at stake under it now"""
    return exposure.exposures(current_actor())


@blp.route(LIMIT_PATH, methods=["PUT"])
@blp.arguments(LimitSchema)
@blp.response(200, ExposureSchema)
@blp.doc(security=SECURITY)
def set_limit(body: dict[str, Any], side: str, counterparty_id: int) -> Exposure:
    """Set or change the limit on one buyer or one supplier"""
    actor = current_actor()
    limit = exposure.set_exposure_limit(actor, counterparty_id, Side(side), **body)
    return Exposure(limit, exposure.at_stake_minor(actor.organisation.id, counterparty_id, limit.side))


@blp.route(LIMIT_PATH, methods=["DELETE"])
@blp.response(204)
@blp.doc(security=SECURITY)
def remove_limit(side: str, counterparty_id: int) -> None:
    """Remove the limit on one buyer or one supplier"""
    exposure.remove_exposure_limit(current_actor(), counterparty_id, Side(side))
