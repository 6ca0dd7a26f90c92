"""Financing: holders ask for advances on confirmed receivables, financiers offer or fund
outright, and the seller accepts an offer (Financing.sol's market).

Every write pre-checks the rules `contracts/Financing.sol` enforces, so a caller gets a clear
refusal now instead of a reverted transaction later, then keeps the domain change, the queued
ledger call (the outbox) and the audit entry in one database transaction. Statuses move on
from `pending` or `open` only when the indexer reads the ledger's events.

The ledger judges time by whole seconds (uint40), so deadlines and expiries are kept to the
second and compared by its clock (`backend.services.ledger`), a due date as its day's 00:00 UTC.

Intent keys name the write and number its attempts (`financing_request:<id>:cancel:1`,
`offer:<id>:make:2` for a revision, `invoice:<id>:markOverdue:1`): the same write is refused as a
duplicate while one is on its way, and may be queued again once the ledger refused it.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import contains_eager, selectinload

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ContractName,
    Delinquency,
    FinancingRequest,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    Role,
)
from backend.models.types import total_minor
from backend.money import AmountError, shown, to_minor_units
from backend.services import audit, outbox
from backend.services.exposure import require_within_limits
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, PermissionDenied
from backend.services.ledger import due_instant, ledger_now, ledger_seconds, settlement_currency
from backend.services.organisations import require_participant
from backend.services.permissions import HOLDER_ROLES, Action, authorize, get_authorized, visible_offers
from backend.services.transaction import atomic

# The Financing calls that close a request: once one is on its way, no other may follow it.
CLOSING_FUNCTIONS = ("cancelRequest", "acceptOffer", "fundRequest")

REQUEST_SUBJECT = "financing_request"
OFFER_SUBJECT = "offer"


# ---------------------------------------------------------------- rules shared with servicing


def outstanding_minor(invoice: Invoice) -> int:
    """What the buyer still owes, as the ledger last recorded it."""
    return invoice.amount_minor - invoice.repaid_minor


def require_settleable(invoice: Invoice) -> None:
    """Financing and repayment need a confirmed receivable in the settlement currency."""
    if invoice.status != InvoiceStatus.CONFIRMED:
        raise InvalidState(f"the receivable is {invoice.status}, not confirmed")
    if invoice.currency != settlement_currency():
        raise InvalidState(
            f"the receivable is in {invoice.currency}; only {settlement_currency()} receivables settle on the ledger"
        )


def amount_in_minor_units(
    amount: Decimal | str, currency: str, invoice: Invoice, field: str, errors: dict[str, list[str]]
) -> int | None:
    """`amount` of the invoice's currency in minor units, exactly; None, with the reason added to
    `errors` under `field` (or `currency`), when it is not a valid amount of that currency."""
    if currency != invoice.currency:
        errors.setdefault("currency", []).append(f"the receivable is in {invoice.currency}, not {currency}")
        return None
    try:
        return to_minor_units(amount, currency)
    except AmountError as exc:
        errors.setdefault(field, []).append(str(exc))
        return None


def raise_input_errors(errors: dict[str, list[str]]) -> None:
    if errors:
        raise InvalidInput("the request has invalid fields: " + ", ".join(sorted(errors)), errors=errors)


def queue_ledger_call(
    actor: Actor,
    *,
    intent_key: str,
    function: str,
    args: list[Any],
    invoice: Invoice,
    subject_type: str,
    subject_id: int,
) -> ChainTransaction:
    """Queues one Financing call, signed by the actor's organisation."""
    return outbox.enqueue(
        intent_key=intent_key,
        signer=actor.organisation,
        contract=ContractName.FINANCING,
        function=function,
        args=args,
        invoice=invoice,
        subject_type=subject_type,
        subject_id=subject_id,
    )


def pending_actions(subject: FinancingRequest | Offer) -> list[ChainTransaction]:
    """The ledger writes queued for `subject` and not yet mined (its status moves on only
    once they are), oldest first; a request's include the acceptance of an offer on it, which
    will close it. For an object the caller has been authorised to see."""
    if isinstance(subject, FinancingRequest):
        about = or_(
            and_(ChainTransaction.subject_type == REQUEST_SUBJECT, ChainTransaction.subject_id == subject.id),
            and_(
                ChainTransaction.subject_type == OFFER_SUBJECT,
                ChainTransaction.function == "acceptOffer",
                ChainTransaction.subject_id.in_(select(Offer.id).where(Offer.financing_request_id == subject.id)),
            ),
        )
    else:
        about = and_(ChainTransaction.subject_type == OFFER_SUBJECT, ChainTransaction.subject_id == subject.id)
    return outbox.in_flight(about)


