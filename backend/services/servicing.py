"""Servicing: the buyer repays a receivable to whoever holds it, the holder marks it overdue and
then defaulted, and a financier reviews what it holds (Financing.sol's servicer).

As in `backend.services.financing`, each write pre-checks the ledger's rules and queues the
matching Financing call with its audit entry in one database transaction. A repayment is a
`pending` row until the indexer records it; a receivable's delinquency moves only when the
ledger's event is read. Overdue and default are judged, as the ledger does, against the due
date's 00:00 UTC plus the deployment's GRACE_PERIOD_SECONDS (and DEFAULT_PERIOD_SECONDS).
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import contains_eager

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    Delinquency,
    EarlyPaymentOffer,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Repayment,
    RepaymentStatus,
)
from backend.models.types import total_minor
from backend.money import shown
from backend.services import audit, outbox
from backend.services.actors import Actor
from backend.services.errors import InvalidInput, InvalidState
from backend.services.financing import (
    OFFER_SUBJECT,
    REQUEST_SUBJECT,
    amount_in_minor_units,
    annualised_rate_percent,
    outstanding_minor,
    queue_ledger_call,
    raise_input_errors,
    require_settleable,
)
from backend.services.ledger import due_instant, ledger_now, ledger_seconds
from backend.services.organisations import require_participant
from backend.services.permissions import Action, authorize, get_authorized, visible_invoices
from backend.services.transaction import atomic

REPAYMENT_SUBJECT = "repayment"
INVOICE_SUBJECT = "invoice"
# What a financier's portfolio holds: receivables still owed, and those repaid in full.
HELD_STATUSES = (InvoiceStatus.CONFIRMED, InvoiceStatus.REPAID)


# ---------------------------------------------------------------- repayments


@atomic
def repay(actor: Actor, invoice_id: int, *, amount: Decimal | str, currency: str) -> Repayment:
    """The buyer pays `amount` of its payable to the receivable's current holder, in full or in
    part (Financing.repay). Repayments still pending count as paid, so the buyer can never
    queue more than it owes."""
    invoice = get_authorized(actor, Action.REPAY, Invoice, invoice_id)
    require_participant(actor.organisation)
    require_settleable(invoice)
    # The ledger pays the holder, so it must still be a participant (whatever its roles).
    require_participant(invoice.holder)

    errors: dict[str, list[str]] = {}
    amount_minor = amount_in_minor_units(amount, currency, invoice, "amount", errors)
    payable = outstanding_minor(invoice) - _pending_repayments_minor(invoice)
    if amount_minor is not None and amount_minor > payable:
        errors.setdefault("amount", []).append(
            f"more than the {shown(payable, invoice.currency)} still to pay (repayments on their way counted as paid)"
        )
    raise_input_errors(errors)

    repayment = Repayment(invoice=invoice, payer=actor.organisation, amount_minor=amount_minor,
                          status=RepaymentStatus.PENDING)
    db.session.add(repayment)
    db.session.flush()
    queue_ledger_call(
        actor,
        intent_key=f"{REPAYMENT_SUBJECT}:{repayment.id}:repay",
        function="repay",
        args=[invoice.receivable_id, amount_minor],
        invoice=invoice,
        subject_type=REPAYMENT_SUBJECT,
        subject_id=repayment.id,
    )
    audit.record(actor, Action.REPAY, REPAYMENT_SUBJECT, repayment.id, after={
        "invoice_id": invoice.id,
        "amount_minor": amount_minor,
        "status": str(repayment.status),
    })
    return repayment


def get_repayment(actor: Actor, repayment_id: int) -> Repayment:
    return get_authorized(actor, Action.VIEW_REPAYMENT, Repayment, repayment_id)


def repayments(
    actor: Actor, *, invoice_id: int | None = None, status: RepaymentStatus | None = None
) -> Select[tuple[Repayment]]:
    """The repayments of the invoices the actor may see (a buyer: its own payments), to page
    through, each with its invoice loaded."""
    authorize(actor, Action.VIEW_REPAYMENT)
    statement = (
        select(Repayment)
        .join(Repayment.invoice)
        .where(visible_invoices(actor))
        .options(contains_eager(Repayment.invoice))
    )
    if invoice_id is not None:
        statement = statement.where(Repayment.invoice_id == invoice_id)
    if status is not None:
        statement = statement.where(Repayment.status == status)
    return statement


# ---------------------------------------------------------------- delinquency


@atomic
def mark_overdue(actor: Actor, invoice_id: int) -> Invoice:
    """The holder marks its receivable overdue once the due date and the grace period have
    passed (Financing.markOverdue)."""
    return _mark_delinquency(
        actor,
        invoice_id,
        Action.MARK_OVERDUE,
        function="markOverdue",
        required=Delinquency.NONE,
        wait=timedelta(seconds=current_app.config["GRACE_PERIOD_SECONDS"]),
    )


@atomic
def mark_defaulted(actor: Actor, invoice_id: int) -> Invoice:
    """The holder marks an overdue receivable defaulted once the default period has passed too
    (Financing.markDefaulted); with recourse, the ledger records the seller's liability."""
    return _mark_delinquency(
        actor,
        invoice_id,
        Action.MARK_DEFAULTED,
        function="markDefaulted",
        required=Delinquency.OVERDUE,
        wait=timedelta(
            seconds=current_app.config["GRACE_PERIOD_SECONDS"] + current_app.config["DEFAULT_PERIOD_SECONDS"]
        ),
    )


