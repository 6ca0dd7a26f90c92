"""Financing: holders ask for advances on confirmed receivables, financiers browse the market,
offer or fund outright, and the seller accepts an offer.

Every write is queued for the ledger: it answers 202 with the object as it stands (a new
request or offer `pending`; a cancellation, withdrawal, acceptance or funding listed among its
`pending_actions`) and a Location to poll; the state moves on once the ledger's event is read.
Amounts are decimal strings of major units with their currency; responses add the minor units.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Response, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, PendingActions, decimal_amount, row_id
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.api.responses import accepted
from backend.api.risk import RiskProfileSchema
from backend.models import FinancingRequest, FinancingRequestStatus, Offer, OfferStatus, Side
from backend.services import financing, risk
from backend.services.financing import FinanceableFilters
from backend.services.ledger import settlement_currency

# The routes live under several collections (/invoices/<id>/..., /financing-requests,
# /offers, /financeable), so the blueprint's prefix is the API's own.
# (With the slash: register_area takes only prefixes under "/api/v1/".)
blp = Blueprint(
    "financing",
    __name__,
    url_prefix="/api/v1/",
    description="Financing requests, offers, acceptance and outright funding; the financier's market.",
)

class FinancingRequestSchema(Schema):
    id = fields.Integer(required=True)
    invoice_id = fields.Integer(required=True)
    receivable_id = fields.String(required=True, attribute="invoice.receivable_id")
    seller_id = fields.Integer(required=True)
    status = fields.Enum(FinancingRequestStatus, by_value=True, required=True)
    round = fields.Integer(required=True, allow_none=True, metadata={"description": "The ledger's, once open"})
    currency = fields.String(required=True, attribute="invoice.currency")
    asking_advance = decimal_amount(lambda request: request.asking_advance_minor,
                                    lambda request: request.invoice.currency, "The least advance asked")
    asking_advance_minor = fields.Integer(required=True)
    deadline = fields.DateTime(required=True, metadata={"description": "Open to offers until then"})
    recourse = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    pending_actions = PendingActions(financing.pending_actions)


class OfferSchema(Schema):
    id = fields.Integer(required=True)
    financing_request_id = fields.Integer(required=True)
    financier_id = fields.Integer(required=True)
    status = fields.Enum(OfferStatus, by_value=True, required=True)
    currency = fields.String(required=True, attribute="financing_request.invoice.currency")
    advance = decimal_amount(lambda offer: offer.advance_minor,
                             lambda offer: offer.financing_request.invoice.currency, "The advance offered")
    advance_minor = fields.Integer(required=True)
    expiry = fields.DateTime(required=True, metadata={"description": "The offer stands until then"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class OfferDetailSchema(OfferSchema):
    pending_actions = PendingActions(financing.pending_actions)


class NewFinancingRequestSchema(Schema):
    asking_advance = fields.String(required=True, metadata={"description": "The least advance asked: 1234.56"})
    currency = fields.String(required=True, metadata={"description": "The receivable's currency (ISO 4217)"})
    deadline = fields.AwareDateTime(required=True, metadata={
        "description": "Open to offers until then (with a time zone; before the due date)"})
    recourse = fields.Boolean(required=True, metadata={
        "description": "Whether the seller stays liable for what the buyer fails to pay"})


class NewOfferSchema(Schema):
    advance = fields.String(required=True, metadata={
        "description": "At least the asking advance, at most what is outstanding: 1234.56"})
    currency = fields.String(required=True, metadata={"description": "The receivable's currency (ISO 4217)"})
    expiry = fields.AwareDateTime(required=True, metadata={
        "description": "The offer stands until then (with a time zone; no later than the request's deadline)"})


class AcceptanceSchema(Schema):
    advance = fields.String(required=True, metadata={
        "description": "The advance the seller saw; if the offer has changed since, nothing is accepted"})
    currency = fields.String(required=True, metadata={"description": "The receivable's currency (ISO 4217)"})


class PartySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)


class SupplierHistorySchema(Schema):
    confirmed = fields.Integer(required=True, metadata={"description": "Invoices its buyers confirmed"})
    repaid = fields.Integer(required=True, metadata={"description": "Invoices repaid in full"})
    overdue = fields.Integer(required=True, metadata={"description": "Invoices overdue now"})
    defaulted = fields.Integer(required=True, metadata={"description": "Invoices defaulted"})
    volume = decimal_amount(lambda history: history.volume_minor, lambda history: settlement_currency(),
                            "The face value of its confirmed invoices in the settlement currency")
    volume_minor = fields.Integer(required=True)


class FinanceableSchema(Schema):
    financing_request_id = fields.Integer(required=True, attribute="request.id")
    invoice_id = fields.Integer(required=True, attribute="invoice.id")
    receivable_id = fields.String(required=True, attribute="invoice.receivable_id")
    buyer = fields.Nested(PartySchema, required=True, attribute="invoice.buyer")
    supplier = fields.Nested(PartySchema, required=True, attribute="invoice.supplier")
    currency = fields.String(required=True, attribute="invoice.currency")
    amount = decimal_amount(lambda entry: entry.invoice.amount_minor, lambda entry: entry.invoice.currency,
                            "The face value")
    amount_minor = fields.Integer(required=True, attribute="invoice.amount_minor")
    outstanding = decimal_amount(lambda entry: financing.outstanding_minor(entry.invoice),
                                 lambda entry: entry.invoice.currency, "What the buyer still owes")
    outstanding_minor = fields.Function(lambda entry: financing.outstanding_minor(entry.invoice), required=True,
                                        metadata={"type": "integer"})
    due_date = fields.Date(required=True, attribute="invoice.due_date")
    tenor_days = fields.Integer(required=True, metadata={"description": "Days from today to the due date"})
    asking_advance = decimal_amount(lambda entry: entry.request.asking_advance_minor,
                                    lambda entry: entry.invoice.currency, "The least advance asked")
    asking_advance_minor = fields.Integer(required=True, attribute="request.asking_advance_minor")
    deadline = fields.DateTime(required=True, attribute="request.deadline")
    recourse = fields.Boolean(required=True, attribute="request.recourse")
    supplier_history = fields.Nested(SupplierHistorySchema, required=True)
    supplier_risk = fields.Nested(RiskProfileSchema, required=True, metadata={
        "description": "The supplier's risk profile as a supplier: the score and each factor's contribution"})
    buyer_risk = fields.Nested(RiskProfileSchema, required=True, metadata={
        "description": "The buyer's risk profile as a buyer"})


class FinanceableArgs(CursorArgs):
    buyer_id = row_id()
    supplier_id = row_id()
    due_from = fields.Date(metadata={"description": "Due on or after this day"})
    due_to = fields.Date(metadata={"description": "Due on or before this day"})
    amount_min = fields.String(metadata={"description": "Face value at least this (settlement currency): 1000.00"})
    amount_max = fields.String(metadata={"description": "Face value at most this (settlement currency)"})


class OfferArgs(CursorArgs):
    financing_request_id = row_id()
    status = fields.Enum(OfferStatus, by_value=True)


# ---------------------------------------------------------------- requests


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/financing-requests", methods=["POST"])
@blp.arguments(NewFinancingRequestSchema)
@blp.response(202, FinancingRequestSchema, description="Recorded as pending and queued for the ledger")
@blp.doc(security=SECURITY)
def request_financing(terms: dict[str, Any], invoice_id: int) -> Response:
    """Ask for an advance on a confirmed receivable (its holder)"""
    request = financing.request_financing(current_actor(), invoice_id, **terms)
    return _accepted_request(request)


@blp.route(f"/financing-requests/<{ROW_ID}:request_id>", methods=["GET"])
@blp.response(200, FinancingRequestSchema)
@blp.doc(security=SECURITY)
def get_financing_request(request_id: int) -> FinancingRequest:
    """One financing request"""
    return financing.get_financing_request(current_actor(), request_id)


@blp.route(f"/financing-requests/<{ROW_ID}:request_id>/cancel", methods=["POST"])
@blp.response(202, FinancingRequestSchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def cancel_financing_request(request_id: int) -> Response:
    """Withdraw an open request; its offers lapse (its seller)"""
    return _accepted_request(financing.cancel_financing_request(current_actor(), request_id))


@blp.route(f"/financing-requests/<{ROW_ID}:request_id>/fund", methods=["POST"])
@blp.response(202, FinancingRequestSchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def fund_request(request_id: int) -> Response:
    """Fund an open request outright at its asking advance (a financier)"""
    return _accepted_request(financing.fund_request(current_actor(), request_id))


# ---------------------------------------------------------------- offers


@blp.route(f"/financing-requests/<{ROW_ID}:request_id>/offers", methods=["POST"])
@blp.arguments(NewOfferSchema)
@blp.response(202, OfferDetailSchema, description="Recorded as pending and queued for the ledger")
@blp.doc(security=SECURITY)
def make_offer(terms: dict[str, Any], request_id: int) -> Response:
    """Offer an advance, or revise the offer already made (a financier)"""
    return _accepted_offer(financing.make_offer(current_actor(), request_id, **terms))


@blp.route("/offers", methods=["GET"])
@blp.arguments(OfferArgs, location="query")
@blp.response(200, page_schema(OfferSchema))
@blp.doc(security=SECURITY)
def list_offers(args: dict[str, Any]) -> Page[Offer]:
    """Offers, oldest first: a financier's own, or those on the caller's requests"""
    statement = financing.offers(current_actor(), financing_request_id=args.get("financing_request_id"),
                                 status=args.get("status"))
    return paginate(statement, args)


@blp.route(f"/offers/<{ROW_ID}:offer_id>", methods=["GET"])
@blp.response(200, OfferDetailSchema)
@blp.doc(security=SECURITY)
def get_offer(offer_id: int) -> Offer:
    """One offer"""
    return financing.get_offer(current_actor(), offer_id)


@blp.route(f"/offers/<{ROW_ID}:offer_id>/withdraw", methods=["POST"])
@blp.response(202, OfferDetailSchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def withdraw_offer(offer_id: int) -> Response:
    """Withdraw an open offer (its financier)"""
    return _accepted_offer(financing.withdraw_offer(current_actor(), offer_id))


@blp.route(f"/offers/<{ROW_ID}:offer_id>/accept", methods=["POST"])
@blp.arguments(AcceptanceSchema)
@blp.response(202, OfferDetailSchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def accept_offer(acceptance: dict[str, Any], offer_id: int) -> Response:
    """Accept an offer at the advance seen: the advance and the receivable change hands (the seller)"""
    return _accepted_offer(financing.accept_offer(current_actor(), offer_id, **acceptance))


# ---------------------------------------------------------------- the market


@blp.route("/financeable", methods=["GET"])
@blp.arguments(FinanceableArgs, location="query")
@blp.response(200, page_schema(FinanceableSchema))
@blp.doc(security=SECURITY)
def list_financeable(args: dict[str, Any]) -> dict[str, Any]:
    """Receivables open for financing, the soonest deadline first, with their suppliers' histories and both
    parties' risk profiles (financiers)"""
    actor = current_actor()
    filters = FinanceableFilters(
        buyer_id=args.get("buyer_id"),
        supplier_id=args.get("supplier_id"),
        due_from=args.get("due_from"),
        due_to=args.get("due_to"),
        amount_min=args.get("amount_min"),
        amount_max=args.get("amount_max"),
    )
    page = paginate(financing.financeable(actor, filters), args, sort=(FinancingRequest.deadline,))
    entries = financing.describe_financeable(actor, page.items)
    profiles = risk.profiles_of_parties(actor, [entry.invoice for entry in entries])
    items = [SimpleNamespace(**vars(entry), supplier_risk=profiles[Side.SUPPLIER][entry.invoice.supplier_id],
                             buyer_risk=profiles[Side.BUYER][entry.invoice.buyer_id]) for entry in entries]
    return {"items": items, "next_cursor": page.next_cursor}


def _accepted_request(request: FinancingRequest) -> Response:
    return accepted(FinancingRequestSchema().dump(request),
                    url_for(f"{blp.name}.get_financing_request", request_id=request.id))


def _accepted_offer(offer: Offer) -> Response:
    return accepted(OfferDetailSchema().dump(offer), url_for(f"{blp.name}.get_offer", offer_id=offer.id))
