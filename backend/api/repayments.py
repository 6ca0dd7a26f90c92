"""Servicing: the buyer repays a receivable to its holder, the holder marks it overdue and then
defaulted, and a financier reviews its portfolio (with the yields of what it bought) and what
in it is past its due date.

A repayment answers 202 with the repayment (`pending` until the ledger records it); an overdue
or default mark answers 202 with the receivable's delinquency as it stands and the mark among
its `pending_actions`, and points at the invoice to poll.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from flask import Response, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, PendingActions, decimal_amount, row_id
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.api.responses import accepted
from backend.config import API_URL_PREFIX
from backend.models import Delinquency, Invoice, InvoiceStatus, Repayment, RepaymentStatus
from backend.services import financing, invoices, servicing
from backend.services.actors import Actor
from backend.services.servicing import HoldingYield

# The routes live under several collections (/invoices/<id>/..., /repayments, /portfolio), so
# the blueprint's prefix is the API's own.
# (With the slash: register_area takes only prefixes under "/api/v1/".)
blp = Blueprint(
    "servicing",
    __name__,
    url_prefix="/api/v1/",
    description="Repayments, overdue and default marks, and the financier's portfolio.",
)


class RepaymentSchema(Schema):
    id = fields.Integer(required=True)
    invoice_id = fields.Integer(required=True)
    payer_id = fields.Integer(required=True)
    status = fields.Enum(RepaymentStatus, by_value=True, required=True)
    currency = fields.String(required=True, attribute="invoice.currency")
    amount = decimal_amount(lambda repayment: repayment.amount_minor, lambda repayment: repayment.invoice.currency,
                            "The amount paid")
    amount_minor = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    recorded_at = fields.DateTime(required=True, allow_none=True, metadata={
        "description": "When the ledger's record of it was read; null while pending"})


class NewRepaymentSchema(Schema):
    amount = fields.String(required=True, metadata={"description": "At most what is still owed: 1234.56"})
    currency = fields.String(required=True, metadata={"description": "The receivable's currency (ISO 4217)"})


class DelinquencySchema(Schema):
    invoice_id = fields.Integer(required=True, attribute="id")
    status = fields.Enum(InvoiceStatus, by_value=True, required=True)
    delinquency = fields.Enum(Delinquency, by_value=True, required=True)
    pending_actions = PendingActions(invoices.pending_actions)


class HoldingYieldSchema(Schema):
    paid = decimal_amount(lambda entry: entry.paid_minor, lambda entry: entry.invoice.currency,
                          "The advance the financier paid for it")
    paid_minor = fields.Integer(required=True)
    funded_on = fields.Date(required=True, metadata={"description": "When the ledger settled the purchase (UTC)"})
    received = decimal_amount(lambda entry: entry.received_minor, lambda entry: entry.invoice.currency,
                              "What the buyer has repaid to the financier since")
    received_minor = fields.Integer(required=True)
    expected_yield_percent = fields.Decimal(required=True, allow_none=True, as_string=True, metadata={
        "description": "(received + outstanding - paid) / paid x 365 / days from funded_on to the due date x 100"})
    repaid_on = fields.Date(required=True, allow_none=True)
    realised_yield_percent = fields.Decimal(required=True, allow_none=True, as_string=True, metadata={
        "description": "Once repaid in full: (received - paid) / paid x 365 / days from funded_on to repaid_on x 100"})


class Holding(NamedTuple):
    """A receivable of the portfolio, and its yields if the financier bought it on the market."""

    invoice: Invoice
    yields: HoldingYield | None


class HoldingSchema(Schema):
    invoice_id = fields.Integer(required=True, attribute="invoice.id")
    receivable_id = fields.String(required=True, attribute="invoice.receivable_id")
    supplier_id = fields.Integer(required=True, attribute="invoice.supplier_id")
    buyer_id = fields.Integer(required=True, attribute="invoice.buyer_id")
    status = fields.Enum(InvoiceStatus, by_value=True, required=True, attribute="invoice.status")
    delinquency = fields.Enum(Delinquency, by_value=True, required=True, attribute="invoice.delinquency")
    currency = fields.String(required=True, attribute="invoice.currency")
    amount = decimal_amount(lambda holding: holding.invoice.amount_minor, lambda holding: holding.invoice.currency,
                            "The face value")
    amount_minor = fields.Integer(required=True, attribute="invoice.amount_minor")
    outstanding = decimal_amount(lambda holding: financing.outstanding_minor(holding.invoice),
                                 lambda holding: holding.invoice.currency, "What the buyer still owes")
    outstanding_minor = fields.Function(lambda holding: financing.outstanding_minor(holding.invoice), required=True,
                                        metadata={"type": "integer"})
    due_date = fields.Date(required=True, attribute="invoice.due_date")
    yields = fields.Nested(HoldingYieldSchema, required=True, allow_none=True, metadata={
        "description": "Its yields, if the financier bought it on the market (null: came by a transfer)"})


class OverdueHoldingSchema(HoldingSchema):
    days_late = fields.Function(lambda holding: servicing.days_late(holding.invoice), required=True,
                                metadata={"type": "integer", "description": "Whole days (UTC) since the due date"})


class PortfolioTotalSchema(Schema):
    currency = fields.String(required=True)
    receivables = fields.Integer(required=True)
    amount = decimal_amount(lambda total: total.amount_minor, lambda total: total.currency, "The face value")
    amount_minor = fields.Integer(required=True)
    outstanding = decimal_amount(lambda total: total.outstanding_minor, lambda total: total.currency,
                                 "What the buyers still owe")
    outstanding_minor = fields.Integer(required=True)
    overdue = decimal_amount(lambda total: total.overdue_minor, lambda total: total.currency,
                             "What is owed on receivables overdue now")
    overdue_minor = fields.Integer(required=True)
    defaulted = decimal_amount(lambda total: total.defaulted_minor, lambda total: total.currency,
                               "What is owed on defaulted receivables")
    defaulted_minor = fields.Integer(required=True)
    expected_yield_percent = fields.Decimal(required=True, allow_none=True, as_string=True, metadata={
        "description": "Pooled over the receivables still owed that were bought on the market"})
    realised_yield_percent = fields.Decimal(required=True, allow_none=True, as_string=True, metadata={
        "description": "Pooled over those repaid in full"})


class PortfolioSchema(page_schema(HoldingSchema)):  # type: ignore[misc]
    totals = fields.List(fields.Nested(PortfolioTotalSchema), required=True,
                         metadata={"description": "Over every holding (not just this page), one per currency"})


class RepaymentArgs(CursorArgs):
    invoice_id = row_id()
    status = fields.Enum(RepaymentStatus, by_value=True)


class PortfolioArgs(CursorArgs):
    status = fields.Enum(InvoiceStatus, by_value=True, metadata={"description": "confirmed or repaid"})
    delinquency = fields.Enum(Delinquency, by_value=True)


# ---------------------------------------------------------------- repayments


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/repayments", methods=["POST"])
@blp.arguments(NewRepaymentSchema)
@blp.response(202, RepaymentSchema, description="Recorded as pending and queued for the ledger")
@blp.doc(security=SECURITY)
def repay(payment: dict[str, Any], invoice_id: int) -> Response:
    """Pay (part of) a receivable to its holder (its buyer)"""
    repayment = servicing.repay(current_actor(), invoice_id, **payment)
    return accepted(RepaymentSchema().dump(repayment),
                    url_for(f"{blp.name}.get_repayment", repayment_id=repayment.id))


@blp.route("/repayments", methods=["GET"])
@blp.arguments(RepaymentArgs, location="query")
@blp.response(200, page_schema(RepaymentSchema))
@blp.doc(security=SECURITY)
def list_repayments(args: dict[str, Any]) -> Page[Repayment]:
    """Repayments of the invoices the caller sees, oldest first (a buyer: its own payments)"""
    statement = servicing.repayments(current_actor(), invoice_id=args.get("invoice_id"), status=args.get("status"))
    return paginate(statement, args)


@blp.route(f"/repayments/<{ROW_ID}:repayment_id>", methods=["GET"])
@blp.response(200, RepaymentSchema)
@blp.doc(security=SECURITY)
def get_repayment(repayment_id: int) -> Repayment:
    """One repayment"""
    return servicing.get_repayment(current_actor(), repayment_id)


# ---------------------------------------------------------------- delinquency


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/overdue", methods=["POST"])
@blp.response(202, DelinquencySchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def mark_overdue(invoice_id: int) -> Response:
    """Mark a receivable overdue, after its due date and the grace period (its holder)"""
    return _accepted_mark(servicing.mark_overdue(current_actor(), invoice_id))


@blp.route(f"/invoices/<{ROW_ID}:invoice_id>/default", methods=["POST"])
@blp.response(202, DelinquencySchema, description="Queued for the ledger")
@blp.doc(security=SECURITY)
def mark_defaulted(invoice_id: int) -> Response:
    """Mark an overdue receivable defaulted, after the default period too (its holder)"""
    return _accepted_mark(servicing.mark_defaulted(current_actor(), invoice_id))


# ---------------------------------------------------------------- portfolio


@blp.route("/portfolio", methods=["GET"])
@blp.arguments(PortfolioArgs, location="query")
@blp.response(200, PortfolioSchema)
@blp.doc(security=SECURITY)
def get_portfolio(args: dict[str, Any]) -> dict[str, Any]:
    """The receivables the financier holds, the soonest due first, with yields and totals per currency (financiers)"""
    actor = current_actor()
    portfolio = servicing.portfolio(actor, status=args.get("status"), delinquency=args.get("delinquency"))
    page = paginate(portfolio.holdings, args, sort=(Invoice.due_date,))
    return {"items": _holdings(actor, page.items), "next_cursor": page.next_cursor, "totals": portfolio.totals}


@blp.route("/portfolio/overdue", methods=["GET"])
@blp.arguments(CursorArgs, location="query")
@blp.response(200, page_schema(OverdueHoldingSchema))
@blp.doc(security=SECURITY)
def get_overdue_holdings(args: dict[str, Any]) -> dict[str, Any]:
    """Receivables the financier holds unpaid after their due date, the longest late first (financiers)"""
    actor = current_actor()
    page = paginate(servicing.overdue_holdings(actor), args, sort=(Invoice.due_date,))
    return {"items": _holdings(actor, page.items), "next_cursor": page.next_cursor}


def _holdings(actor: Actor, invoices: list[Invoice]) -> list[Holding]:
    """A page of holdings, each with its yields if the financier bought it on the market."""
    yields = servicing.holding_yields(actor, invoices)
    return [Holding(invoice, yields.get(invoice.id)) for invoice in invoices]


def _accepted_mark(invoice: Invoice) -> Response:
    return accepted(DelinquencySchema().dump(invoice), f"{API_URL_PREFIX}/invoices/{invoice.id}")
