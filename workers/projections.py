"""The projections: what each ledger event changes in the database, one function per event.

The database's invoice statuses, holders, repayments, delinquency, financing requests and
offers, token operations, token balances and participant ids are a fold over the ledger's
events: `Projections.apply` applies one stored event (`workers.indexer` calls it in the database
transaction that stores the event), and `reset` puts every chain-derived field back to its
value before any event, so a reorganisation or `anchorline reindex` can fold the events again
and reach the same state as applying them as they came.

Rows are matched by what the event names: a receivable id (invoices; split children were
created pending by the services with their derived ids), the receivable and its round
(financing requests), a financier's address (offers), a token reference (mints and burns), and,
where the event carries no other link, the outbox row whose transaction emitted it (a
repayment, a request not yet given its round). Rows the ledger knows but the database does not
(a receivable registered outside Anchorline) are not invented: the event is stored, nothing else.

Each applied event is announced to the organisations concerned through
`backend.services.webhooks.publish`, with an event key derived from the event's place on the
chain, so a re-applied event can never be announced twice.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import logging

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import selectinload

from backend.extensions import db
from backend.models import (
    ChainEvent,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    EarlyPaymentOffer,
    EarlyPaymentOfferStatus,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    TokenBalance,
    TokenOperation,
    TokenOperationStatus,
    WebhookEndpoint,
)
from backend.services import webhooks
from backend.services.financing import REQUEST_SUBJECT
from backend.services.invoices import receivable_hex
from backend.services.servicing import REPAYMENT_SUBJECT

log = logging.getLogger(__name__)

ZERO_ADDRESS = "0x" + "00" * 20
# ReceivableRegistry.Delinquency, by its number in events.
DELINQUENCY = (Delinquency.NONE, Delinquency.OVERDUE, Delinquency.DEFAULTED)
DELINQUENCY_EVENT_TYPES = {Delinquency.OVERDUE: "invoice.overdue", Delinquency.DEFAULTED: "invoice.defaulted"}
# Offers a closed round leaves behind lapse: the ledger honours an offer only in its round.
LIVE_OFFER_STATUSES = (OfferStatus.PENDING, OfferStatus.OPEN)
# Chunk of an IN (...) list: SQLite allows at most 32,766 bound parameters per statement.
IN_CHUNK = 5_000
# The events whose rows are found through the outbox row that sent their transaction.
LINKED_BY_OUTBOX = {"FinancingRequested", "RepaymentRecorded"}


def event_int(value: int | str) -> int:
    """A stored integer argument: stored as a number, or as a decimal string beyond 2**53."""
    return int(value)


def receivable_key(value: int | str) -> str:
    """A stored receivable id as the invoices table writes it (0x and 64 lowercase digits)."""
    return receivable_hex(event_int(value))


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start:start + IN_CHUNK]


@dataclass
class Projections:
    """The projection rows one batch of events touches, loaded in a few queries, and the
    functions that apply the events to them.

    `block_time(block_hash)` gives a block's timestamp (a repayment's `recorded_at` is the time
    of its block, so folding again gives the same value); `publish` is False when events are
    folded again after a reorganisation or a reindex: they were announced when first applied.
    """

    chain_id: int
    block_time: Callable[[str], int]
    publish: bool = True

    def __post_init__(self) -> None:
        self.invoices: dict[str, Invoice] = {}
        self.organisations: dict[str, Organisation] = {}
        self.requests: dict[tuple[int, int], FinancingRequest] = {}  # (invoice id, round)
        self.balances: dict[str, TokenBalance] = {}
        self.outbox_subjects: dict[str, tuple[str | None, int | None]] = {}  # tx hash -> subject
        self.operations: dict[str, TokenOperation] = {}
        self.endpoint_owners: set[int] = set()

    # ------------------------------------------------------------------ loading
    def load(self, events: list[ChainEvent]) -> None:
        """Loads, in a handful of queries, every row `events` may touch."""
        receivables: set[str] = set()
        addresses: set[str] = set()
        references: set[str] = set()
        linked_hashes: set[str] = set()
        for event in events:
            args = event.args
            for name in ("id", "parentId", "tokenId"):
                if name in args and event.event != "ParticipantOnboarded":
                    receivables.add(receivable_key(args[name]))
            receivables.update(receivable_key(child) for child in args.get("childIds", ()))
            for name in ("supplier", "buyer", "seller", "financier", "from", "to", "account", "holder"):
                if isinstance(args.get(name), str):
                    addresses.add(args[name])
            for name in ("depositRef", "withdrawalRef"):
                if name in args:
                    references.add(args[name])
            if event.event in LINKED_BY_OUTBOX:
                linked_hashes.add(event.tx_hash)
        receivables -= self.invoices.keys()
        for chunk in _chunks(sorted(receivables)):
            self.invoices.update((row.receivable_id, row) for row in db.session.scalars(
                select(Invoice).where(Invoice.receivable_id.in_(chunk))))
        addresses.discard(ZERO_ADDRESS)
        for chunk in _chunks(sorted(addresses - self.organisations.keys())):
            self.organisations.update((row.chain_address, row) for row in db.session.scalars(
                select(Organisation).where(Organisation.chain_address.in_(chunk))))
        financing = any(event.contract == ContractName.FINANCING for event in events)
        for chunk in _chunks(sorted(invoice.id for invoice in self.invoices.values()) if financing else []):
            for request in db.session.scalars(select(FinancingRequest).options(selectinload(FinancingRequest.offers))
                                              .where(FinancingRequest.invoice_id.in_(chunk))):
                if request.round is not None:
                    self.requests[(request.invoice_id, request.round)] = request
        if references:
            self.operations.update((row.reference, row) for row in db.session.scalars(
                select(TokenOperation).where(TokenOperation.reference.in_(sorted(references)))))
        token_addresses = sorted(addresses & {event.args.get(side) for event in events
                                              if event.contract == ContractName.SETTLEMENT_TOKEN
                                              for side in ("from", "to")} - self.balances.keys())
        for chunk in _chunks(token_addresses):
            self.balances.update((row.address, row) for row in db.session.scalars(
                select(TokenBalance).where(TokenBalance.chain_id == self.chain_id, TokenBalance.address.in_(chunk))))
        if linked_hashes:
            self.outbox_subjects.update(
                (row.tx_hash, (row.subject_type, row.subject_id)) for row in db.session.execute(
                    select(ChainTransaction.tx_hash, ChainTransaction.subject_type, ChainTransaction.subject_id)
                    .where(ChainTransaction.tx_hash.in_(sorted(linked_hashes)))))
        if self.publish:
            self.endpoint_owners = set(db.session.scalars(
                select(WebhookEndpoint.organisation_id).where(WebhookEndpoint.active.is_(True)).distinct()))

    # ------------------------------------------------------------------ applying
    def apply(self, event: ChainEvent) -> None:
        """Applies one stored event to the projections (the rows `load` found for it)."""
        handler = HANDLERS.get((event.contract, event.event))
        if handler is not None:
            handler(self, event)

    def invoice(self, receivable: int | str) -> Invoice | None:
        return self.invoices.get(receivable_key(receivable))

    def organisation(self, address: str) -> Organisation | None:
        return self.organisations.get(address)

    def request(self, invoice: Invoice, round_: int) -> FinancingRequest | None:
        return self.requests.get((invoice.id, round_))

    def outbox_subject(self, event: ChainEvent, subject_type: str) -> int | None:
        """The id of the row of `subject_type` whose outbox transaction emitted `event`."""
        kind, subject_id = self.outbox_subjects.get(event.tx_hash, (None, None))
        return subject_id if kind == subject_type else None

    def announce(self, event: ChainEvent, event_type: str, organisations: Iterable[Organisation | None],
                 payload: dict[str, Any]) -> None:
        """Publishes the webhook `event_type` for `event` to `organisations`, once ever."""
        concerned = [org for org in organisations if org is not None and org.id in self.endpoint_owners]
        if not self.publish or not concerned:
            return
        webhooks.publish(
            event_type,
            organisations=concerned,
            payload={**payload, "ledger": {"chain_id": event.chain_id, "block_number": event.block_number,
                                           "tx_hash": event.tx_hash, "log_index": event.log_index}},
            event_key=f"chain:{event.chain_id}:{event.tx_hash}:{event.log_index}:{event_type}",
        )


def _invoice_payload(invoice: Invoice) -> dict[str, Any]:
    return {"invoice_id": invoice.id, "receivable_id": invoice.receivable_id, "status": str(invoice.status),
            "holder_id": invoice.holder_id}


def _announce_invoice(view: Projections, event: ChainEvent, event_type: str, invoice: Invoice,
                      **extra: Any) -> None:
    view.announce(event, event_type, (invoice.supplier, invoice.buyer, invoice.holder),
                  {**_invoice_payload(invoice), **extra})


# ---------------------------------------------------------------------- ReceivableRegistry


def _set_status(status: InvoiceStatus, event_type: str) -> Callable[[Projections, ChainEvent], None]:
    def project(view: Projections, event: ChainEvent) -> None:
        invoice = view.invoice(event.args["id"])
        if invoice is None:
            return
        invoice.status = status
        _announce_invoice(view, event, event_type, invoice)

    project.__name__ = f"receivable_{status}"
    project.__doc__ = f"The receivable is {status}."
    return project


receivable_registered = _set_status(InvoiceStatus.REGISTERED, "invoice.registered")
receivable_confirmed = _set_status(InvoiceStatus.CONFIRMED, "invoice.confirmed")
receivable_cancelled = _set_status(InvoiceStatus.CANCELLED, "invoice.cancelled")


def receivable_disputed(view: Projections, event: ChainEvent) -> None:
    """The buyer disputed; the reason the services recorded (with its note) stays as it is."""
    invoice = view.invoice(event.args["id"])
    if invoice is None:
        return
    invoice.status = InvoiceStatus.DISPUTED
    _announce_invoice(view, event, "invoice.disputed", invoice, reason_code=event.args["reasonCode"])


def receivable_split(view: Projections, event: ChainEvent) -> None:
    """The parent is SPLIT; its children, created pending by the services, are CONFIRMED, as
    the registry creates them (their holders come with their mint Transfer events)."""
    parent = view.invoice(event.args["parentId"])
    children = [view.invoice(child) for child in event.args["childIds"]]
    for child in children:
        if child is not None:
            child.status = InvoiceStatus.CONFIRMED
    if parent is None:
        return
    parent.status = InvoiceStatus.SPLIT
    _announce_invoice(view, event, "invoice.split", parent,
                      children=[child.id for child in children if child is not None])


def receivable_transfer(view: Projections, event: ChainEvent) -> None:
    """The ERC-721 moved: the recipient holds it (also on mint, for split children). A burn
    (split, cancellation) keeps the last holder, as the records of who held it."""
    invoice = view.invoice(event.args["tokenId"])
    recipient = view.organisation(event.args["to"])
    if invoice is None or event.args["to"] == ZERO_ADDRESS:
        return
    if recipient is None:
        # Every holder is an onboarded participant, so this is an organisation the operator
        # onboarded outside Anchorline; the reconciliation schedule reports the drift.
        log.warning("receivable %s moved to %s, an address no organisation has; holder left as it was",
                    invoice.receivable_id, event.args["to"])
        return
    invoice.holder = recipient
    invoice.holder_id = recipient.id
    if event.args["from"] != ZERO_ADDRESS:
        _announce_invoice(view, event, "invoice.transferred", invoice,
                          from_organisation_id=getattr(view.organisation(event.args["from"]), "id", None))


def repayment_recorded(view: Projections, event: ChainEvent) -> None:
    """What the buyer has repaid in all; REPAID once it is the whole amount. The repayment row
    is the one whose outbox transaction this was, else the oldest pending one of that amount."""
    invoice = view.invoice(event.args["id"])
    if invoice is None:
        return
    amount = event_int(event.args["amount"])
    invoice.repaid_minor = event_int(event.args["repaidTotal"])
    if invoice.repaid_minor >= invoice.amount_minor:
        invoice.status = InvoiceStatus.REPAID
    repayment_id = view.outbox_subject(event, REPAYMENT_SUBJECT)
    repayment = db.session.get(Repayment, repayment_id) if repayment_id is not None else db.session.scalar(
        select(Repayment).where(Repayment.invoice_id == invoice.id, Repayment.status == RepaymentStatus.PENDING,
                                Repayment.amount_minor == amount).order_by(Repayment.id).limit(1))
    if repayment is not None:
        repayment.status = RepaymentStatus.RECORDED
        repayment.recorded_at = datetime.fromtimestamp(view.block_time(event.block_hash), UTC)
    _announce_invoice(view, event, "invoice.repayment_recorded", invoice, amount_minor=amount,
                      repaid_minor=invoice.repaid_minor)
    if invoice.status == InvoiceStatus.REPAID:
        _lapse_early_payment(invoice)
        _announce_invoice(view, event, "invoice.repaid", invoice)


def delinquency_changed(view: Projections, event: ChainEvent) -> None:
    invoice = view.invoice(event.args["id"])
    if invoice is None:
        return
    invoice.delinquency = DELINQUENCY[event.args["delinquency"]]
    event_type = DELINQUENCY_EVENT_TYPES.get(invoice.delinquency)
    if event_type is not None:
        _announce_invoice(view, event, event_type, invoice)


# ---------------------------------------------------------------------- Financing


def _request_of(view: Projections, event: ChainEvent) -> tuple[Invoice | None, FinancingRequest | None]:
    invoice = view.invoice(event.args["id"])
    if invoice is None:
        return None, None
    return invoice, view.request(invoice, event.args["round"])


def _announce_request(view: Projections, event: ChainEvent, event_type: str, request: FinancingRequest,
                      offers: Iterable[Offer] = (), **extra: Any) -> None:
    view.announce(event, event_type, (request.seller, *(offer.financier for offer in offers)),
                  {"financing_request_id": request.id, "invoice_id": request.invoice_id, "round": request.round,
                   "status": str(request.status), **extra})


def financing_requested(view: Projections, event: ChainEvent) -> None:
    """The request is OPEN in its round. Its row: the one whose outbox transaction this was,
    else the invoice's oldest pending request by that seller."""
    invoice = view.invoice(event.args["id"])
    if invoice is None:
        return
    request_id = view.outbox_subject(event, REQUEST_SUBJECT)
    seller = view.organisation(event.args["seller"])
    request = db.session.get(FinancingRequest, request_id) if request_id is not None else db.session.scalar(
        select(FinancingRequest).where(
            FinancingRequest.invoice_id == invoice.id, FinancingRequest.round.is_(None),
            FinancingRequest.status == FinancingRequestStatus.PENDING,
            FinancingRequest.seller_id == (seller.id if seller is not None else None),
        ).order_by(FinancingRequest.id).limit(1))
    if request is None:
        return
    request.status = FinancingRequestStatus.OPEN
    request.round = event.args["round"]
    view.requests[(invoice.id, request.round)] = request
    _announce_request(view, event, "financing.requested", request)