def _mark_delinquency(
    actor: Actor, invoice_id: int, action: Action, *, function: str, required: Delinquency, wait: timedelta
) -> Invoice:
    invoice = get_authorized(actor, action, Invoice, invoice_id)
    require_participant(actor.organisation)
    if invoice.status != InvoiceStatus.CONFIRMED:
        raise InvalidState(f"the receivable is {invoice.status}, not confirmed")
    if invoice.delinquency != required:
        raise InvalidState(f"the receivable's delinquency is {invoice.delinquency}, not {required}")
    allowed_after = due_instant(invoice) + wait
    if ledger_seconds(ledger_now()) <= ledger_seconds(allowed_after):
        raise InvalidState(f"not until after {allowed_after.isoformat()} (the due date plus the servicing periods)")
    queue_ledger_call(
        actor,
        intent_key=outbox.next_attempt_key(f"{INVOICE_SUBJECT}:{invoice.id}:{function}", one_at_a_time=True),
        function=function,
        args=[invoice.receivable_id],
        invoice=invoice,
        subject_type=INVOICE_SUBJECT,
        subject_id=invoice.id,
    )
    state = {"status": str(invoice.status), "delinquency": str(invoice.delinquency)}
    audit.record(actor, action, INVOICE_SUBJECT, invoice.id, before=state, after={**state, "pending_action": function})
    return invoice


def _pending_repayments_minor(invoice: Invoice) -> int:
    return db.session.scalar(
        select(total_minor(Repayment.amount_minor)).where(
            Repayment.invoice_id == invoice.id, Repayment.status == RepaymentStatus.PENDING
        )
    )


# ---------------------------------------------------------------- the financier's portfolio


@dataclass(frozen=True)
class PortfolioTotal:
    """The sums over a portfolio's receivables in one currency, in its minor units, and their
    pooled yields (`pooled_yield_percent`)."""

    currency: str
    receivables: int
    amount_minor: int
    outstanding_minor: int
    overdue_minor: int  # outstanding on receivables overdue now
    defaulted_minor: int  # outstanding on defaulted receivables
    # Of the receivables bought through the market: over those still owed, and those repaid in
    # full (None without any).
    expected_yield_percent: Decimal | None = None
    realised_yield_percent: Decimal | None = None


@dataclass(frozen=True)
class Portfolio:
    holdings: Select[tuple[Invoice]]  # to page through
    totals: list[PortfolioTotal]  # over every holding, one per currency


def portfolio(
    actor: Actor, *, status: InvoiceStatus | None = None, delinquency: Delinquency | None = None
) -> Portfolio:
    """The receivables the financier holds, confirmed or repaid in full (or only those with
    `status`, and `delinquency`), and their totals."""
    authorize(actor, Action.VIEW_PORTFOLIO)
    if status is not None and status not in HELD_STATUSES:
        raise InvalidInput(
            f"a portfolio holds confirmed or repaid receivables, not {status}",
            errors={"status": [f"must be one of {', '.join(HELD_STATUSES)}"]},
        )
    clauses = [
        Invoice.holder_id == actor.organisation.id,
        Invoice.status.in_(HELD_STATUSES) if status is None else Invoice.status == status,
    ]
    if delinquency is not None:
        clauses.append(Invoice.delinquency == delinquency)

    outstanding = Invoice.amount_minor - Invoice.repaid_minor
    holdings = select(Invoice).where(*clauses)
    yields = list(holding_yields(actor, db.session.scalars(holdings).all()).values())
    totals = db.session.execute(
        select(
            Invoice.currency,
            func.count(Invoice.id),
            total_minor(Invoice.amount_minor),
            total_minor(outstanding),
            total_minor(case((Invoice.delinquency == Delinquency.OVERDUE, outstanding))),
            total_minor(case((Invoice.delinquency == Delinquency.DEFAULTED, outstanding))),
        )
        .where(*clauses)
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    )
    return Portfolio(
        holdings=holdings,
        totals=[
            PortfolioTotal(
                *row,
                expected_yield_percent=pooled_yield_percent(
                    entry for entry in yields
                    if entry.invoice.currency == row.currency and entry.invoice.status == InvoiceStatus.CONFIRMED
                ),
                realised_yield_percent=pooled_yield_percent(
                    (entry for entry in yields if entry.invoice.currency == row.currency), realised=True
                ),
            )
            for row in totals
        ],
    )


