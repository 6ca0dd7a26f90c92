"""The figures a participant's dashboard opens with: its invoices by status, the organisations
by KYC status, the supplier's settlement-token balance and its days from invoice to cash, the
next maturities, and the buyer's maturity calendar. Reads only, under the same visibility rules
as every list."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Integer, cast, func, select

from backend.extensions import db
from backend.models import (
    ChainEvent,
    ContractName,
    Invoice,
    InvoiceStatus,
    KycStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
)
from backend.services import tokens
from backend.services.actors import Actor
from backend.services.financing import financeable, outstanding_minor
from backend.services.invoices import Perspective, invoice_query, receivable_hex
from backend.services.ledger import ledger_now, timed_events
from backend.services.permissions import Action, authorize

# How many of the next maturities a dashboard lists.
UPCOMING_MATURITIES = 5
# How many months (the current one included) the days from invoice to cash go back.
DAYS_TO_CASH_MONTHS = 12


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


@dataclass(frozen=True)
class CurrencyTotal:
    """A sum of amounts in one currency, in its minor units."""

    currency: str
    amount_minor: int


@dataclass(frozen=True)
class CashReceipt:
    """When a supplier was paid for one receivable it issued: `paid_on`, the day of the advance
    when it sold the receivable, else of the repayment that settled it in full; `days` from the
    invoice's issue date to then."""

    invoice: Invoice
    paid_on: date
    financed: bool

    @property
    def days(self) -> int:
        return (self.paid_on - self.invoice.issue_date).days


@dataclass(frozen=True)
class DaysToCash:
    """The receivables paid in one month (`month`, its first day) and their average days from
    invoice to cash, to a tenth of a day."""

    month: date
    receivables: int
    average_days: Decimal


@dataclass(frozen=True)
class MaturityDay:
    """The confirmed payables falling due on `day` and what is still to pay on them, by currency."""

    day: date
    payables: list[Invoice]
    totals: list[CurrencyTotal]


@dataclass(frozen=True)
class MaturityCalendar:
    """A month (`month`, its first day) of the buyer's confirmed payables: each day that has
    any, and the month's totals still to pay, by currency."""

    month: date
    days: dict[date, MaturityDay]
    totals: list[CurrencyTotal]

    @property
    def payables(self) -> int:
        return sum(len(day.payables) for day in self.days.values())


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


# ---------------------------------------------------------------- the supplier's cash


def settlement_balance(actor: Actor) -> int:
    """The settlement tokens the actor's organisation holds, in minor units, as the indexer has
    added them up (tokens.balances); 0 when it has held none."""
    return next((balance for organisation, balance in tokens.balances(actor)
                 if organisation.id == actor.organisation.id), 0)


def cash_receipts(actor: Actor, since: date) -> list[CashReceipt]:
    """The receivables the actor's organisation issued and was paid for on `since` or later, in
    the order it was paid, from the indexed ledger: sold (a FinancingSettled event names the
    organisation as its seller: the advance came the day the first was mined), or held
    to the end and repaid in full (the day of its last recorded repayment, the time of its
    block). A receivable it passed on unpaid (transferred, or a part of a split) paid it
    nothing it can see, and is not counted."""
    receivables = invoice_query(actor, perspective=Perspective.SUPPLIER)
    sold_on = _first_sales(actor)
    sold_since = sorted(receivable for receivable, day in sold_on.items() if day >= since)
    receipts = [CashReceipt(invoice, sold_on[invoice.receivable_id], financed=True) for invoice in
                db.session.scalars(receivables.where(Invoice.receivable_id.in_(sold_since)))] if sold_since else []
    repaid = select(Repayment.invoice_id, func.max(Repayment.recorded_at).label("paid_at")).where(
        Repayment.status == RepaymentStatus.RECORDED).group_by(Repayment.invoice_id).subquery()
    for invoice, paid_at in db.session.execute(
        receivables.add_columns(repaid.c.paid_at).join(repaid, repaid.c.invoice_id == Invoice.id).where(
            Invoice.status == InvoiceStatus.REPAID, Invoice.holder_id == actor.organisation.id,
            repaid.c.paid_at >= datetime.combine(since, time.min, UTC))
    ):
        if invoice.receivable_id not in sold_on:  # paid when sold, not again when repaid
            receipts.append(CashReceipt(invoice, paid_at.date(), financed=False))
    return sorted(receipts, key=lambda receipt: (receipt.paid_on, receipt.invoice.id))