# ---------------------------------------------------------------- requests


@atomic
def request_financing(
    actor: Actor,
    invoice_id: int,
    *,
    asking_advance: Decimal | str,
    currency: str,
    deadline: datetime,
    recourse: bool,
) -> FinancingRequest:
    """The holder asks for an advance of at least `asking_advance` on its receivable, open to
    offers until `deadline` (Financing.requestFinancing). With `recourse` the seller stays
    liable for what the buyer fails to pay."""
    invoice = get_authorized(actor, Action.REQUEST_FINANCING, Invoice, invoice_id)
    require_participant(actor.organisation)
    require_settleable(invoice)
    if invoice.delinquency != Delinquency.NONE:
        raise InvalidState(f"the receivable is {invoice.delinquency}: it can no longer be financed")
    _require_no_live_request(invoice, actor.organisation)

    errors: dict[str, list[str]] = {}
    asking_minor = amount_in_minor_units(asking_advance, currency, invoice, "asking_advance", errors)
    if asking_minor is not None and asking_minor > outstanding_minor(invoice):
        errors.setdefault("asking_advance", []).append(
            f"more than the {shown(outstanding_minor(invoice), invoice.currency)} outstanding on the receivable"
        )
    deadline = instant(deadline, "deadline", errors)
    if deadline is not None and not ledger_seconds(ledger_now()) < ledger_seconds(deadline) < ledger_seconds(
        due_instant(invoice)
    ):
        errors.setdefault("deadline", []).append(
            f"must be in the future and before the due date ({due_instant(invoice).isoformat()})"
        )
    raise_input_errors(errors)
    assert asking_minor is not None and deadline is not None  # no errors: both were read

    request = FinancingRequest(
        invoice=invoice,
        seller=actor.organisation,
        asking_advance_minor=asking_minor,
        deadline=deadline,
        recourse=recourse,
        status=FinancingRequestStatus.PENDING,
    )
    db.session.add(request)
    db.session.flush()
    queue_ledger_call(
        actor,
        intent_key=f"{REQUEST_SUBJECT}:{request.id}:request",
        function="requestFinancing",
        args=[invoice.receivable_id, asking_minor, ledger_seconds(deadline), recourse],
        invoice=invoice,
        subject_type=REQUEST_SUBJECT,
        subject_id=request.id,
    )
    audit.record(actor, Action.REQUEST_FINANCING, REQUEST_SUBJECT, request.id, after=_request_state(request))
    return request


@atomic
def cancel_financing_request(actor: Actor, request_id: int) -> FinancingRequest:
    """The seller withdraws its open request; every offer on it lapses (Financing.cancelRequest)."""
    request = get_authorized(actor, Action.CANCEL_FINANCING_REQUEST, FinancingRequest, request_id)
    require_participant(actor.organisation)
    _require_open(request)
    intent = f"{REQUEST_SUBJECT}:{request.id}:cancel"
    _require_not_closing(request, intent)
    _queue_intent(actor, Action.CANCEL_FINANCING_REQUEST, request, intent, "cancelRequest",
                  [request.invoice.receivable_id])
    return request


@atomic
def fund_request(actor: Actor, request_id: int) -> FinancingRequest:
    """A financier funds an open request outright at its asking advance: its tokens for the
    receivable, in one ledger transaction (Financing.fundRequest)."""
    request = get_authorized(actor, Action.FUND_REQUEST, FinancingRequest, request_id)
    require_participant(actor.organisation)
    _require_live(request)
    _require_not_own(request, actor)
    _require_can_settle(request)
    intent = f"{REQUEST_SUBJECT}:{request.id}:fund:{actor.organisation.id}"
    _require_not_closing(request, intent)
    require_within_limits(actor.organisation, request.invoice)
    _queue_intent(actor, Action.FUND_REQUEST, request, intent, "fundRequest", [request.invoice.receivable_id])
    return request


def get_financing_request(actor: Actor, request_id: int) -> FinancingRequest:
    return get_authorized(actor, Action.VIEW_FINANCING_REQUEST, FinancingRequest, request_id)