def overdue_holdings(actor: Actor) -> Select[tuple[Invoice]]:
    """The receivables the financier holds that are past their due date and not repaid in
    full (whether or not the ledger has marked them overdue or defaulted yet), the longest
    late first, to page through."""
    authorize(actor, Action.VIEW_PORTFOLIO)
    return (
        select(Invoice)
        .where(
            Invoice.holder_id == actor.organisation.id,
            Invoice.status == InvoiceStatus.CONFIRMED,
            Invoice.due_date < ledger_now().date(),
        )
        .order_by(Invoice.due_date, Invoice.id)
    )


def days_late(invoice: Invoice) -> int:
    """Whole days (UTC) since the receivable's due date; 0 or less before it."""
    return (ledger_now().date() - invoice.due_date).days


# ---------------------------------------------------------------- the financier's yields


@dataclass(frozen=True)
class HoldingYield:
    """What a receivable the financier bought returns on what it paid for it.

    `paid_minor` is the advance it paid: its accepted offer's, or the request's asking advance
    when it funded the request outright; `funded_on` is the day (UTC) the ledger settled that
    purchase. `received_minor` is what the buyer has repaid to it since (repayments mined in
    later blocks), `expected_minor` that plus what is still owed: what the receivable returns
    if the buyer pays in full. `repaid_on` is the day of the repayment that completed it.

        expected yield = (expected − paid) / paid × 365 / (due date − funded on) × 100 %
        realised yield = (received − paid) / paid × 365 / (repaid on − funded on) × 100 %

    simple annual rates (`financing.annualised_rate_percent`, as an offer's implied rate is);
    the realised yield only once the receivable is repaid in full, and either is None when its
    days are not positive."""

    invoice: Invoice
    paid_minor: int
    funded_on: date
    received_minor: int
    expected_minor: int
    repaid_on: date | None

    @property
    def expected_days(self) -> int:
        return (self.invoice.due_date - self.funded_on).days

    @property
    def realised_days(self) -> int | None:
        return None if self.repaid_on is None else (self.repaid_on - self.funded_on).days

    @property
    def expected_yield_percent(self) -> Decimal | None:
        return annualised_rate_percent(self.expected_minor - self.paid_minor, self.paid_minor, self.expected_days)

    @property
    def realised_yield_percent(self) -> Decimal | None:
        if self.realised_days is None:
            return None
        return annualised_rate_percent(self.received_minor - self.paid_minor, self.paid_minor, self.realised_days)


def holding_yields(actor: Actor, holdings: Sequence[Invoice]) -> dict[int, HoldingYield]:
    """The yields of those of `holdings` (the financier's, a page of `portfolio` say) that it
    bought through the market, by invoice id; one it came by otherwise (a transfer, a split)
    has none. Read from the settling ledger writes the platform sent (the outbox)."""
    authorize(actor, Action.VIEW_PORTFOLIO)
    held = {invoice.id: invoice for invoice in holdings if invoice.holder_id == actor.organisation.id}
    purchases = _purchases(actor.organisation.id, held)
    repaid_since = _repayments_since(purchases)
    yields = {}
    for invoice_id, purchase in purchases.items():
        invoice = held[invoice_id]
        received = repaid_since.get(invoice_id, [])
        received_minor = sum(amount for amount, _recorded_at in received)
        repaid_on = None
        if invoice.status == InvoiceStatus.REPAID and received:
            repaid_on = max(recorded_at for _amount, recorded_at in received).astimezone(UTC).date()
        yields[invoice_id] = HoldingYield(
            invoice=invoice,
            paid_minor=purchase.paid_minor,
            funded_on=purchase.settled_at.astimezone(UTC).date(),
            received_minor=received_minor,
            expected_minor=received_minor + outstanding_minor(invoice),
            repaid_on=repaid_on,
        )
    return yields


