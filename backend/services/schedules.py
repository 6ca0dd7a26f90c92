"""What the calendar does to receivables and financing, run by the schedule workers
(workers/schedules.py): announce due and soon-maturing payables, mark unpaid receivables overdue
and then defaulted, expire financing requests and lapse offers, and reconcile the database
against the ledger.

Every function here finds its own work in the database, judges time by the ledger's clock
(`backend.services.ledger`), and is idempotent and safe to run twice at once:
- announcements are webhook events whose keys name what happened (`invoice:<id>:due`), so
  `publish` adds each delivery once;
- ledger writes go through the outbox with numbered attempt keys, one in flight at a time, and
  a write the ledger refused is tried again only after RETRY_REFUSED_AFTER (it would otherwise
  be queued, and refused, on every beat);
- offers lapse with a conditional UPDATE, so only one run records each.

Overdue and default are the holder's calls on the ledger (Financing.markOverdue/markDefaulted
accept only the current holder), so the platform queues them signed with the holder's key, as
`backend.services.servicing` does when the holder asks; the audit entries name the schedule in
their request id. Expiring a request is open to anyone after its deadline: the operator's key
signs it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from flask import current_app
from sqlalchemy import ColumnElement, Select, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from web3.exceptions import Web3Exception

from backend.chain.client import LedgerClient
from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    FinancingRequest,
    FinancingRequestStatus,
    IndexerCursor,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    ReconciliationRun,
    ReconciliationStatus,
    TokenBalance,
    WebhookEndpoint,
    utcnow,
)
from backend.services import audit, financing, outbox, servicing, webhooks
from backend.services.actors import Actor
from backend.services.errors import Duplicate, ServiceError
from backend.services.ledger import due_instant, ledger_now, ledger_seconds
from backend.services.transaction import atomic

logger = logging.getLogger(__name__)

# A ledger write the schedule queued and the ledger refused (or that could not be sent) is
# queued again only after this long.
RETRY_REFUSED_AFTER = timedelta(hours=1)
# Rows a schedule reads per query; a run goes through every row that needs it.
BATCH = 500
# The request id of the schedules' audit entries.
SCHEDULE_REQUEST_ID = "schedule"
ENDED_UNSUCCESSFULLY = (ChainTransactionStatus.REVERTED, ChainTransactionStatus.FAILED)

M = TypeVar("M")


def _each(statement: Select[tuple[M]], model: type[M]) -> Iterator[M]:
    """Every row `statement` selects, BATCH at a time in id order: rows a rule skips (a holder
    who cannot act, a write on its way) never keep later rows from their turn. The caller may
    commit or roll back between rows."""
    after = 0
    while True:
        rows = db.session.scalars(statement.where(model.id > after).order_by(model.id).limit(BATCH)).all()
        if not rows:
            return
        after = rows[-1].id
        yield from rows


def _has_endpoint(*organisation_columns: Any) -> ColumnElement[bool]:
    """Whether any of the organisations in `organisation_columns` has an active endpoint: no
    other would receive an announcement, so its rows are not even read."""
    return exists().where(WebhookEndpoint.active.is_(True),
                          WebhookEndpoint.organisation_id.in_(organisation_columns))


# ---------------------------------------------------------------- announcements


def announce_due_invoices() -> int:
    """Publishes `invoice.due` once for each confirmed receivable whose due date has come and
    that is still unpaid (and not yet overdue), to its buyer, holder and supplier. Returns how
    many deliveries were added."""
    today = ledger_now().date()
    invoices = select(Invoice).where(
        Invoice.status == InvoiceStatus.CONFIRMED, Invoice.delinquency == Delinquency.NONE, Invoice.due_date <= today,
        _has_endpoint(Invoice.buyer_id, Invoice.holder_id, Invoice.supplier_id),
    )
    return _announce(invoices, lambda invoice: webhooks.publish(
        "invoice.due", organisations=(invoice.buyer, invoice.holder, invoice.supplier),
        payload=invoice_payload(invoice), event_key=f"invoice:{invoice.id}:due"))


def send_maturity_reminders() -> int:
    """Publishes `invoice.maturity_reminder` once to the buyer of each confirmed, unpaid payable
    due within MATURITY_REMINDER_DAYS (but not yet due). Returns how many deliveries were added."""
    today = ledger_now().date()
    horizon = today + timedelta(days=current_app.config["MATURITY_REMINDER_DAYS"])
    invoices = select(Invoice).where(
        Invoice.status == InvoiceStatus.CONFIRMED, Invoice.delinquency == Delinquency.NONE,
        Invoice.due_date > today, Invoice.due_date <= horizon, _has_endpoint(Invoice.buyer_id),
    )
    return _announce(invoices, lambda invoice: webhooks.publish(
        "invoice.maturity_reminder", organisations=[invoice.buyer],
        payload={**invoice_payload(invoice), "days_to_maturity": (invoice.due_date - today).days},
        event_key=f"invoice:{invoice.id}:maturity_reminder"))


def _announce(invoices: Select[tuple[Invoice]], publish: Callable[[Invoice], int]) -> int:
    """Publishes for each invoice selected, in one transaction; returns the deliveries added. A
    concurrent run that adds the same deliveries first wins (endpoint and event id are unique),
    and this one then adds nothing: the next run picks up whatever is left."""
    try:
        added = sum(publish(invoice) for invoice in _each(invoices, Invoice))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return 0
    return added


def invoice_payload(invoice: Invoice) -> dict[str, Any]:
    """What a schedule's webhook event says about a receivable."""
    return {
        "invoice_id": invoice.id,
        "receivable_id": invoice.receivable_id,
        "status": str(invoice.status),
        "supplier_id": invoice.supplier_id,
        "buyer_id": invoice.buyer_id,
        "holder_id": invoice.holder_id,
        "currency": invoice.currency,
        "amount_minor": invoice.amount_minor,
        "outstanding_minor": financing.outstanding_minor(invoice),
        "due_date": invoice.due_date.isoformat(),
    }