@dataclass(frozen=True)
class OfferTerms:
    """An offer as a seller compares it: the advance it pays now, the discount it keeps (what it
    collects at maturity, the receivable's outstanding amount, less the advance) and the
    implied annualised rate of that discount, in percent:

        rate = discount / advance × 365 / days, days = from today (UTC) to the due date

    a simple (not compounded) rate on a 365-day year; None when the receivable is due today or
    earlier, where no yearly rate means anything."""

    offer: Offer
    advance_minor: int
    discount_minor: int
    days_to_maturity: int
    annualised_rate_percent: Decimal | None


def offer_terms(offer: Offer, today: date) -> OfferTerms:
    invoice = offer.financing_request.invoice
    discount = outstanding_minor(invoice) - offer.advance_minor
    days = (invoice.due_date - today).days
    return OfferTerms(offer, offer.advance_minor, discount, days,
                      annualised_rate_percent(discount, offer.advance_minor, days))


def annualised_rate_percent(gain_minor: int, outlay_minor: int, days: int) -> Decimal | None:
    """The simple annual rate, in percent, at which `outlay_minor` earns `gain_minor` in `days`:

        rate = gain / outlay × 365 / days × 100

    (not compounded, a 365-day year, to two decimals); None when the outlay or the days are not
    positive, where no yearly rate means anything. An offer's implied rate (`offer_terms`) and a
    financier's yields (`servicing.holding_yields`) are this one formula."""
    if days <= 0 or outlay_minor <= 0:
        return None
    return (Decimal(gain_minor) / Decimal(outlay_minor) * 365 / days * 100).quantize(Decimal("0.01"))


@atomic
def compare_offers(actor: Actor, request_id: int) -> list[OfferTerms]:
    """The open offers on a financing request the actor may see (a seller all of them, a
    financier its own), the largest advance first, each with its terms (OfferTerms)."""
    request = get_financing_request(actor, request_id)
    open_offers = db.session.scalars(offers(actor, financing_request_id=request.id, status=OfferStatus.OPEN)).all()
    today = ledger_now().date()
    return sorted((offer_terms(offer, today) for offer in open_offers),
                  key=lambda terms: (-terms.advance_minor, terms.offer.id))


# ---------------------------------------------------------------- offers


@atomic
def make_offer(
    actor: Actor, request_id: int, *, advance: Decimal | str, currency: str, expiry: datetime
) -> Offer:
    """A financier offers `advance` for the receivable until `expiry`, or revises its offer:
    the ledger keys offers by financier, so the same row is updated and goes back to pending
    (Financing.makeOffer)."""
    request = get_authorized(actor, Action.MAKE_OFFER, FinancingRequest, request_id)
    require_participant(actor.organisation)
    _require_live(request)
    _require_not_own(request, actor)
    _require_not_closing(request, intent=None)

    invoice = request.invoice
    errors: dict[str, list[str]] = {}
    advance_minor = amount_in_minor_units(advance, currency, invoice, "advance", errors)
    if advance_minor is not None and advance_minor < request.asking_advance_minor:
        errors.setdefault("advance", []).append(
            f"below the asking advance of {shown(request.asking_advance_minor, invoice.currency)}"
        )
    if advance_minor is not None and advance_minor > outstanding_minor(invoice):
        errors.setdefault("advance", []).append(
            f"more than the {shown(outstanding_minor(invoice), invoice.currency)} outstanding on the receivable"
        )
    expiry = instant(expiry, "expiry", errors)
    now = ledger_seconds(ledger_now())
    if expiry is not None and not now < ledger_seconds(expiry) <= ledger_seconds(request.deadline):
        errors.setdefault("expiry", []).append(
            f"must be in the future and no later than the request's deadline ({request.deadline.isoformat()})"
        )
    raise_input_errors(errors)
    assert advance_minor is not None and expiry is not None  # no errors: both were read
    require_within_limits(actor.organisation, invoice)

    offer = db.session.scalar(
        select(Offer).where(Offer.financing_request_id == request.id, Offer.financier_id == actor.organisation.id)
    )
    before = None if offer is None else _offer_state(offer)
    if offer is None:
        offer = Offer(financing_request=request, financier=actor.organisation)
        db.session.add(offer)
    offer.advance_minor = advance_minor
    offer.expiry = expiry
    offer.status = OfferStatus.PENDING
    db.session.flush()
    # Every revision is a write of its own, whatever became of the ones before it.
    queue_ledger_call(
        actor,
        intent_key=outbox.next_attempt_key(f"{OFFER_SUBJECT}:{offer.id}:make"),
        function="makeOffer",
        args=[invoice.receivable_id, advance_minor, ledger_seconds(expiry)],
        invoice=invoice,
        subject_type=OFFER_SUBJECT,
        subject_id=offer.id,
    )
    audit.record(actor, Action.MAKE_OFFER, OFFER_SUBJECT, offer.id, before=before, after=_offer_state(offer))
    return offer


