"""The figures a participant's dashboard opens with: its invoices by status, the organisations
by KYC status. Reads only, under the same visibility rules as every list."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, cast, func, select

from backend.extensions import db
from backend.models import InvoiceStatus, KycStatus, Organisation
from backend.services.actors import Actor
from backend.services.financing import financeable
from backend.services.invoices import Perspective, invoice_query
from backend.services.permissions import Action, authorize


@dataclass(frozen=True)
class InvoiceTotal:
    """How many of the invoices in one status and currency there are, and their face value."""

    status: InvoiceStatus
    currency: str
    count: int
    amount_minor: int


@dataclass(frozen=True)
class KycTotal:
    status: KycStatus
    count: int
    suspended: int


def invoice_totals(actor: Actor, perspective: Perspective | None = None) -> list[InvoiceTotal]:
    """The invoices the actor may see (from `perspective`, when given: its receivables, its
    payables or its holdings), counted and summed by status and currency."""
    invoices = invoice_query(actor, perspective=perspective).subquery()
    rows = db.session.execute(
        select(invoices.c.status, invoices.c.currency, func.count(), func.sum(invoices.c.amount_minor))
        .group_by(invoices.c.status, invoices.c.currency)
        .order_by(invoices.c.status, invoices.c.currency)
    )
    return [InvoiceTotal(InvoiceStatus(status), currency, count, int(amount)) for status, currency, count, amount in rows]


def kyc_totals(actor: Actor) -> list[KycTotal]:
    """Every organisation counted by KYC status, with how many of each are suspended."""
    authorize(actor, Action.VIEW_ORGANISATION)
    suspended = func.sum(cast(Organisation.suspended, Integer))
    rows = db.session.execute(
        select(Organisation.kyc_status, func.count(), suspended)
        .group_by(Organisation.kyc_status)
        .order_by(Organisation.kyc_status)
    )
    return [KycTotal(KycStatus(status), count, int(suspended_count or 0)) for status, count, suspended_count in rows]


def financeable_count(actor: Actor) -> int:
    """How many financing requests are open to the financier's offers (its marketplace)."""
    requests = financeable(actor).subquery()
    return db.session.scalar(select(func.count()).select_from(requests))