# ---------------------------------------------------------------- overdue and default


def mark_delinquent_invoices() -> list[int]:
    """Queues markOverdue for each confirmed receivable past its due date and the grace period,
    and markDefaulted for each overdue one past the default period too, signed by its holder.
    Skips receivables with the write in flight or refused within RETRY_REFUSED_AFTER, and
    holders that cannot act (suspended, not approved, off the ledger). Returns the ids of the
    invoices a write was queued for."""
    now = ledger_now()
    grace = timedelta(seconds=current_app.config["GRACE_PERIOD_SECONDS"])
    default = timedelta(seconds=current_app.config["DEFAULT_PERIOD_SECONDS"])
    queued = []
    for delinquency, wait, mark, function in (
        (Delinquency.NONE, grace, servicing.mark_overdue, "markOverdue"),
        (Delinquency.OVERDUE, grace + default, servicing.mark_defaulted, "markDefaulted"),
    ):
        candidates = select(Invoice).where(Invoice.status == InvoiceStatus.CONFIRMED,
                                           Invoice.delinquency == delinquency,
                                           Invoice.due_date <= (now - wait).date())
        for invoice in _each(candidates, Invoice):
            if not ledger_seconds(now) > ledger_seconds(due_instant(invoice) + wait):
                continue  # due today, but not yet past the second the ledger allows
            intent = f"{servicing.INVOICE_SUBJECT}:{invoice.id}:{function}"
            if _refused_recently(intent, now):
                continue
            try:
                mark(Actor(organisation=invoice.holder, request_id=SCHEDULE_REQUEST_ID), invoice.id)
            except (ServiceError, IntegrityError) as refusal:
                # In flight already (queued by a concurrent run, too), or the holder cannot act now.
                logger.debug("%s of invoice %s not queued: %s", function, invoice.id, refusal)
                continue
            queued.append(invoice.id)
    db.session.rollback()  # end the reads' transaction (each mark committed its own)
    return queued


def _refused_recently(intent: str, now: datetime) -> bool:
    """Whether an attempt at `intent` ended unsuccessfully within RETRY_REFUSED_AFTER."""
    return db.session.scalar(
        select(func.count(ChainTransaction.id)).where(
            ChainTransaction.intent_key.startswith(f"{intent}:", autoescape=True),
            ChainTransaction.status.in_(ENDED_UNSUCCESSFULLY),
            ChainTransaction.updated_at > now - RETRY_REFUSED_AFTER,
        )
    ) > 0