@atomic
def withdraw_offer(actor: Actor, offer_id: int) -> Offer:
    """The financier withdraws its open offer (Financing.withdrawOffer)."""
    offer = get_authorized(actor, Action.WITHDRAW_OFFER, Offer, offer_id)
    require_participant(actor.organisation)
    _require_open_offer(offer)
    _queue_intent(actor, Action.WITHDRAW_OFFER, offer, f"{OFFER_SUBJECT}:{offer.id}:withdraw", "withdrawOffer",
                  [offer.financing_request.invoice.receivable_id])
    return offer


@atomic
def accept_offer(actor: Actor, offer_id: int, *, advance: Decimal | str, currency: str) -> Offer:
    """The seller accepts a financier's offer: the advance and the receivable change hands in one
    ledger transaction (Financing.acceptOffer). `advance` is the advance the seller saw; if the
    financier has revised its offer since, nothing is queued."""
    offer = get_authorized(actor, Action.ACCEPT_OFFER, Offer, offer_id)
    require_participant(actor.organisation)
    request = offer.financing_request
    _require_open_offer(offer)
    _require_live(request)
    if ledger_seconds(ledger_now()) > ledger_seconds(offer.expiry):
        raise InvalidState(f"the offer expired at {offer.expiry.isoformat()}")

    errors: dict[str, list[str]] = {}
    seen_minor = amount_in_minor_units(advance, currency, request.invoice, "advance", errors)
    raise_input_errors(errors)
    if seen_minor != offer.advance_minor:
        currency = request.invoice.currency
        raise InvalidState(
            f"offer changed: the financier now offers {shown(offer.advance_minor, currency)}, "
            f"not {shown(seen_minor, currency)}"
        )
    require_participant(offer.financier, Role.FINANCIER)
    _require_can_settle(request)
    intent = f"{OFFER_SUBJECT}:{offer.id}:accept"
    _require_not_closing(request, intent)
    _queue_intent(actor, Action.ACCEPT_OFFER, offer, intent, "acceptOffer",
                  [request.invoice.receivable_id, offer.financier.chain_address, offer.advance_minor])
    return offer


def get_offer(actor: Actor, offer_id: int) -> Offer:
    return get_authorized(actor, Action.VIEW_OFFER, Offer, offer_id)


def offers(
    actor: Actor,
    *,
    financing_request_id: int | None = None,
    status: OfferStatus | None = None,
    financier_id: int | None = None,
) -> Select[tuple[Offer]]:
    """The offers the actor may see (a financier its own, a seller those on its requests), to
    page through; with `financier_id`, only that financier's (a financier that also sells
    receivables: the offers it made, not those it received)."""
    authorize(actor, Action.VIEW_OFFER)
    statement = select(Offer).where(visible_offers(actor))
    if financing_request_id is not None:
        statement = statement.where(Offer.financing_request_id == financing_request_id)
    if financier_id is not None:
        statement = statement.where(Offer.financier_id == financier_id)
    if status is not None:
        statement = statement.where(Offer.status == status)
    return statement.options(selectinload(Offer.financing_request).selectinload(FinancingRequest.invoice))


# ---------------------------------------------------------------- the financier's market


@dataclass(frozen=True)
class SupplierHistory:
    """How a supplier's receivables have fared, from the database: how many were confirmed by
    their buyers (repaid ones included), repaid in full, are overdue now, were defaulted, and
    the face value of the confirmed ones in the settlement currency."""

    supplier_id: int
    confirmed: int
    repaid: int
    overdue: int
    defaulted: int
    volume_minor: int


@dataclass(frozen=True)
class FinanceableReceivable:
    """One entry of the financier's market: the open request, its receivable, the days left to
    the due date, and the supplier's history."""

    request: FinancingRequest
    invoice: Invoice
    tenor_days: int
    supplier_history: SupplierHistory


@dataclass(frozen=True)
class FinanceableFilters:
    buyer_id: int | None = None
    supplier_id: int | None = None
    due_from: date | None = None
    due_to: date | None = None
    amount_min: Decimal | str | None = None  # face value, in the settlement currency
    amount_max: Decimal | str | None = None


