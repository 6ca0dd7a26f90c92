"""Servicing: the buyer repays a receivable to whoever holds it, the holder marks it overdue and
then defaulted, and a financier reviews what it holds (Financing.sol's servicer).

As in `backend.services.financing`, each write pre-checks the ledger's rules and queues the
matching Financing call with its audit entry in one database transaction. A repayment is a
`pending` row until the indexer records it; a receivable's delinquency moves only when the
ledger's event is read. Overdue and default are judged, as the ledger does, against the due
date's 00:00 UTC plus the deployment's GRACE_PERIOD_SECONDS (and DEFAULT_PERIOD_SECONDS).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import contains_eager

from backend.extensions import db
from backend.models import Delinquency, Invoice, InvoiceStatus, Repayment, RepaymentStatus
from backend.models.types import total_minor
from backend.services import audit, outbox
from backend.services.actors import Actor
from backend.services.errors import InvalidInput, InvalidState
from backend.services.financing import (
    amount_in_minor_units,
    outstanding_minor,
    queue_ledger_call,
    raise_input_errors,
    require_settleable,
    shown,
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
    """The sums over a portfolio's receivables in one currency, in its minor units."""

    currency: str
    receivables: int
    amount_minor: int
    outstanding_minor: int
    overdue_minor: int  # outstanding on receivables overdue now
    defaulted_minor: int  # outstanding on defaulted receivables


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
        holdings=select(Invoice).where(*clauses),
        totals=[PortfolioTotal(*row) for row in totals],
    )