def _close_request(status: FinancingRequestStatus, event_type: str) -> Callable[[Projections, ChainEvent], None]:
    def project(view: Projections, event: ChainEvent) -> None:
        _invoice, request = _request_of(view, event)
        if request is None:
            return
        request.status = status
        lapsed = [offer for offer in request.offers if offer.status in LIVE_OFFER_STATUSES]
        for offer in lapsed:
            offer.status = OfferStatus.LAPSED
        _announce_request(view, event, event_type, request, lapsed)

    project.__name__ = f"financing_request_{status}"
    project.__doc__ = f"The request is {status}; the offers still open in its round lapse."
    return project


financing_request_cancelled = _close_request(FinancingRequestStatus.CANCELLED, "financing.cancelled")
financing_request_expired = _close_request(FinancingRequestStatus.EXPIRED, "financing.expired")


def _offer_of(view: Projections, event: ChainEvent) -> tuple[FinancingRequest | None, Offer | None]:
    _invoice, request = _request_of(view, event)
    financier = view.organisation(event.args["financier"])
    if request is None or financier is None:
        return request, None
    return request, next((offer for offer in request.offers if offer.financier_id == financier.id), None)


def offer_made(view: Projections, event: ChainEvent) -> None:
    """The financier's offer (or its revision) is OPEN."""
    request, offer = _offer_of(view, event)
    if offer is None:
        return
    offer.status = OfferStatus.OPEN
    view.announce(event, "financing.offer_made", (request.seller, offer.financier),
                  {"offer_id": offer.id, "financing_request_id": request.id, "invoice_id": request.invoice_id,
                   "advance_minor": event_int(event.args["advance"]), "status": str(offer.status)})


