"""Servicing: the buyer repays a receivable to its holder, the holder marks it overdue and then
defaulted, and a financier reviews its portfolio.

A repayment answers 202 with the repayment (`pending` until the ledger records it); an overdue
or default mark answers 202 with the receivable's delinquency as it stands and the mark among
its `pending_actions`, and points at the invoice to poll.
"""
from __future__ import annotations

from typing import Any

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


class HoldingSchema(Schema):
    invoice_id = fields.Integer(required=True, attribute="id")
    receivable_id = fields.String(required=True)
    supplier_id = fields.Integer(required=True)
    buyer_id = fields.Integer(required=True)
    status = fields.Enum(InvoiceStatus, by_value=True, required=True)
    delinquency = fields.Enum(Delinquency, by_value=True, required=True)
    currency = fields.String(required=True)
    amount = decimal_amount(lambda invoice: invoice.amount_minor, lambda invoice: invoice.currency, "The face value")
    amount_minor = fields.Integer(required=True)
    outstanding = decimal_amount(financing.outstanding_minor, lambda invoice: invoice.currency,
                                 "What the buyer still owes")
    outstanding_minor = fields.Function(financing.outstanding_minor, required=True, metadata={"type": "integer"})
    due_date = fields.Date(required=True)


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
    """The receivables the financier holds, the soonest due first, with totals per currency (financiers)"""
    portfolio = servicing.portfolio(current_actor(), status=args.get("status"), delinquency=args.get("delinquency"))
    page = paginate(portfolio.holdings, args, sort=(Invoice.due_date,))
    return {"items": page.items, "next_cursor": page.next_cursor, "totals": portfolio.totals}


def _accepted_mark(invoice: Invoice) -> Response:
    return accepted(DelinquencySchema().dump(invoice), f"{API_URL_PREFIX}/invoices/{invoice.id}")