# ---------------------------------------------------------------- expiry


def expire_financing_requests() -> list[int]:
    """Queues Financing.expireRequest, signed by the operator, for each open request past its
    deadline with no write on its way that would close it; returns the requests' ids."""
    now = ledger_now()
    requests = select(FinancingRequest).where(FinancingRequest.status == FinancingRequestStatus.OPEN,
                                              FinancingRequest.deadline < now)
    queued = []
    for request in _each(requests, FinancingRequest):
        if not ledger_seconds(now) > ledger_seconds(request.deadline):
            continue
        intent = f"{financing.REQUEST_SUBJECT}:{request.id}:expire"
        if _refused_recently(intent, now):
            continue
        try:
            _queue_expiry(request.id, intent)
        except (ServiceError, IntegrityError) as refusal:  # on its way already
            logger.debug("expiry of financing request %s not queued: %s", request.id, refusal)
            continue
        queued.append(request.id)
    db.session.rollback()
    return queued


@atomic
def _queue_expiry(request_id: int, intent: str) -> None:
    request = db.session.get(FinancingRequest, request_id, with_for_update=True, populate_existing=True)
    if request is None or request.status != FinancingRequestStatus.OPEN:
        return
    if financing.pending_actions(request):
        raise Duplicate(f"financing request {request.id} has a ledger write on its way")
    row = outbox.enqueue(
        intent_key=outbox.next_attempt_key(intent, one_at_a_time=True),
        signer=None,
        contract=ContractName.FINANCING,
        function="expireRequest",
        args=[request.invoice.receivable_id],
        invoice=request.invoice,
        subject_type=financing.REQUEST_SUBJECT,
        subject_id=request.id,
    )
    audit.record(None, "financing.expire", financing.REQUEST_SUBJECT, request.id,
                 after={"status": str(request.status), "pending_action": row.function})


def lapse_expired_offers() -> list[int]:
    """Marks open offers past their expiry LAPSED (the ledger refuses to settle them anyway),
    unless an acceptance is on its way (it may have been mined in time: the indexer decides),
    and tells the financier and the seller. Returns the offers' ids."""
    now = ledger_now()
    offers = select(Offer).where(Offer.status == OfferStatus.OPEN, Offer.expiry < now)
    lapsed = [offer.id for offer in _each(offers, Offer)
              if ledger_seconds(now) > ledger_seconds(offer.expiry) and _lapse(offer.id)]
    db.session.rollback()
    return lapsed


