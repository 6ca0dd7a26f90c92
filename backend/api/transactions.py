"""Ledger writes (the transaction outbox): what a call queued, and how the ledger answered.

Every write the API accepts with 202 becomes one of these; its status moves from queued to
signed, sent, and then mined, reverted (with the contract's custom error) or failed. A write
batched into another's transaction shows `batched` and the carrying transaction's id. An
organisation sees the writes its key signs; the operator and the auditor see all of them.
"""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, row_id
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.models import ChainTransaction, ChainTransactionStatus, ContractName
from backend.services import transactions

blp = Blueprint(
    "transactions",
    __name__,
    url_prefix="/api/v1/transactions",
    description="Ledger writes on their way and how the ledger answered them.",
)


class TransactionSchema(Schema):
    id = fields.Integer(required=True)
    intent_key = fields.String(required=True, metadata={
        "description": "What the write is for, unique: invoice:42:confirm"})
    contract = fields.Enum(ContractName, by_value=True, required=True)
    function = fields.String(required=True)
    status = fields.Enum(ChainTransactionStatus, by_value=True, required=True)
    signer_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "The organisation whose key signs; null for the platform operator"})
    tx_hash = fields.String(required=True, allow_none=True, metadata={
        "description": "Once signed: the transaction's hash (the one mined, once it is)"})
    nonce = fields.Integer(required=True, allow_none=True)
    block_number = fields.Integer(required=True, allow_none=True)
    error_name = fields.String(required=True, allow_none=True, metadata={
        "description": "The contract's custom error when the ledger refused the write: NotConfirmed"})
    error = fields.String(required=True, allow_none=True)
    carried_by = fields.Integer(required=True, allow_none=True, attribute="carried_by_id", metadata={
        "description": "For a batched write: the id of the transaction that carries it"})
    invoice_id = fields.Integer(required=True, allow_none=True)
    subject_type = fields.String(required=True, allow_none=True)
    subject_id = fields.Integer(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(required=True, allow_none=True, metadata={"description": "The last broadcast"})
    mined_at = fields.DateTime(required=True, allow_none=True)


class TransactionArgs(CursorArgs):
    status = fields.Enum(ChainTransactionStatus, by_value=True)
    subject_type = fields.String(validate=validate.Length(min=1, max=50))
    subject_id = row_id()
    invoice_id = row_id()


@blp.route("", methods=["GET"])
@blp.arguments(TransactionArgs, location="query")
@blp.response(200, page_schema(TransactionSchema))
@blp.doc(security=SECURITY)
def list_transactions(args: dict[str, Any]) -> Page[ChainTransaction]:
    """Ledger writes the caller may see, oldest first, matching every filter given"""
    filters = {name: args[name] for name in ("status", "subject_type", "subject_id", "invoice_id") if name in args}
    return paginate(transactions.transactions(current_actor(), **filters), args)


@blp.route(f"/<{ROW_ID}:transaction_id>", methods=["GET"])
@blp.response(200, TransactionSchema)
@blp.doc(security=SECURITY)
def get_transaction(transaction_id: int) -> ChainTransaction:
    """One ledger write"""
    return transactions.get_transaction(current_actor(), transaction_id)