def offer_withdrawn(view: Projections, event: ChainEvent) -> None:
    request, offer = _offer_of(view, event)
    if offer is None:
        return
    offer.status = OfferStatus.WITHDRAWN
    view.announce(event, "financing.offer_withdrawn", (request.seller, offer.financier),
                  {"offer_id": offer.id, "financing_request_id": request.id, "invoice_id": request.invoice_id,
                   "status": str(offer.status)})


def financing_settled(view: Projections, event: ChainEvent) -> None:
    """The request is FUNDED; the financier's offer ACCEPTED if the seller accepted it
    (`viaOffer`; a financier funding at the asking terms uses none), every other live one
    LAPSED. (The receivable's new holder comes with the ERC-721 Transfer of the same
    transaction.)"""
    _invoice, request = _request_of(view, event)
    if request is None:
        return
    financier = view.organisation(event.args["financier"])
    request.status = FinancingRequestStatus.FUNDED
    for offer in request.offers:
        if event.args["viaOffer"] and financier is not None and offer.financier_id == financier.id:
            offer.status = OfferStatus.ACCEPTED
        elif offer.status in LIVE_OFFER_STATUSES:
            offer.status = OfferStatus.LAPSED
    concerned = [offer for offer in request.offers if offer.status in (OfferStatus.ACCEPTED, OfferStatus.LAPSED)]
    _announce_request(view, event, "financing.funded", request, concerned,
                      advance_minor=event_int(event.args["advance"]),
                      financier_organisation_id=getattr(financier, "id", None))