def pooled_yield_percent(yields: Iterable[HoldingYield], *, realised: bool = False) -> Decimal | None:
    """The yield of several holdings together (of one currency): their gains over their
    advances weighted by the days each was outstanding,

        Σ (return − paid) / Σ (paid × days) × 365 × 100 %

    (the expected return and days to the due date, or with `realised` the amount received and
    the days to full repayment, of the holdings repaid in full). Holdings whose days are not
    positive are left out; None when none is left."""
    gain = capital_days = 0
    for entry in yields:
        days = entry.realised_days if realised else entry.expected_days
        if days is None or days <= 0:
            continue
        gain += (entry.received_minor if realised else entry.expected_minor) - entry.paid_minor
        capital_days += entry.paid_minor * days
    # One day on the pooled capital-days is the same simple rate.
    return annualised_rate_percent(gain, capital_days, 1)


@dataclass(frozen=True)
class _Purchase:
    paid_minor: int
    settled_at: datetime
    block_number: int


def _purchases(financier_id: int, invoice_ids: Collection[int]) -> dict[int, _Purchase]:
    """The latest purchase by the financier of each of these receivables that the ledger
    settled: its accepted offer (the seller's acceptOffer), or its outright funding of a
    request (its own fundRequest)."""
    settled = and_(
        ChainTransaction.status == ChainTransactionStatus.MINED,
        ChainTransaction.mined_at.is_not(None),
        FinancingRequest.status == FinancingRequestStatus.FUNDED,
        FinancingRequest.invoice_id.in_(invoice_ids),
    )
    via_offer = (
        select(FinancingRequest.invoice_id, Offer.advance_minor, ChainTransaction.mined_at,
               ChainTransaction.block_number)
        .select_from(Offer)
        .join(Offer.financing_request)
        .join(ChainTransaction, and_(ChainTransaction.subject_type == OFFER_SUBJECT,
                                     ChainTransaction.subject_id == Offer.id,
                                     ChainTransaction.function == "acceptOffer"))
        .where(settled, Offer.financier_id == financier_id, Offer.status == OfferStatus.ACCEPTED)
    )
    outright = (
        select(FinancingRequest.invoice_id, FinancingRequest.asking_advance_minor, ChainTransaction.mined_at,
               ChainTransaction.block_number)
        .join(ChainTransaction, and_(ChainTransaction.subject_type == REQUEST_SUBJECT,
                                     ChainTransaction.subject_id == FinancingRequest.id,
                                     ChainTransaction.function == "fundRequest"))
        .where(settled, ChainTransaction.signer_id == financier_id)
    )
    purchases: dict[int, _Purchase] = {}
    for statement in (via_offer, outright):
        for invoice_id, paid_minor, settled_at, block_number in db.session.execute(statement):
            if invoice_id not in purchases or block_number > purchases[invoice_id].block_number:
                purchases[invoice_id] = _Purchase(paid_minor, settled_at, block_number)
    return purchases


def _repayments_since(purchases: dict[int, _Purchase]) -> dict[int, list[tuple[int, datetime]]]:
    """(amount, recorded at) of each recorded repayment of these receivables whose ledger
    write was mined in a later block than the purchase: what the buyer paid to the financier.
    An early payment settles the whole outstanding amount for less: what it paid is the cash."""
    received = func.coalesce(EarlyPaymentOffer.paid_minor, Repayment.amount_minor)
    rows = db.session.execute(
        select(Repayment.invoice_id, received, Repayment.recorded_at, ChainTransaction.block_number)
        .join(ChainTransaction, and_(ChainTransaction.subject_type == REPAYMENT_SUBJECT,
                                     ChainTransaction.subject_id == Repayment.id,
                                     ChainTransaction.function.in_(("repay", "acceptEarlyPayment"))))
        .outerjoin(EarlyPaymentOffer, EarlyPaymentOffer.repayment_id == Repayment.id)
        .where(Repayment.invoice_id.in_(purchases), Repayment.status == RepaymentStatus.RECORDED,
               Repayment.recorded_at.is_not(None), ChainTransaction.status == ChainTransactionStatus.MINED)
    )
    repaid: dict[int, list[tuple[int, datetime]]] = {}
    for invoice_id, amount_minor, recorded_at, block_number in rows:
        if block_number > purchases[invoice_id].block_number:
            repaid.setdefault(invoice_id, []).append((amount_minor, recorded_at))
    return repaid