def financeable(actor: Actor, filters: FinanceableFilters = FinanceableFilters()) -> Select[tuple[FinancingRequest]]:
    """The open requests the financier may fund, to page through: live (before their deadline),
    of another organisation, on receivables their sellers still hold confirmed. Each comes with
    its invoice, buyer and supplier loaded."""
    authorize(actor, Action.VIEW_FINANCEABLE)
    errors: dict[str, list[str]] = {}
    amount_min = _filter_amount(filters.amount_min, "amount_min", errors)
    amount_max = _filter_amount(filters.amount_max, "amount_max", errors)
    raise_input_errors(errors)

    # No visible_invoices clause: a financier (the only role allowed here) sees every invoice
    # with an open request, which is what this lists.
    statement = (
        select(FinancingRequest)
        .join(FinancingRequest.invoice)
        .where(
            FinancingRequest.status == FinancingRequestStatus.OPEN,
            FinancingRequest.deadline >= ledger_now(),
            FinancingRequest.seller_id != actor.organisation.id,
            Invoice.holder_id == FinancingRequest.seller_id,
            Invoice.status == InvoiceStatus.CONFIRMED,
        )
        .options(
            contains_eager(FinancingRequest.invoice).options(
                selectinload(Invoice.buyer), selectinload(Invoice.supplier)
            )
        )
    )
    clauses = []
    if filters.buyer_id is not None:
        clauses.append(Invoice.buyer_id == filters.buyer_id)
    if filters.supplier_id is not None:
        clauses.append(Invoice.supplier_id == filters.supplier_id)
    if filters.due_from is not None:
        clauses.append(Invoice.due_date >= filters.due_from)
    if filters.due_to is not None:
        clauses.append(Invoice.due_date <= filters.due_to)
    if amount_min is not None:
        clauses.append(Invoice.amount_minor >= amount_min)
    if amount_max is not None:
        clauses.append(Invoice.amount_minor <= amount_max)
    return statement.where(*clauses)


def describe_financeable(actor: Actor, requests: Sequence[FinancingRequest]) -> list[FinanceableReceivable]:
    """A page of `financeable` as the financier reads it: each request with its tenor and its
    supplier's history (one query for the whole page)."""
    authorize(actor, Action.VIEW_FINANCEABLE)
    histories = _supplier_histories({request.invoice.supplier_id for request in requests})
    today = ledger_now().date()
    return [
        FinanceableReceivable(request, request.invoice, (request.invoice.due_date - today).days,
                              histories[request.invoice.supplier_id])
        for request in requests
    ]


# ---------------------------------------------------------------- internals


def _supplier_histories(supplier_ids: Collection[int]) -> dict[int, SupplierHistory]:
    """The history of each of these suppliers (each has at least one invoice), in one query."""
    confirmed = Invoice.status.in_((InvoiceStatus.CONFIRMED, InvoiceStatus.REPAID))
    rows = db.session.execute(
        select(
            Invoice.supplier_id,
            func.count(case((confirmed, 1))),
            func.count(case((Invoice.status == InvoiceStatus.REPAID, 1))),
            func.count(case((and_(Invoice.status == InvoiceStatus.CONFIRMED,
                                  Invoice.delinquency == Delinquency.OVERDUE), 1))),
            func.count(case((Invoice.delinquency == Delinquency.DEFAULTED, 1))),
            total_minor(case((and_(confirmed, Invoice.currency == settlement_currency()), Invoice.amount_minor))),
        )
        .where(Invoice.supplier_id.in_(supplier_ids))
        .group_by(Invoice.supplier_id)
    )
    return {row[0]: SupplierHistory(*row) for row in rows}


