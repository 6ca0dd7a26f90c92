"""Invoices once registered: the buyer's answer (confirm, dispute), the supplier's withdrawal
(cancel), the holder's split and transfer, and the reads (lists, one invoice, its document,
the ledger writes still under way). Registration is in `invoice_intake`.

Nothing here writes the ledger. A change queues its transaction in the outbox and the
invoice's status moves on when the indexer sees the event; until then the queued write shows
as one of the invoice's pending actions. While a write of an invoice is in flight no other
change to it is accepted: the ledger would judge the second against a state the database has
not seen yet, so two queued writes never race each other to the chain.

Every rule the ledger enforces on these calls (ReceivableRegistry.confirm, dispute, cancel,
split and ERC-721 transfers) is checked here first, so a refusal is an answer now rather than
a reverted transaction later.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import selectinload

from backend import money
from backend.chain.client import child_receivable_id
from backend.documents import DocumentStore
from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ContractName,
    Delinquency,
    Document,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    Organisation,
    Role,
)
from backend.services import audit, outbox
from backend.services.actors import Actor
from backend.services.errors import InvalidInput, InvalidState, NotFound
from backend.services.organisations import find_organisation, participant_problem, require_participant
from backend.services.permissions import Action, authorize, get_authorized, visible_invoices
from backend.services.transaction import atomic

# ReceivableRegistry.MAX_SPLIT_PARTS, and the two parts below which a split is no split.
MIN_SPLIT_PARTS, MAX_SPLIT_PARTS = 2, 100
# The subject of a CSV upload's registerBatch outbox rows (the subject id is the first invoice's).
BATCH_SUBJECT = "invoice-batch"
# How many registerBatch rows a timeline reads at a time while it looks for a CSV invoice's own.
UPLOAD_BATCH_SEARCH_CHUNK = 10
MAX_DISPUTE_NOTE_LENGTH = 2000
# The ledger functions that move a receivable: registered, confirmed or disputed, cancelled,
# split, transferred, financed (an accepted offer, a funded request), repaid, marked late.
TIMELINE_FUNCTIONS = ("register", "confirm", "dispute", "cancel", "split", "transferFrom", "acceptOffer",
                      "fundRequest", "repay", "acceptEarlyPayment", "markOverdue", "markDefaulted")


class DisputeReason(enum.StrEnum):
    """Why a buyer disputes a payable, as the API names it."""

    GOODS_NOT_RECEIVED = "goods-not-received"
    GOODS_DEFECTIVE = "goods-defective"
    AMOUNT_INCORRECT = "amount-incorrect"
    NOT_ORDERED = "not-ordered"
    DUPLICATE_INVOICE = "duplicate-invoice"
    OTHER = "other"


# The uint8 ReceivableRegistry.dispute records (it refuses 0). A code is never reused for
# another reason: the ledger keeps them for good.
DISPUTE_REASON_CODES: Mapping[DisputeReason, int] = MappingProxyType({
    DisputeReason.GOODS_NOT_RECEIVED: 1,
    DisputeReason.GOODS_DEFECTIVE: 2,
    DisputeReason.AMOUNT_INCORRECT: 3,
    DisputeReason.NOT_ORDERED: 4,
    DisputeReason.DUPLICATE_INVOICE: 5,
    DisputeReason.OTHER: 6,
})


class Perspective(enum.StrEnum):
    """Whose side of the invoices a list shows: the buyer's payables inbox, the supplier's
    receivables, or what the organisation holds now."""

    BUYER = "buyer"
    SUPPLIER = "supplier"
    HOLDER = "holder"


@dataclass(frozen=True)
class SplitPart:
    """One part of a split: its amount (decimal, in the invoice's currency) and who gets it
    (an organisation id, ledger address or legal identifier)."""

    amount: Decimal | str
    holder: int | str


# ---------------------------------------------------------------- representation helpers


def receivable_hex(receivable_id: int) -> str:
    """A uint256 receivable id as the database and the outbox write it: 0x and 64 lowercase hex digits."""
    return f"0x{receivable_id:064x}"


def event_key(receivable_id: str) -> str:
    """A receivable id (0x-hex) as the indexer stores it in an event's arguments: a decimal string
    (the derived ids are keccak hashes, far beyond the integers JSON keeps exactly)."""
    return str(int(receivable_id, 16))


def snapshot(invoice: Invoice) -> dict[str, Any]:
    """The invoice as an audit entry records it (JSON values only)."""
    return {
        "id": invoice.id,
        "receivable_id": invoice.receivable_id,
        "status": str(invoice.status),
        "supplier_id": invoice.supplier_id,
        "buyer_id": invoice.buyer_id,
        "holder_id": invoice.holder_id,
        "invoice_number": invoice.invoice_number,
        "currency": invoice.currency,
        "amount_minor": invoice.amount_minor,
        "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "document_sha256": invoice.document_sha256,
        "source": str(invoice.source),
        "parent_id": invoice.parent_id,
        "split_index": invoice.split_index,
        "dispute_reason": invoice.dispute_reason,
    }


def document_store() -> DocumentStore:
    return DocumentStore(current_app.config["DOCUMENTS_DIR"])


# ---------------------------------------------------------------- reads


def invoice_query(
    actor: Actor,
    *,
    status: InvoiceStatus | None = None,
    buyer_id: int | None = None,
    supplier_id: int | None = None,
    due_from: date | None = None,
    due_to: date | None = None,
    amount_min_minor: int | None = None,
    amount_max_minor: int | None = None,
    currency: str | None = None,
    perspective: Perspective | None = None,
) -> Select[tuple[Invoice]]:
    """The invoices the actor may see that match every filter given (dates and amounts
    inclusive), as a statement to page through."""
    authorize(actor, Action.VIEW_INVOICE)
    conditions = [visible_invoices(actor)]
    if status is not None:
        conditions.append(Invoice.status == status)
    if buyer_id is not None:
        conditions.append(Invoice.buyer_id == buyer_id)
    if supplier_id is not None:
        conditions.append(Invoice.supplier_id == supplier_id)
    if due_from is not None:
        conditions.append(Invoice.due_date >= due_from)
    if due_to is not None:
        conditions.append(Invoice.due_date <= due_to)
    if amount_min_minor is not None:
        conditions.append(Invoice.amount_minor >= amount_min_minor)
    if amount_max_minor is not None:
        conditions.append(Invoice.amount_minor <= amount_max_minor)
    if currency is not None:
        conditions.append(Invoice.currency == currency.upper())
    if perspective is not None:
        column = {
            Perspective.BUYER: Invoice.buyer_id,
            Perspective.SUPPLIER: Invoice.supplier_id,
            Perspective.HOLDER: Invoice.holder_id,
        }[perspective]
        conditions.append(column == actor.organisation.id)
    return select(Invoice).where(*conditions)


@atomic
def get_invoice(actor: Actor, invoice_id: int) -> Invoice:
    return get_authorized(actor, Action.VIEW_INVOICE, Invoice, invoice_id)


@atomic
def invoice_document(actor: Actor, invoice_id: int) -> tuple[Document, bytes]:
    """The document the invoice's receivable anchors, and its bytes."""
    invoice = get_authorized(actor, Action.VIEW_INVOICE, Invoice, invoice_id)
    if invoice.document is None:
        raise NotFound("this invoice has no document")
    return invoice.document, document_store().read(invoice.document.sha256)


@dataclass(frozen=True)
class TimelineStep:
    """One step of an invoice's timeline: the ledger call that moved it (`function`; a
    registration carried in a batch is its `register`), who signed it and when it was asked
    for, and the outbox row of the transaction that took it to the ledger (`transaction`: its
    status, hash and block), the write's own or, when it went `batched` with other invoices'
    registrations, the registerBatch that carried it."""

    function: str
    signer: Organisation | None
    requested_at: datetime
    transaction: ChainTransaction
    batched: bool


@atomic
def ledger_history(actor: Actor, invoice_id: int) -> list[TimelineStep]:
    """The invoice's timeline: the ledger writes that moved its receivable (TIMELINE_FUNCTIONS),
    whoever signed them, oldest first, each with its transaction hash and block once sent and
    mined. A registration sent in a batch (a CSV upload's registerBatch, or one the outbox
    worker gathered: BATCHED, `carried_by` the batch) shows the batch's transaction. Anyone who
    may see the invoice may see how it came to be; the financing talk that did not move it
    (requests, offers, withdrawals) stays with the parties to it."""
    invoice = get_authorized(actor, Action.VIEW_INVOICE, Invoice, invoice_id)
    writes = db.session.scalars(
        select(ChainTransaction)
        .where(ChainTransaction.invoice_id == invoice.id, ChainTransaction.function.in_(TIMELINE_FUNCTIONS))
        .options(selectinload(ChainTransaction.carried_by))
        .order_by(ChainTransaction.created_at, ChainTransaction.id)
    )
    steps = [TimelineStep(write.function, write.signer, write.created_at, write.carried_by, batched=True)
             if write.carried_by is not None else
             TimelineStep(write.function, write.signer, write.created_at, write, batched=False)
             for write in writes]
    upload_batch = _upload_batch(invoice) if invoice.source == InvoiceSource.CSV else None
    if upload_batch is not None:
        # Written with the invoice itself: its first step.
        steps.insert(0, TimelineStep("register", upload_batch.signer, upload_batch.created_at, upload_batch,
                                     batched=True))
    return steps


def pending_actions(invoice: Invoice) -> list[ChainTransaction]:
    """The invoice's ledger writes that are queued or sent but not yet answered, oldest first:
    its own, and the CSV batch that registers it."""
    rows = outbox.in_flight(ChainTransaction.invoice_id == invoice.id)
    if invoice.status == InvoiceStatus.PENDING and invoice.source == InvoiceSource.CSV:
        rows.extend(batch for batch in outbox.in_flight(*_batches_of_supplier(invoice)) if _registers(batch, invoice))
    return rows


def _batches_of_supplier(invoice: Invoice) -> tuple[ColumnElement[bool], ...]:
    """The registerBatch rows that may register the invoice: its supplier's, starting at or
    before it (a batch's subject is its first invoice)."""
    return (
        ChainTransaction.subject_type == BATCH_SUBJECT,
        ChainTransaction.signer_id == invoice.supplier_id,
        ChainTransaction.subject_id <= invoice.id,
    )


def _registers(batch: ChainTransaction, invoice: Invoice) -> bool:
    """Whether the registerBatch row's registrations include the invoice's (a batch holds one
    supplier's invoices, each once by its buyer and invoice-number hash: registration fields
    0 and 5)."""
    key = (invoice.buyer.chain_address, invoice.invoice_number_hash)
    return any((entry[0], entry[5]) == key for entry in batch.args[0])


def _upload_batch(invoice: Invoice) -> ChainTransaction | None:
    """The registerBatch row of the CSV upload that registered the invoice, read a few rows at
    a time from the supplier's batch starting nearest before the invoice back: that is the
    upload's own, unless another upload at the same moment took ids in between."""
    batches = db.session.scalars(
        select(ChainTransaction).where(*_batches_of_supplier(invoice))
        .order_by(ChainTransaction.subject_id.desc(), ChainTransaction.id.desc())
        .execution_options(yield_per=UPLOAD_BATCH_SEARCH_CHUNK)
    )
    try:
        return next((batch for batch in batches if _registers(batch, invoice)), None)
    finally:
        batches.close()


# ---------------------------------------------------------------- the buyer's answer, the supplier's withdrawal


@atomic
def confirm_invoice(actor: Actor, invoice_id: int) -> Invoice:
    """Queues the buyer's confirmation: its promise to pay whoever holds the receivable at
    maturity. A disputed invoice may be confirmed once the dispute is settled, as on the ledger."""
    invoice = _invoice_to_change(actor, Action.CONFIRM_PAYABLE, invoice_id)
    _require_status(invoice, (InvoiceStatus.REGISTERED, InvoiceStatus.DISPUTED), "confirmed")
    _queue(actor, invoice, Action.CONFIRM_PAYABLE, "confirm", [invoice.receivable_id], before=snapshot(invoice))
    return invoice


@atomic
def dispute_invoice(actor: Actor, invoice_id: int, reason: DisputeReason, note: str | None = None) -> Invoice:
    """Queues the buyer's dispute of a registered invoice; the reason (and the note, which stays
    off the ledger) are kept in `dispute_reason`."""
    invoice = _invoice_to_change(actor, Action.DISPUTE_PAYABLE, invoice_id)
    _require_status(invoice, (InvoiceStatus.REGISTERED,), "disputed")
    note = (note or "").strip()
    if len(note) > MAX_DISPUTE_NOTE_LENGTH:
        message = f"the note has {len(note)} characters; at most {MAX_DISPUTE_NOTE_LENGTH} are allowed"
        raise InvalidInput(message, errors={"note": [message]})
    before = snapshot(invoice)
    invoice.dispute_reason = f"{reason}: {note}" if note else str(reason)
    _queue(actor, invoice, Action.DISPUTE_PAYABLE, "dispute", [invoice.receivable_id, DISPUTE_REASON_CODES[reason]],
           before=before)
    return invoice


@atomic
def cancel_invoice(actor: Actor, invoice_id: int) -> Invoice:
    """Queues the supplier's withdrawal of an invoice the buyer has not confirmed (registered or
    disputed). Its receivable id stays taken: the same invoice can never be registered again."""
    invoice = _invoice_to_change(actor, Action.CANCEL_INVOICE, invoice_id)
    _require_status(invoice, (InvoiceStatus.REGISTERED, InvoiceStatus.DISPUTED), "cancelled")
    _queue(actor, invoice, Action.CANCEL_INVOICE, "cancel", [invoice.receivable_id], before=snapshot(invoice))
    return invoice


# ---------------------------------------------------------------- the holder's moves


@atomic
def split_invoice(actor: Actor, invoice_id: int, *, currency: str, parts: Sequence[SplitPart]) -> Invoice:
    """Queues the split of a confirmed receivable into parts whose amounts add up exactly to its
    own, each for the holder itself or an active supplier (its own suppliers, say). The children
    are created now, pending, with the ids the ledger will give them; the parent is returned."""
    invoice = _invoice_to_change(actor, Action.SPLIT_RECEIVABLE, invoice_id)
    _require_movable(invoice, "split")
    if invoice.repaid_minor:
        raise InvalidState("part of this receivable is repaid already; only an unpaid receivable can be split")
    if invoice.delinquency != Delinquency.NONE:
        raise InvalidState(f"this receivable is {invoice.delinquency}; a delinquent receivable cannot be split")
    holder = actor.organisation
    require_participant(holder)
    amounts, recipients = _split_parts(invoice, holder, currency, parts)

    before = snapshot(invoice)
    parent_id = int(invoice.receivable_id, 16)
    children = [
        Invoice(
            supplier_id=invoice.supplier_id,
            buyer_id=invoice.buyer_id,
            holder=recipient,
            currency=invoice.currency,
            amount_minor=amount,
            issue_date=invoice.issue_date,
            due_date=invoice.due_date,
            document_sha256=invoice.document_sha256,
            source=InvoiceSource.SPLIT,
            receivable_id=receivable_hex(child_receivable_id(parent_id, index)),
            status=InvoiceStatus.PENDING,
            parent=invoice,
            split_index=index,
        )
        for index, (amount, recipient) in enumerate(zip(amounts, recipients, strict=True))
    ]
    db.session.add_all(children)
    db.session.flush()
    args = [invoice.receivable_id, amounts, [recipient.chain_address for recipient in recipients]]
    _queue(actor, invoice, Action.SPLIT_RECEIVABLE, "split", args, before=before,
           details={"children": [child.id for child in children]})
    return invoice


def _split_parts(
    invoice: Invoice, holder: Organisation, currency: str, parts: Sequence[SplitPart]
) -> tuple[list[int], list[Organisation]]:
    """The parts' amounts in minor units and their recipients, or InvalidInput naming every problem."""
    errors: dict[str, list[str]] = {}
    if currency.upper() != invoice.currency:
        errors["currency"] = [f"the invoice is in {invoice.currency}; its parts must be too"]
    if not MIN_SPLIT_PARTS <= len(parts) <= MAX_SPLIT_PARTS:
        # Parts of a split that cannot be are not worth looking up one by one.
        errors["parts"] = [f"a split has {MIN_SPLIT_PARTS} to {MAX_SPLIT_PARTS} parts, not {len(parts)}"]
        raise InvalidInput("the split is not valid", errors=errors)
    amounts: list[int] = []
    recipients: list[Organisation] = []
    for index, part in enumerate(parts):
        try:
            amounts.append(money.to_minor_units(part.amount, invoice.currency))
        except money.AmountError as exc:
            errors[f"parts.{index}.amount"] = [str(exc)]
        recipient = find_organisation(part.holder)
        # The holder keeps a part for itself whatever its role; any other part goes to a supplier.
        keeps = recipient is not None and recipient.id == holder.id
        problem = None if keeps else participant_problem(recipient, Role.SUPPLIER, part.holder)
        if problem is None:
            recipients.append(recipient)
        else:
            errors[f"parts.{index}.holder"] = [problem]
    if not errors and sum(amounts) != invoice.amount_minor:
        total = money.from_minor_units(sum(amounts), invoice.currency)
        face = money.from_minor_units(invoice.amount_minor, invoice.currency)
        errors["parts"] = [f"the parts add up to {total} {invoice.currency}; they must add up to the invoice's {face}"]
    if errors:
        raise InvalidInput("the split is not valid", errors=errors)
    return amounts, recipients


@atomic
def transfer_invoice(actor: Actor, invoice_id: int, *, to: int | str) -> Invoice:
    """Queues the transfer of a confirmed receivable to another active supplier or financier."""
    invoice = _invoice_to_change(actor, Action.TRANSFER_RECEIVABLE, invoice_id)
    _require_movable(invoice, "transferred")
    holder = actor.organisation
    require_participant(holder)
    recipient = find_organisation(to)
    problem = participant_problem(recipient, Role.SUPPLIER | Role.FINANCIER, to)
    if problem is None and recipient.id == holder.id:
        problem = "the receivable is yours already"
    if problem is not None:
        raise InvalidInput(f"cannot transfer to {to}: {problem}", errors={"to": [problem]})
    # A receivable may change hands many times: each transfer is its own intent.
    _queue(actor, invoice, Action.TRANSFER_RECEIVABLE, "transferFrom",
           [holder.chain_address, recipient.chain_address, invoice.receivable_id],
           before=snapshot(invoice), repeatable_as="transfer", details={"to": recipient.id})
    return invoice


# ---------------------------------------------------------------- shared steps


def _invoice_to_change(actor: Actor, action: Action, invoice_id: int) -> Invoice:
    """The invoice, once the actor may do `action` to it and no earlier write of it is still
    in flight. Its row is locked first (on PostgreSQL) so that two changes to one invoice are
    judged one after the other."""
    db.session.get(Invoice, invoice_id, with_for_update=True)
    invoice = get_authorized(actor, action, Invoice, invoice_id)
    in_flight = pending_actions(invoice)
    if in_flight:
        raise InvalidState(
            f"the ledger has not yet answered this invoice's {in_flight[0].function} ({in_flight[0].status}); "
            "try again once it has"
        )
    return invoice


def _require_status(invoice: Invoice, allowed: tuple[InvoiceStatus, ...], outcome: str) -> None:
    if invoice.status not in allowed:
        states = " or ".join(str(status) for status in allowed)
        raise InvalidState(f"this invoice is {invoice.status}; only a {states} invoice can be {outcome}")


def _require_movable(invoice: Invoice, outcome: str) -> None:
    """Only a confirmed receivable moves, and not while financiers may be bidding for it: its
    request would be stranded, its offers good for nothing."""
    _require_status(invoice, (InvoiceStatus.CONFIRMED,), outcome)
    live_request = db.session.scalar(
        select(FinancingRequest.id).where(
            FinancingRequest.invoice_id == invoice.id,
            FinancingRequest.status.in_((FinancingRequestStatus.PENDING, FinancingRequestStatus.OPEN)),
        )
    )
    if live_request is not None:
        raise InvalidState(f"this receivable is offered for financing (request {live_request}); cancel that first")


def _queue(
    actor: Actor,
    invoice: Invoice,
    action: Action,
    function: str,
    args: list[Any],
    *,
    before: dict[str, Any],
    repeatable_as: str | None = None,
    details: dict[str, Any] | None = None,
) -> ChainTransaction:
    """Queues the actor's ReceivableRegistry call about the invoice and audits it. Its intent is
    named after the function, made once per invoice; a write that may be made many times is
    named `repeatable_as`, its attempts numbered."""
    intent = f"invoice:{invoice.id}:{repeatable_as or function}"
    row = outbox.enqueue(
        intent_key=intent if repeatable_as is None else outbox.next_attempt_key(intent),
        signer=actor.organisation,
        contract=ContractName.RECEIVABLE_REGISTRY,
        function=function,
        args=args,
        invoice=invoice,
    )
    audit.record(actor, action, "invoice", invoice.id, before=before,
                 after={**snapshot(invoice), "queued": {"function": function, "args": args}, **(details or {})})
    return row