# ---------------------------------------------------------------------- Financing: early payment


def _early_payment_of(view: Projections, event: ChainEvent) -> EarlyPaymentOffer | None:
    """The receivable's early payment offer (one per receivable, revised in place)."""
    invoice = view.invoice(event.args["id"])
    if invoice is None:
        return None
    return db.session.scalar(select(EarlyPaymentOffer).where(EarlyPaymentOffer.invoice_id == invoice.id))


def _announce_early_payment(view: Projections, event: ChainEvent, event_type: str, offer: EarlyPaymentOffer,
                            organisations: Iterable[Organisation | None], **extra: Any) -> None:
    view.announce(event, event_type, organisations,
                  {"early_payment_offer_id": offer.id, "invoice_id": offer.invoice_id, "status": str(offer.status),
                   **extra})


def early_payment_offered(view: Projections, event: ChainEvent) -> None:
    """The buyer's offer to pay early (or its revision) is OPEN at the terms the ledger holds; the
    holder is told. The row is revised in place, so it may carry a later revision still on its
    way, or one the ledger refused: the event's terms are the ones an acceptance meets."""
    offer = _early_payment_of(view, event)
    if offer is None:
        return
    offer.status = EarlyPaymentOfferStatus.OPEN
    offer.annual_rate_bps = event.args["annualRateBps"]
    offer.expiry = datetime.fromtimestamp(event_int(event.args["expiry"]), UTC)
    _announce_early_payment(view, event, "early_payment.offered", offer, (offer.buyer, offer.invoice.holder),
                            annual_rate_bps=offer.annual_rate_bps, expiry=offer.expiry.isoformat())


