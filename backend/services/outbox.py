"""Intents to write to the ledger, queued as `ChainTransaction` rows for the workers.

A service adds the row in the same database transaction as the domain change it carries out,
so either both are kept or neither. The intent key names the intent (for example
`invoice:42:confirm`): it is unique, so the same intent can never be queued, and so never
sent, twice. A write that may be made more than once (a revision, another attempt after the
ledger refused one) numbers its attempts: `<intent>:1`, `<intent>:2`, and so on. Arguments are
JSON: integers as numbers (uint256 ids as 0x-hex strings), bytes as 0x-hex strings, addresses
checksummed; the worker encodes them by the function's ABI.

A queued row is in flight until the ledger has answered it and the answer is in the
projections: queued, signed or sent, or mined in a block the indexer has not applied yet. Until
then the object it changes still shows the state before it, and the same write is not queued
again.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import aliased

from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus, ContractName, IndexerCursor, Invoice, Organisation
from backend.services.errors import Duplicate

# The key in the session's info that marks a transaction as having queued ledger writes: its
# commit nudges the workers (workers/celery_app.py listens for commits).
OUTBOX_NUDGE = "outbox_nudge"
# Ledger writes on their way: queued, signed or sent, not yet mined, reverted or failed.
IN_FLIGHT = (ChainTransactionStatus.QUEUED, ChainTransactionStatus.SIGNED, ChainTransactionStatus.SENT)


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
    db.session.info[OUTBOX_NUDGE] = True
    return row


def _awaiting_ledger(row: Any) -> ColumnElement[bool]:
    """`row` (the outbox table or an alias of it) is on its way, or mined in a block the
    indexer has not applied yet (none, before anything is indexed)."""
    indexed_to = select(func.min(IndexerCursor.block_number)).scalar_subquery()
    return or_(
        row.status.in_(IN_FLIGHT),
        and_(row.status == ChainTransactionStatus.MINED, or_(indexed_to.is_(None), row.block_number > indexed_to)),
    )


def in_flight_clause() -> ColumnElement[bool]:
    """Outbox rows in flight (see the module docstring); a row batched into another's
    transaction is in flight while that transaction is."""
    carrier = aliased(ChainTransaction)
    carried_in_flight = select(carrier.id).where(carrier.id == ChainTransaction.carried_by_id,
                                                 _awaiting_ledger(carrier)).exists()
    return or_(_awaiting_ledger(ChainTransaction),
               and_(ChainTransaction.status == ChainTransactionStatus.BATCHED, carried_in_flight))


def in_flight(*criteria: ColumnElement[bool]) -> list[ChainTransaction]:
    """The rows matching `criteria` that are in flight, oldest first."""
    return list(db.session.scalars(
        select(ChainTransaction).where(*criteria, in_flight_clause()).order_by(ChainTransaction.id)))


def next_attempt_key(intent: str, *, one_at_a_time: bool = False) -> str:
    """The intent key of the next attempt at `intent`: `<intent>:<n>`, n counting the attempts
    queued so far. With `one_at_a_time` it is a duplicate while an earlier attempt is in flight;
    once each has been answered and indexed, the write may be queued again (a reverted one
    must be, to be done at all)."""
    # One statement, so the count and the in-flight check see the same rows: two callers at
    # once either both pick the same next key (and the unique intent key refuses one) or the
    # later one sees the earlier one's row in flight.
    earlier = db.session.execute(
        select(in_flight_clause()).where(ChainTransaction.intent_key.startswith(f"{intent}:", autoescape=True))
    ).scalars().all()
    if one_at_a_time and any(earlier):
        raise Duplicate(f"{intent} is already queued")
    return f"{intent}:{len(earlier) + 1}"