@atomic
def _lapse(offer_id: int) -> bool:
    offer = db.session.get(Offer, offer_id)
    if offer is None or financing.pending_actions(offer):
        return False
    changed = db.session.execute(
        update(Offer).where(Offer.id == offer_id, Offer.status == OfferStatus.OPEN)
        .values(status=OfferStatus.LAPSED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not changed:  # another run lapsed it, or the indexer settled it, first
        return False
    db.session.refresh(offer)
    audit.record(None, "offer.lapse", financing.OFFER_SUBJECT, offer.id,
                 before={"status": str(OfferStatus.OPEN)}, after={"status": str(offer.status)})
    request = offer.financing_request
    webhooks.publish("financing.expired", organisations=(offer.financier, request.seller),
                     payload={"offer_id": offer.id, "financing_request_id": request.id,
                              "invoice_id": request.invoice_id, "status": str(offer.status),
                              "expiry": offer.expiry.isoformat()},
                     event_key=f"offer:{offer.id}:lapsed")
    return True


# ---------------------------------------------------------------- reconciliation

# ReceivableRegistry.Status and .Delinquency, as the contract numbers them.
LEDGER_STATUSES = ("none", *(str(status) for status in (
    InvoiceStatus.REGISTERED, InvoiceStatus.CONFIRMED, InvoiceStatus.DISPUTED, InvoiceStatus.CANCELLED,
    InvoiceStatus.SPLIT, InvoiceStatus.REPAID)))
LEDGER_DELINQUENCIES = tuple(str(delinquency) for delinquency in (
    Delinquency.NONE, Delinquency.OVERDUE, Delinquency.DEFAULTED))
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass
class _Comparison:
    checked: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)

    def compare(self, subject: str, field_name: str, database: Any, ledger: Any) -> None:
        if database != ledger:
            self.drift.append({"subject": subject, "field": field_name, "database": database, "ledger": ledger})


def reconcile(ledger: LedgerClient) -> ReconciliationRun:
    """Compares the projections with the ledger's own view at one block and records the run:
    each receivable the ledger knows of (status, holder, repaid, delinquency) and each token
    balance (of every address with a balance row or an onboarded organisation). The block is
    the one the indexer has read up to (the lowest of its cursors on this chain), so what it
    has not read yet is not drift; the chain head where it has read nothing. CLEAN or DRIFT,
    with each difference; FAILED, with the error, if the chain stopped answering."""
    chain_id = ledger.deployment.chain_id
    run = ReconciliationRun(chain_id=chain_id, status=ReconciliationStatus.RUNNING)
    db.session.add(run)
    db.session.commit()
    try:
        block = _reconciled_block(ledger, chain_id)
        run.block_number = block
        comparison = _Comparison()
        _compare_invoices(ledger, block, comparison)
        _compare_balances(ledger, chain_id, block, comparison)
    except (Web3Exception, requests.RequestException, OSError) as exc:
        # The node failed mid-way: recorded, and the next run tries again.
        db.session.rollback()
        run.status, run.error, run.finished_at = ReconciliationStatus.FAILED, f"{type(exc).__name__}: {exc}", utcnow()
        db.session.commit()
        logger.warning("reconciliation %s failed: %s", run.id, run.error)
        return run
    run.checked, run.drift = comparison.checked, comparison.drift
    run.status = ReconciliationStatus.DRIFT if comparison.drift else ReconciliationStatus.CLEAN
    run.finished_at = utcnow()
    db.session.commit()
    if comparison.drift:
        logger.warning("reconciliation %s at block %s: %d differences", run.id, block, len(comparison.drift))
    return run


def _reconciled_block(ledger: LedgerClient, chain_id: int) -> int:
    indexed = db.session.scalar(select(func.min(IndexerCursor.block_number)).where(IndexerCursor.chain_id == chain_id))
    return indexed if indexed is not None else ledger.w3.eth.block_number


def _compare_invoices(ledger: LedgerClient, block: int, comparison: _Comparison) -> None:
    addresses = dict(db.session.execute(select(Organisation.id, Organisation.chain_address)).all())
    invoices = db.session.scalars(
        select(Invoice).where(Invoice.status != InvoiceStatus.PENDING, Invoice.receivable_id.is_not(None))
        .order_by(Invoice.id)
    )
    for invoice in invoices:
        view = ledger.registry.functions.getReceivable(int(invoice.receivable_id, 16)).call(block_identifier=block)
        _buyer, holder, _amount, repaid, _due, _currency, status, delinquency, _parent = view
        subject = f"invoice:{invoice.id}"
        comparison.checked += 1
        comparison.compare(subject, "status", str(invoice.status), LEDGER_STATUSES[status])
        if status == 0:
            continue  # unknown to the ledger: nothing else to compare
        comparison.compare(subject, "repaid_minor", invoice.repaid_minor, repaid)
        comparison.compare(subject, "delinquency", str(invoice.delinquency), LEDGER_DELINQUENCIES[delinquency])
        if holder != ZERO_ADDRESS:  # a cancelled or split receivable has no holder; the row keeps its last
            comparison.compare(subject, "holder", addresses.get(invoice.holder_id), holder)


def _compare_balances(ledger: LedgerClient, chain_id: int, block: int, comparison: _Comparison) -> None:
    recorded = dict(db.session.execute(
        select(TokenBalance.address, TokenBalance.balance_minor).where(TokenBalance.chain_id == chain_id)
    ).all())
    onboarded = db.session.scalars(select(Organisation.chain_address).where(Organisation.chain_address.is_not(None)))
    for address in sorted(set(recorded) | set(onboarded)):
        balance = ledger.token.functions.balanceOf(address).call(block_identifier=block)
        comparison.checked += 1
        comparison.compare(f"balance:{address}", "balance_minor", recorded.get(address, 0), balance)