def early_payment_withdrawn(view: Projections, event: ChainEvent) -> None:
    offer = _early_payment_of(view, event)
    if offer is None:
        return
    offer.status = EarlyPaymentOfferStatus.WITHDRAWN
    _announce_early_payment(view, event, "early_payment.withdrawn", offer, (offer.buyer, offer.invoice.holder))


def early_payment_settled(view: Projections, event: ChainEvent) -> None:
    """The holder accepted: the offer is ACCEPTED with what the buyer paid and the holder gave
    up. (The registry's RepaymentRecorded of the same transaction repays the receivable in full
    and records the repayment the acceptance queued.)"""
    offer = _early_payment_of(view, event)
    if offer is None:
        return
    offer.status = EarlyPaymentOfferStatus.ACCEPTED
    offer.paid_minor = event_int(event.args["paid"])
    offer.discount_minor = event_int(event.args["discount"])
    holder = view.organisation(event.args["holder"])
    _announce_early_payment(view, event, "early_payment.settled", offer, (offer.buyer, holder),
                            paid_minor=offer.paid_minor, discount_minor=offer.discount_minor,
                            holder_organisation_id=getattr(holder, "id", None))


def _lapse_early_payment(invoice: Invoice) -> None:
    """A receivable repaid in full leaves nothing to pay early: a live offer on it lapses
    (an early settlement then marks it ACCEPTED)."""
    offer = db.session.scalar(select(EarlyPaymentOffer).where(EarlyPaymentOffer.invoice_id == invoice.id))
    if offer is not None and offer.status in (EarlyPaymentOfferStatus.PENDING, EarlyPaymentOfferStatus.OPEN):
        offer.status = EarlyPaymentOfferStatus.LAPSED


