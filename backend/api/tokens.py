"""Settlement-token operations: the operator mints against deposits and burns against
withdrawals; a participant reads those for its own account, the auditor all of them.

A mint or burn is queued for the ledger, so it answers 202 with the operation (pending) and
where to poll it; the indexer marks it done once the transaction is mined.
"""
from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, decimal_amount, row_id
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.api.responses import accepted
from backend.models import TokenOperation, TokenOperationKind, TokenOperationStatus
from backend.services import organisations, tokens
from backend.services.ledger import settlement_currency
from backend.services.tokens import MAX_REFERENCE_LENGTH

blp = Blueprint(
    "token_operations",
    __name__,
    url_prefix="/api/v1/token-operations",
    description="Minting and burning the settlement token against off-chain deposits and withdrawals.",
)

OPERATIONS = {TokenOperationKind.MINT: tokens.mint, TokenOperationKind.BURN: tokens.burn}


class TokenOperationSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.Enum(TokenOperationKind, by_value=True, required=True)
    organisation_id = fields.Integer(required=True)
    amount = decimal_amount(lambda operation: operation.amount_minor, lambda operation: settlement_currency(),
                            "The amount")
    amount_minor = fields.Integer(required=True)
    currency = fields.Function(lambda operation: settlement_currency(), required=True,
                               metadata={"type": "string", "description": "The settlement currency"})
    reference = fields.String(required=True,
                              metadata={"description": "0x-hex SHA-256 of the deposit or withdrawal reference"})
    status = fields.Enum(TokenOperationStatus, by_value=True, required=True)
    created_by_id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class NewTokenOperationSchema(Schema):
    kind = fields.Enum(TokenOperationKind, by_value=True, required=True)
    organisation_id = row_id(required=True)
    amount = fields.String(required=True, metadata={"description": "In major units: 1234.56"})
    currency = fields.String(required=True, metadata={"description": "The settlement currency (ISO 4217)"})
    reference = fields.String(required=True, validate=validate.Length(max=MAX_REFERENCE_LENGTH), metadata={
        "description": "The off-chain deposit (mint) or withdrawal (burn) id; each is used once"})


class TokenOperationArgs(CursorArgs):
    organisation_id = row_id()
    kind = fields.Enum(TokenOperationKind, by_value=True)
    status = fields.Enum(TokenOperationStatus, by_value=True)


@blp.route("", methods=["POST"])
@blp.arguments(NewTokenOperationSchema)
@blp.response(202, TokenOperationSchema, description="Recorded as pending and queued for the ledger")
@blp.doc(security=SECURITY)
def create_token_operation(details: dict[str, Any]) -> Response:
    """Mint or burn settlement tokens for a participant (operator)"""
    actor = current_actor()
    organisation = organisations.get_organisation(actor, details["organisation_id"])
    operation = OPERATIONS[details["kind"]](
        actor,
        organisation,
        amount_minor=tokens.settlement_amount(details["amount"], details["currency"]),
        reference=details["reference"],
    )
    return accepted(TokenOperationSchema().dump(operation), f"{blp.url_prefix}/{operation.id}")


@blp.route("", methods=["GET"])
@blp.arguments(TokenOperationArgs, location="query")
@blp.response(200, page_schema(TokenOperationSchema))
@blp.doc(security=SECURITY)
def list_token_operations(args: dict[str, Any]) -> Page[TokenOperation]:
    """Mints and burns, oldest first (a participant sees those for its own account)"""
    statement = tokens.token_operations(current_actor(), organisation_id=args.get("organisation_id"),
                                        kind=args.get("kind"), status=args.get("status"))
    return paginate(statement, args, sort=(TokenOperation.created_at,))


@blp.route(f"/<{ROW_ID}:operation_id>", methods=["GET"])
@blp.response(200, TokenOperationSchema)
@blp.doc(security=SECURITY)
def get_token_operation(operation_id: int) -> TokenOperation:
    """One mint or burn"""
    return tokens.get_token_operation(current_actor(), operation_id)