def instant(moment: datetime, field: str, errors: dict[str, list[str]]) -> datetime | None:
    """`moment` cut to the whole second the ledger will hold; None, with the reason in `errors`,
    when it has no time zone (a naive time is a different instant in every zone)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors.setdefault(field, []).append("give a time zone (for example 2026-05-01T12:00:00Z)")
        return None
    return moment.astimezone(UTC).replace(microsecond=0)


def _filter_amount(amount: Decimal | str | None, field: str, errors: dict[str, list[str]]) -> int | None:
    if amount is None:
        return None
    try:
        return to_minor_units(amount, settlement_currency())
    except AmountError as exc:
        errors.setdefault(field, []).append(str(exc))
        return None


def _require_no_live_request(invoice: Invoice, seller: Organisation) -> None:
    """One request per receivable at a time. The ledger replaces an open request that has
    passed its deadline, or whose seller no longer holds the receivable; a pending one may yet
    open, so it blocks too."""
    now = ledger_seconds(ledger_now())
    for request in db.session.scalars(
        select(FinancingRequest).where(
            FinancingRequest.invoice_id == invoice.id,
            FinancingRequest.status.in_((FinancingRequestStatus.PENDING, FinancingRequestStatus.OPEN)),
        )
    ):
        if request.status == FinancingRequestStatus.PENDING or (
            request.seller_id == seller.id and now <= ledger_seconds(request.deadline)
        ):
            raise InvalidState(f"financing request {request.id} on this receivable is still {request.status}")


def _require_open(request: FinancingRequest) -> None:
    if request.status != FinancingRequestStatus.OPEN:
        raise InvalidState(f"the financing request is {request.status}, not open")


def _require_live(request: FinancingRequest) -> None:
    """Open, and its deadline not passed: the ledger's `_liveRequest`."""
    _require_open(request)
    if ledger_seconds(ledger_now()) > ledger_seconds(request.deadline):
        raise InvalidState(f"the financing request's deadline passed at {request.deadline.isoformat()}")


def _require_not_own(request: FinancingRequest, actor: Actor) -> None:
    if request.seller_id == actor.organisation.id:
        raise PermissionDenied("an organisation may not finance its own receivable")


def _require_open_offer(offer: Offer) -> None:
    if offer.status != OfferStatus.OPEN:
        raise InvalidState(f"the offer is {offer.status}, not open")


def _require_can_settle(request: FinancingRequest) -> None:
    """What the settlement swap needs besides an open request: the seller still an active holder
    holding the confirmed receivable, and nothing repaid since the request was made (offers
    were priced on what was owed then; the ledger calls such a request stale)."""
    invoice = request.invoice
    require_participant(request.seller, HOLDER_ROLES)
    if invoice.holder_id != request.seller_id or invoice.status != InvoiceStatus.CONFIRMED:
        raise InvalidState("the seller no longer holds the confirmed receivable")
    repaid_since = db.session.scalar(
        select(func.count(Repayment.id)).where(
            Repayment.invoice_id == invoice.id,
            Repayment.status != RepaymentStatus.FAILED,
            Repayment.created_at > request.created_at,
        )
    )
    if repaid_since:
        raise InvalidState("the buyer has repaid part of the receivable since the request was made: it is stale")


def _require_not_closing(request: FinancingRequest, intent: str | None) -> None:
    """Refuses a write to a request that a cancellation, acceptance or funding already on its
    way will close; an attempt at `intent` itself on its way makes this one a duplicate."""
    closing = outbox.in_flight(
        ChainTransaction.invoice_id == request.invoice_id,
        ChainTransaction.contract == ContractName.FINANCING,
        ChainTransaction.function.in_(CLOSING_FUNCTIONS),
    )
    if not closing:
        return
    first = closing[0]
    if intent is not None and first.intent_key.startswith(f"{intent}:"):
        raise Duplicate(f"{intent} is already queued")
    raise InvalidState(f"the financing request is being closed: {first.function} is {first.status}")


def _queue_intent(
    actor: Actor, action: Action, subject: FinancingRequest | Offer, intent: str, function: str, args: list[Any]
) -> None:
    """Queues the next attempt at a call that changes `subject` only once mined, and audits it:
    the entry records the subject as it stands and the call now on its way."""
    is_request = isinstance(subject, FinancingRequest)
    state = _request_state(subject) if is_request else _offer_state(subject)
    subject_type = REQUEST_SUBJECT if is_request else OFFER_SUBJECT
    invoice = subject.invoice if is_request else subject.financing_request.invoice
    queue_ledger_call(actor, intent_key=outbox.next_attempt_key(intent, one_at_a_time=True), function=function,
                      args=args, invoice=invoice, subject_type=subject_type, subject_id=subject.id)
    audit.record(actor, action, subject_type, subject.id, before=state, after={**state, "pending_action": function})


def _request_state(request: FinancingRequest) -> dict[str, Any]:
    return {
        "invoice_id": request.invoice_id,
        "status": str(request.status),
        "asking_advance_minor": request.asking_advance_minor,
        "deadline": request.deadline.isoformat(),
        "recourse": request.recourse,
    }


def _offer_state(offer: Offer) -> dict[str, Any]:
    return {
        "financing_request_id": offer.financing_request_id,
        "status": str(offer.status),
        "advance_minor": offer.advance_minor,
        "expiry": offer.expiry.isoformat(),
    }