# ---------------------------------------------------------------------- SettlementToken and participants


def token_transfer(view: Projections, event: ChainEvent) -> None:
    """Settlement tokens moved (minted from or burned to the zero address): the balances."""
    value = event_int(event.args["value"])
    for address, change in ((event.args["from"], -value), (event.args["to"], value)):
        if address == ZERO_ADDRESS:
            continue
        balance = view.balances.get(address)
        if balance is None:
            balance = TokenBalance(chain_id=view.chain_id, address=address, balance_minor=0)
            db.session.add(balance)
            view.balances[address] = balance
        balance.balance_minor += change


def _token_operation(reference_arg: str, event_type: str) -> Callable[[Projections, ChainEvent], None]:
    def project(view: Projections, event: ChainEvent) -> None:
        operation = view.operations.get(event.args[reference_arg])
        if operation is None:
            return
        operation.status = TokenOperationStatus.DONE
        view.announce(event, event_type, (operation.organisation,),
                      {"token_operation_id": operation.id, "kind": str(operation.kind),
                       "amount_minor": operation.amount_minor, "reference": operation.reference})

    project.__name__ = f"token_{event_type.split('.')[1]}"
    project.__doc__ = "The operator's token operation with this reference is DONE."
    return project


tokens_minted = _token_operation("depositRef", "token.minted")
tokens_burned = _token_operation("withdrawalRef", "token.burned")


def participant_onboarded(view: Projections, event: ChainEvent) -> None:
    """The organisation at the onboarded address learns its compact participant id."""
    organisation = view.organisation(event.args["account"])
    if organisation is not None:
        organisation.participant_id = event.args["id"]


HANDLERS: dict[tuple[ContractName, str], Callable[[Projections, ChainEvent], None]] = {
    (ContractName.RECEIVABLE_REGISTRY, "ReceivableRegistered"): receivable_registered,
    (ContractName.RECEIVABLE_REGISTRY, "ReceivableConfirmed"): receivable_confirmed,
    (ContractName.RECEIVABLE_REGISTRY, "ReceivableDisputed"): receivable_disputed,
    (ContractName.RECEIVABLE_REGISTRY, "ReceivableCancelled"): receivable_cancelled,
    (ContractName.RECEIVABLE_REGISTRY, "ReceivableSplit"): receivable_split,
    (ContractName.RECEIVABLE_REGISTRY, "Transfer"): receivable_transfer,
    (ContractName.RECEIVABLE_REGISTRY, "RepaymentRecorded"): repayment_recorded,
    (ContractName.RECEIVABLE_REGISTRY, "DelinquencyChanged"): delinquency_changed,
    (ContractName.FINANCING, "FinancingRequested"): financing_requested,
    (ContractName.FINANCING, "FinancingRequestCancelled"): financing_request_cancelled,
    (ContractName.FINANCING, "FinancingRequestExpired"): financing_request_expired,
    (ContractName.FINANCING, "OfferMade"): offer_made,
    (ContractName.FINANCING, "OfferWithdrawn"): offer_withdrawn,
    (ContractName.FINANCING, "FinancingSettled"): financing_settled,
    (ContractName.FINANCING, "EarlyPaymentOffered"): early_payment_offered,
    (ContractName.FINANCING, "EarlyPaymentWithdrawn"): early_payment_withdrawn,
    (ContractName.FINANCING, "EarlyPaymentSettled"): early_payment_settled,
    (ContractName.FINANCING, "ParticipantOnboarded"): participant_onboarded,
    (ContractName.SETTLEMENT_TOKEN, "Transfer"): token_transfer,
    (ContractName.SETTLEMENT_TOKEN, "Minted"): tokens_minted,
    (ContractName.SETTLEMENT_TOKEN, "Burned"): tokens_burned,
}


# ---------------------------------------------------------------------- before any event


