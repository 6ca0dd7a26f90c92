"""The ledger's terms that every service judges by: the currency it settles in and its clock.

The ledger counts time in whole seconds (uint40) and reads a receivable's due date as its day's
00:00 UTC (`backend.chain.client.ledger_date`), so deadlines, expiries and due dates are compared
here as it would compare them.
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select

from backend.chain.client import ledger_date
from backend.models import ChainEvent, ChainTransaction, ContractName, Invoice, utcnow
from backend.models.types import UTCDateTime


def settlement_currency() -> str:
    """The currency of the deployment's settlement token: the only one financed, repaid, minted
    and burned."""
    return current_app.config["SETTLEMENT_CURRENCY"]


def ledger_now() -> datetime:
    """The current time to the whole second, as the ledger's clock would read it."""
    return utcnow().replace(microsecond=0)


def ledger_seconds(moment: datetime) -> int:
    """`moment` as the ledger's clock counts it: whole seconds since the epoch."""
    return int(moment.timestamp())


def due_instant(invoice: Invoice) -> datetime:
    """When the ledger considers the receivable due: 00:00 UTC of its due date."""
    return datetime.fromtimestamp(ledger_date(invoice.due_date), UTC)


def timed_events(contract: ContractName, event: str) -> Select[tuple[ChainEvent, datetime]]:
    """The indexed `event`s of `contract`, each with when its transaction was mined (the outbox's
    receipt); an event of a write made outside Anchorline has no outbox row and takes the time it
    was indexed. Events carry no block time of their own."""
    mined_at: Any = func.coalesce(ChainTransaction.mined_at, ChainEvent.applied_at, type_=UTCDateTime())
    return (select(ChainEvent, mined_at)
            .outerjoin(ChainTransaction, ChainTransaction.tx_hash == ChainEvent.tx_hash)
            .where(ChainEvent.contract == contract, ChainEvent.event == event))
