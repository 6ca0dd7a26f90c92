"""Early payment (dynamic discounting): the buyer offers to pay a confirmed payable early at an
annual rate of discount, revises or withdraws its offer, and the holder accepts it at the
discount it was quoted (backend.services.early_payment).

Each receivable has at most one offer, so the offer lives at the invoice's URL. Every write is
queued for the ledger and answers 202 with the offer as it stands (a new or revised offer
`pending`; a withdrawal or acceptance among its `pending_actions`). The offer comes with the live
quote: what the holder would be paid now, the discount and the days early, computed as the ledger
will compute it.
"""
from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, PendingActions, decimal_amount
from backend.api.responses import accepted
from backend.models import EarlyPaymentOffer, EarlyPaymentOfferStatus
from backend.money import from_minor_units
from backend.services import early_payment

blp = Blueprint(
    "early_payment",
    __name__,
    url_prefix="/api/v1/invoices",
    description="Early payment offers by buyers at a discount, and their acceptance by holders.",
)


def _quote_currency(quote: early_payment.EarlyPaymentQuote) -> str:
    return quote.offer.invoice.currency


def _settled_amount(attribute: str, description: str) -> fields.Field:
    """An amount the settlement recorded on the offer as a decimal string, null before it settled."""
    def shown(offer: EarlyPaymentOffer) -> str | None:
        minor = getattr(offer, attribute)
        return None if minor is None else str(from_minor_units(minor, offer.invoice.currency))

    return fields.Function(shown, required=True, allow_none=True,
                           metadata={"type": "string", "description": f"{description}, in major units: 1234.56"})


class EarlyPaymentQuoteSchema(Schema):
    at = fields.DateTime(required=True, metadata={"description": "The moment quoted (the ledger's clock)"})
    currency = fields.String(required=True, attribute="offer.invoice.currency")
    outstanding = decimal_amount(lambda quote: quote.outstanding_minor, _quote_currency, "What is owed at maturity")
    outstanding_minor = fields.Integer(required=True)
    discount = decimal_amount(lambda quote: quote.discount_minor, _quote_currency, "What the holder gives up")
    discount_minor = fields.Integer(required=True)
    paid = decimal_amount(lambda quote: quote.paid_minor, _quote_currency, "What the holder would be paid now")
    paid_minor = fields.Integer(required=True)
    seconds_to_due = fields.Integer(required=True, metadata={"description": "Until the due date's 00:00 UTC"})
    days_early = fields.Integer(required=True, metadata={"description": "Whole days before the due date"})
    annual_rate_percent = fields.Decimal(required=True, as_string=True)
    expired = fields.Boolean(required=True, metadata={"description": "Whether the offer's expiry has passed"})


class LiveQuote(fields.Nested):
    """The offer's quote at the moment it is dumped (early_payment.early_payment_quote)."""

    def __init__(self) -> None:
        super().__init__(EarlyPaymentQuoteSchema, required=True, dump_only=True,
                         metadata={"description": "Settling now, as the ledger would compute it"})

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return early_payment.early_payment_quote(obj)


class EarlyPaymentOfferSchema(Schema):
    id = fields.Integer(required=True)
    invoice_id = fields.Integer(required=True)
    receivable_id = fields.String(required=True, attribute="invoice.receivable_id")
    buyer_id = fields.Integer(required=True)
    status = fields.Enum(EarlyPaymentOfferStatus, by_value=True, required=True)
    annual_rate_bps = fields.Integer(required=True, metadata={"description": "The annual rate, in basis points"})
    annual_rate_percent = fields.Function(lambda offer: str(early_payment.annual_rate_percent(offer)),
                                          required=True, metadata={"type": "string", "description": "12.50"})
    expiry = fields.DateTime(required=True, metadata={"description": "The offer stands until then"})
    currency = fields.String(required=True, attribute="invoice.currency")
    repayment_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The repayment the holder's acceptance queued (the whole outstanding amount)"})
    paid = _settled_amount("paid_minor", "What the buyer paid the holder at settlement")
    paid_minor = fields.Integer(required=True, allow_none=True)
    discount = _settled_amount("discount_minor", "What the holder gave up at settlement")
    discount_minor = fields.Integer(required=True, allow_none=True)
    quote = LiveQuote()
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    pending_actions = PendingActions(early_payment.pending_actions)


class NewEarlyPaymentOfferSchema(Schema):
    annual_rate = fields.String(required=True, metadata={
        "description": "The annual rate of discount in percent, to two decimals: 12.5"})
    expiry = fields.AwareDateTime(required=True, metadata={
        "description": "The offer stands until then (with a time zone; no later than the due date)"})


class EarlyPaymentAcceptanceSchema(Schema):
    discount_seen = fields.String(required=True, metadata={
        "description": "The discount the holder was quoted, in the receivable's currency (0 when none is left): "
        "the most it accepts"})


@blp.route(f"/<{ROW_ID}:invoice_id>/early-payment-offer", methods=["POST"])
@blp.arguments(NewEarlyPaymentOfferSchema)
@blp.response(202, EarlyPaymentOfferSchema, description="Recorded as pending and queued for the ledger")
@blp.doc(security=SECURITY)
def offer_early_payment(terms: dict[str, Any], invoice_id: int) -> Response:
    """Offer to pay a confirmed payable early at a discount, or revise the offer (its buyer)"""
    return _accepted(early_payment.offer_early_payment(current_actor(), invoice_id, **terms))


@blp.route(f"/<{ROW_ID}:invoice_id>/early-payment-offer", methods=["GET"])
@blp.response(200, EarlyPaymentOfferSchema)
@blp.doc(security=SECURITY)
def get_early_payment_offer(invoice_id: int) -> EarlyPaymentOffer:
    """The invoice's early payment offer, with the discount if settled now"""
    return early_payment.early_payment_offer(current_actor(), invoice_id)


@blp.route(f"/<{ROW_ID}:invoice_id>/early-payment-offer", methods=["DELETE"])
@blp.response(202, EarlyPaymentOfferSchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def withdraw_early_payment(invoice_id: int) -> Response:
    """Withdraw the open early payment offer (its buyer)"""
    return _accepted(early_payment.withdraw_early_payment(current_actor(), invoice_id))


@blp.route(f"/<{ROW_ID}:invoice_id>/early-payment-offer/accept", methods=["POST"])
@blp.arguments(EarlyPaymentAcceptanceSchema)
@blp.response(202, EarlyPaymentOfferSchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def accept_early_payment(acceptance: dict[str, Any], invoice_id: int) -> Response:
    """Accept the open offer at the discount quoted at most: paid now, the receivable repaid in full (its holder)"""
    actor = current_actor()
    offer = early_payment.early_payment_offer(actor, invoice_id)
    return _accepted(early_payment.accept_early_payment(actor, offer.id, **acceptance))


def _accepted(offer: EarlyPaymentOffer) -> Response:
    return accepted(EarlyPaymentOfferSchema().dump(offer),
                    url_for(f"{blp.name}.get_early_payment_offer", invoice_id=offer.invoice_id))
