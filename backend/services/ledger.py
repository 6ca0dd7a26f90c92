"""The ledger's terms that every service judges by: the currency it settles in and its clock.

The ledger counts time in whole seconds (uint40) and reads a receivable's due date as its day's
00:00 UTC (`backend.chain.client.ledger_date`), so deadlines, expiries and due dates are compared
here as it would compare them.
"""
from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app

from backend.chain.client import ledger_date
from backend.models import Invoice, utcnow


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
