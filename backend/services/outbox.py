"""Intents to write to the ledger, queued as `ChainTransaction` rows for the workers.

A service adds the row in the same database transaction as the domain change it carries out,
so either both are kept or neither. The intent key names the intent (for example
`invoice:42:confirm`): it is unique, so the same intent can never be queued, and so never
sent, twice. Arguments are JSON: integers as numbers (uint256 ids as 0x-hex strings), bytes as
0x-hex strings, addresses checksummed; the worker encodes them by the function's ABI.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from backend.extensions import db
from backend.models import ChainTransaction, ContractName, Invoice, Organisation
from backend.services.errors import Duplicate


def enqueue(
    *,
    intent_key: str,
    signer: Organisation | None,
    contract: ContractName,
    function: str,
    args: list[Any],
    invoice: Invoice | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
) -> ChainTransaction:
    """Queues one transaction; `signer` None means the platform operator's key signs it."""
    if db.session.scalar(select(ChainTransaction.id).where(ChainTransaction.intent_key == intent_key)) is not None:
        raise Duplicate(f"the ledger write {intent_key!r} is already queued")
    row = ChainTransaction(
        intent_key=intent_key,
        signer=signer,
        contract=contract,
        function=function,
        args=args,
        invoice=invoice,
        subject_type=subject_type,
        subject_id=subject_id,
    )
    db.session.add(row)
    return row
