"""Fields every area module shares: row ids in paths, bodies and filters; amounts as decimal
strings of major units; the ledger writes still on their way for an object."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, validate

from backend.models import ChainTransaction, ChainTransactionStatus
from backend.models.types import MAX_ROW_ID
from backend.money import from_minor_units

# The URL converter of a row id in a path (`/<{ROW_ID}:invoice_id>`): beyond the database's
# integer columns there is nothing to find, so a larger id is a 404 like any unknown one.
ROW_ID = f"int(max={MAX_ROW_ID})"


def row_id(**kwargs: Any) -> fields.Integer:
    """A field holding an object's row id, in a body or a query's filters."""
    return fields.Integer(validate=validate.Range(min=1, max=MAX_ROW_ID), **kwargs)


def decimal_amount(minor_units: Callable[[Any], int], currency: Callable[[Any], str], description: str) -> fields.Field:
    """A response field: an amount in minor units shown as a decimal string in its currency."""
    return fields.Function(
        lambda obj: str(from_minor_units(minor_units(obj), currency(obj))),
        required=True,
        metadata={"type": "string", "description": f"{description}, in major units: 1234.56"},
    )


class PendingActionSchema(Schema):
    function = fields.String(required=True, metadata={
        "description": "The ledger function on its way (of ReceivableRegistry or Financing)"})
    status = fields.Enum(ChainTransactionStatus, by_value=True, required=True)


class PendingActions(fields.List):
    """The ledger writes still in flight for the object being dumped (queued, signed or sent,
    not yet answered), as `source` finds them: its state moves on once they are mined."""

    def __init__(self, source: Callable[[Any], list[ChainTransaction]]) -> None:
        super().__init__(fields.Nested(PendingActionSchema), required=True, dump_only=True)
        self.source = source

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return self.source(obj)