def reset() -> None:
    """Puts every chain-derived field back to its value before any ledger event: invoices
    PENDING, unrepaid, not delinquent, held by their supplier (a split child by the holder its
    split named); indexed requests PENDING without a round and their offers PENDING; early
    payment offers PENDING without their settlement; recorded repayments and done token
    operations PENDING; no participant ids, no token balances. Off-chain facts (amounts,
    dispute reasons, documents, an early payment offer's terms) and the FAILED states the
    outbox records stay. The caller deletes or keeps the stored events and folds them again."""
    db.session.flush()
    indexed_requests = select(FinancingRequest.id).where(FinancingRequest.round.is_not(None))
    _bulk(update(Offer)
          .where(Offer.financing_request_id.in_(indexed_requests),
                 Offer.status.in_((OfferStatus.OPEN, OfferStatus.WITHDRAWN, OfferStatus.ACCEPTED, OfferStatus.LAPSED)))
          .values(status=OfferStatus.PENDING))
    _bulk(update(FinancingRequest).where(FinancingRequest.round.is_not(None))
          .values(status=FinancingRequestStatus.PENDING, round=None))
    _bulk(update(EarlyPaymentOffer).where(EarlyPaymentOffer.status != EarlyPaymentOfferStatus.PENDING)
          .values(status=EarlyPaymentOfferStatus.PENDING, paid_minor=None, discount_minor=None))
    _bulk(update(Invoice).values(status=InvoiceStatus.PENDING, repaid_minor=0, delinquency=Delinquency.NONE))
    _bulk(update(Invoice).where(Invoice.parent_id.is_(None)).values(holder_id=Invoice.supplier_id))
    _reset_split_holders()
    _bulk(update(Repayment).where(Repayment.status == RepaymentStatus.RECORDED)
          .values(status=RepaymentStatus.PENDING, recorded_at=None))
    _bulk(update(TokenOperation).where(TokenOperation.status == TokenOperationStatus.DONE)
          .values(status=TokenOperationStatus.PENDING))
    _bulk(update(Organisation).where(Organisation.participant_id.is_not(None)).values(participant_id=None))
    _bulk(delete(TokenBalance))
    # The rows loaded before hold the old values; read them again.
    db.session.expire_all()


def _bulk(statement: Any) -> None:
    """Runs an UPDATE or DELETE in the database only: `reset` expires the loaded rows after."""
    db.session.execute(statement, execution_options={"synchronize_session": False})


def _reset_split_holders() -> None:
    """Each split child back to the holder its parent's split named (the split's outbox row
    holds the holders' addresses in the children's order)."""
    splits = db.session.execute(
        select(ChainTransaction.invoice_id, ChainTransaction.args)
        .where(ChainTransaction.function == "split", ChainTransaction.invoice_id.is_not(None),
               # the attempt the ledger took, not one it refused
               ChainTransaction.status.not_in((ChainTransactionStatus.REVERTED, ChainTransactionStatus.FAILED)))
        .order_by(ChainTransaction.id)
    ).all()
    holders_by_parent = {invoice_id: args[2] for invoice_id, args in splits}
    if not holders_by_parent:
        return
    addresses = {address for holders in holders_by_parent.values() for address in holders}
    organisation_ids = dict(db.session.execute(
        select(Organisation.chain_address, Organisation.id).where(Organisation.chain_address.in_(sorted(addresses)))
    ).all())
    children = db.session.execute(
        select(Invoice.id, Invoice.parent_id, Invoice.split_index)
        .where(Invoice.parent_id.in_(sorted(holders_by_parent)))
    ).all()
    for child_id, parent_id, index in children:
        holder_id = organisation_ids.get(holders_by_parent[parent_id][index])
        if holder_id is not None:
            _bulk(update(Invoice).where(Invoice.id == child_id).values(holder_id=holder_id))


def refold(chain_id: int, block_time: Callable[[str], int], batch_size: int = 5_000) -> int:
    """Applies every stored event of `chain_id` again, in chain order, without announcing them
    (after `reset`). Returns how many were applied."""
    applied = 0
    last: tuple[int, int] = (-1, -1)
    while True:
        events = list(db.session.scalars(
            select(ChainEvent)
            .where(ChainEvent.chain_id == chain_id,
                   or_(ChainEvent.block_number > last[0],
                       and_(ChainEvent.block_number == last[0], ChainEvent.log_index > last[1])))
            .order_by(ChainEvent.block_number, ChainEvent.log_index).limit(batch_size)
        ))
        if not events:
            return applied
        view = Projections(chain_id, block_time, publish=False)
        view.load(events)
        for event in events:
            view.apply(event)
        db.session.flush()
        applied += len(events)
        last = (events[-1].block_number, events[-1].log_index)