def _first_sales(actor: Actor) -> dict[str, date]:
    """The day each receivable the actor's organisation sold was first sold (the FinancingSettled
    event naming it the seller was mined: ledger.timed_events), by receivable id."""
    address = actor.organisation.chain_address
    if address is None:
        return {}
    sold_on: dict[str, date] = {}
    for event, sold_at in db.session.execute(
        timed_events(ContractName.FINANCING, "FinancingSettled")
        .where(ChainEvent.args["seller"].as_string() == address)
        .order_by(ChainEvent.block_number, ChainEvent.log_index)
    ):
        sold_on.setdefault(receivable_hex(int(event.args["id"])), sold_at.date())
    return sold_on


def days_to_cash(actor: Actor, months: int = DAYS_TO_CASH_MONTHS) -> list[DaysToCash]:
    """The average days from invoice to cash (cash_receipts) by the month the cash came, over
    the last `months` months (UTC) the current one included, oldest first; a month in which
    no receivable was paid is left out."""
    by_month: dict[date, list[int]] = defaultdict(list)
    for receipt in cash_receipts(actor, since=start_of_last_months(months)):
        by_month[receipt.paid_on.replace(day=1)].append(receipt.days)
    return [DaysToCash(month, len(days), (Decimal(sum(days)) / len(days)).quantize(Decimal("0.1"), ROUND_HALF_UP))
            for month, days in sorted(by_month.items())]


def start_of_last_months(months: int) -> date:
    """The first day of the earliest of the last `months` months (UTC), the current one included."""
    return shift_month(ledger_now().date(), 1 - months)


def shift_month(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s (before it, when negative)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# ---------------------------------------------------------------- maturities


def upcoming_maturities(actor: Actor, perspective: Perspective, limit: int = UPCOMING_MATURITIES) -> list[Invoice]:
    """The actor's confirmed invoices from `perspective` (its receivables, its payables) that
    fall due today (UTC) or later, soonest first: at most `limit`."""
    statement = invoice_query(actor, status=InvoiceStatus.CONFIRMED, perspective=perspective,
                              due_from=ledger_now().date())
    return list(db.session.scalars(statement.order_by(Invoice.due_date, Invoice.id).limit(limit)))


def maturity_calendar(actor: Actor, month: date) -> MaturityCalendar:
    """The buyer's confirmed payables falling due in the month of `month`, day by day, with
    what is still to pay on them (the face value less what is repaid) by day and in all, in
    each currency."""
    first = month.replace(day=1)
    last = shift_month(first, 1) - timedelta(days=1)
    payables = list(db.session.scalars(
        invoice_query(actor, status=InvoiceStatus.CONFIRMED, perspective=Perspective.BUYER, due_from=first, due_to=last)
        .order_by(Invoice.due_date, Invoice.id)))
    by_day: dict[date, list[Invoice]] = defaultdict(list)
    for invoice in payables:
        by_day[invoice.due_date].append(invoice)
    days = {day: MaturityDay(day, invoices, currency_totals(invoices)) for day, invoices in by_day.items()}
    return MaturityCalendar(first, days, currency_totals(payables))


def currency_totals(invoices: list[Invoice]) -> list[CurrencyTotal]:
    """What is still to pay on `invoices`, summed by currency (in alphabetical order)."""
    sums: dict[str, int] = defaultdict(int)
    for invoice in invoices:
        sums[invoice.currency] += outstanding_minor(invoice)
    return [CurrencyTotal(currency, amount) for currency, amount in sorted(sums.items())]
