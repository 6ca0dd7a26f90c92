"""Early payment (dynamic discounting): the buyer offers to pay a confirmed payable before its
due date at a discount that shrinks with the days remaining, and the receivable's holder accepts
(Financing.offerEarlyPayment, withdrawEarlyPayment, acceptEarlyPayment).

The discount is an annual rate of simple interest on what is outstanding, for the seconds left
to the due date (its day's 00:00 UTC), rounded down in whole minor units, exactly as the ledger
computes it at settlement (`early_payment_quote`). Since it only shrinks as time passes, the
discount the holder saw is the most it accepts: the ledger refuses to settle for more
(DiscountAboveAccepted), so a revised offer cannot be accepted unseen.

As in `backend.services.financing`, each write pre-checks the ledger's rules and queues the
Financing call with its audit entry in one database transaction; an offer is `pending` until the
indexer reads EarlyPaymentOffered. The acceptance settles the receivable in full: it is queued as
a `Repayment` of the whole outstanding amount (the ledger's RepaymentRecorded, which makes the
receivable REPAID), paid by the buyer; of it, the buyer's tokens paid the holder the offer's
`paid_minor` and the holder gave up its `discount_minor`, both recorded from EarlyPaymentSettled.
A refused settlement fails that repayment as any refused repayment fails
(`backend.services.transactions.ledger_refused`).

Intent keys: `early_payment_offer:<id>:offer:<n>` (every revision a write of its own),
`early_payment_offer:<id>:withdraw:<n>` and `early_payment_offer:<id>:accept:<n>` (one at a time).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, or_, select, update

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    Delinquency,
    EarlyPaymentOffer,
    EarlyPaymentOfferStatus,
    Invoice,
    Repayment,
    RepaymentStatus,
    Role,
    utcnow,
)
from backend.money import shown
from backend.services import audit, outbox, webhooks
from backend.services.actors import Actor
from backend.services.errors import InvalidState, NotFound
from backend.services.financing import (
    instant,
    amount_in_minor_units,
    outstanding_minor,
    queue_ledger_call,
    raise_input_errors,
    require_settleable,
)
from backend.services.ledger import due_instant, ledger_now, ledger_seconds
from backend.services.organisations import require_participant
from backend.services.permissions import Action, authorize, get_authorized, reads_everything, require_active
from backend.services.servicing import REPAYMENT_SUBJECT
from backend.services.transaction import atomic

EARLY_PAYMENT_SUBJECT = "early_payment_offer"
ACCEPT_FUNCTION = "acceptEarlyPayment"
BPS_PER_PERCENT = 100
# The ledger's denominator: basis points in a whole, and seconds in its 365-day year.
BPS_WHOLE = 10_000
# Financing.offerEarlyPayment refuses a rate above 10,000 basis points (100 % a year).
MAX_RATE_BPS = BPS_WHOLE
SECONDS_PER_YEAR = 365 * 24 * 60 * 60
SECONDS_PER_DAY = 24 * 60 * 60
# The Financing calls that pass the receivable to a financier.
FINANCING_SETTLEMENTS = ("acceptOffer", "fundRequest")
# The offers the ledger may still settle.
LIVE_STATUSES = (EarlyPaymentOfferStatus.PENDING, EarlyPaymentOfferStatus.OPEN)


# ---------------------------------------------------------------- the quote


@dataclass(frozen=True)
class EarlyPaymentQuote:
    """What settling `offer` at `at` would do, as the ledger computes it:

        discount = outstanding × annual_rate_bps × seconds_to_due ÷ (10,000 × 365 days), rounded down
        paid     = outstanding − discount

    `seconds_to_due` runs from `at` (whole seconds) to the due date's 00:00 UTC, and is 0 once
    that has passed; `days_early` counts the whole days among them. `expired` is whether the
    offer's expiry has passed at `at` (the ledger then refuses to settle it)."""

    offer: EarlyPaymentOffer
    at: datetime
    outstanding_minor: int
    discount_minor: int
    paid_minor: int
    seconds_to_due: int
    days_early: int
    annual_rate_percent: Decimal
    expired: bool


def discount_minor(outstanding: int, annual_rate_bps: int, seconds_to_due: int) -> int:
    """The ledger's discount (Financing.acceptEarlyPayment): integer arithmetic, rounded down."""
    return outstanding * annual_rate_bps * max(seconds_to_due, 0) // (BPS_WHOLE * SECONDS_PER_YEAR)


def annual_rate_percent(offer: EarlyPaymentOffer) -> Decimal:
    """The offer's annual rate in percent, to two decimals: 1250 basis points are 12.50."""
    return (Decimal(offer.annual_rate_bps) / BPS_PER_PERCENT).quantize(Decimal("0.01"))


def early_payment_quote(offer: EarlyPaymentOffer, at: datetime | None = None) -> EarlyPaymentQuote:
    """The offer's terms at `at` (now, by the ledger's clock, unless given): see EarlyPaymentQuote."""
    at = ledger_now() if at is None else at
    invoice = offer.invoice
    outstanding = outstanding_minor(invoice)
    seconds = max(ledger_seconds(due_instant(invoice)) - ledger_seconds(at), 0)
    discount = discount_minor(outstanding, offer.annual_rate_bps, seconds)
    return EarlyPaymentQuote(
        offer=offer,
        at=at,
        outstanding_minor=outstanding,
        discount_minor=discount,
        paid_minor=outstanding - discount,
        seconds_to_due=seconds,
        days_early=seconds // SECONDS_PER_DAY,
        annual_rate_percent=annual_rate_percent(offer),
        expired=ledger_seconds(at) > ledger_seconds(offer.expiry),
    )


# ---------------------------------------------------------------- the buyer


@atomic
def offer_early_payment(
    actor: Actor, invoice_id: int, *, annual_rate: Decimal | str, expiry: datetime
) -> EarlyPaymentOffer:
    """The buyer offers to pay its confirmed payable now, less a discount at `annual_rate`
    percent a year for the time left to the due date, until `expiry`; a second offer revises
    the first (the ledger keeps one per receivable), which goes back to pending."""
    invoice = get_authorized(actor, Action.OFFER_EARLY_PAYMENT, Invoice, invoice_id)
    require_participant(actor.organisation)
    require_settleable(invoice)
    if invoice.delinquency != Delinquency.NONE:
        raise InvalidState(f"the receivable is {invoice.delinquency}: it can no longer be paid early")
    due = due_instant(invoice)
    now = ledger_now()
    if ledger_seconds(now) >= ledger_seconds(due):
        raise InvalidState(f"the receivable is due ({due.isoformat()}): there is nothing to pay early")
    _require_no_acceptance_on_its_way(invoice)

    errors: dict[str, list[str]] = {}
    rate_bps = _rate_bps(annual_rate, errors)
    if rate_bps is not None and discount_minor(
        outstanding_minor(invoice), rate_bps, ledger_seconds(due) - ledger_seconds(now)
    ) >= outstanding_minor(invoice):
        errors.setdefault("annual_rate", []).append("at this rate the discount would be the whole amount owed")
    expiry = instant(expiry, "expiry", errors)
    if expiry is not None and not ledger_seconds(now) < ledger_seconds(expiry) <= ledger_seconds(due):
        errors.setdefault("expiry", []).append(
            f"must be in the future and no later than the due date ({due.isoformat()})")
    raise_input_errors(errors)
    assert rate_bps is not None and expiry is not None  # no errors: both were read

    offer = _offer_on(invoice)
    before = None if offer is None else _state(offer)
    if offer is None:
        offer = EarlyPaymentOffer(invoice=invoice)
        db.session.add(offer)
    offer.buyer = actor.organisation
    offer.annual_rate_bps = rate_bps
    offer.expiry = expiry
    offer.status = EarlyPaymentOfferStatus.PENDING
    offer.repayment = None
    offer.paid_minor = offer.discount_minor = None
    db.session.flush()
    # Every revision is a write of its own, whatever became of the ones before it.
    queue_ledger_call(
        actor,
        intent_key=outbox.next_attempt_key(f"{EARLY_PAYMENT_SUBJECT}:{offer.id}:offer"),
        function="offerEarlyPayment",
        args=[invoice.receivable_id, rate_bps, ledger_seconds(expiry)],
        invoice=invoice,
        subject_type=EARLY_PAYMENT_SUBJECT,
        subject_id=offer.id,
    )
    audit.record(actor, Action.OFFER_EARLY_PAYMENT, EARLY_PAYMENT_SUBJECT, offer.id, before=before,
                 after=_state(offer))
    return offer


@atomic
def withdraw_early_payment(actor: Actor, invoice_id: int) -> EarlyPaymentOffer:
    """The buyer withdraws its open offer (Financing.withdrawEarlyPayment)."""
    invoice = get_authorized(actor, Action.WITHDRAW_EARLY_PAYMENT, Invoice, invoice_id)
    require_participant(actor.organisation)
    offer = _require_offer(invoice)
    _require_open(offer)
    _require_no_acceptance_on_its_way(invoice)
    function = "withdrawEarlyPayment"
    queue_ledger_call(
        actor,
        intent_key=outbox.next_attempt_key(f"{EARLY_PAYMENT_SUBJECT}:{offer.id}:withdraw", one_at_a_time=True),
        function=function,
        args=[invoice.receivable_id],
        invoice=invoice,
        subject_type=EARLY_PAYMENT_SUBJECT,
        subject_id=offer.id,
    )
    state = _state(offer)
    audit.record(actor, Action.WITHDRAW_EARLY_PAYMENT, EARLY_PAYMENT_SUBJECT, offer.id, before=state,
                 after={**state, "pending_action": function})
    return offer


# ---------------------------------------------------------------- the holder


@atomic
def accept_early_payment(actor: Actor, offer_id: int, *, discount_seen: Decimal | str) -> EarlyPaymentOffer:
    """The holder accepts the buyer's open offer: the buyer's tokens, the outstanding amount less
    the discount, go to the holder and the receivable is repaid in full, in one ledger
    transaction (Financing.acceptEarlyPayment). `discount_seen` (in the receivable's currency)
    is the discount the holder was shown and the most it accepts."""
    offer = _get_offer(actor, Action.ACCEPT_EARLY_PAYMENT, offer_id)
    invoice = offer.invoice
    require_participant(actor.organisation)
    _require_open(offer)
    intent_key = outbox.next_attempt_key(f"{EARLY_PAYMENT_SUBJECT}:{offer.id}:accept", one_at_a_time=True)
    _require_no_write_on_its_way(offer, invoice)
    require_settleable(invoice)
    if invoice.delinquency != Delinquency.NONE:
        raise InvalidState(f"the receivable is {invoice.delinquency}: it can no longer be paid early")

    errors: dict[str, list[str]] = {}
    seen_minor = _discount_seen_minor(discount_seen, invoice, errors)
    raise_input_errors(errors)
    assert seen_minor is not None  # no errors: it was read
    quote = early_payment_quote(offer)
    if quote.expired:
        raise InvalidState(f"the offer expired at {offer.expiry.isoformat()}")
    if quote.discount_minor > seen_minor:
        raise InvalidState(
            f"offer changed: the discount is now {shown(quote.discount_minor, invoice.currency)}, "
            f"more than the {shown(seen_minor, invoice.currency)} accepted"
        )
    pending = _pending_repayments(invoice)
    if pending:
        raise InvalidState(f"a repayment of {shown(pending[0].amount_minor, invoice.currency)} is on its way: "
                           "accept once the ledger has recorded it")
    # The ledger takes the buyer's tokens, so the buyer must still be a participant, as a buyer.
    require_participant(invoice.buyer, Role.BUYER)

    before = _state(offer)
    repayment = Repayment(invoice=invoice, payer=invoice.buyer, amount_minor=quote.outstanding_minor,
                          status=RepaymentStatus.PENDING)
    db.session.add(repayment)
    offer.repayment = repayment
    db.session.flush()
    queue_ledger_call(
        actor,
        intent_key=intent_key,
        function=ACCEPT_FUNCTION,
        args=[invoice.receivable_id, seen_minor],
        invoice=invoice,
        subject_type=REPAYMENT_SUBJECT,
        subject_id=repayment.id,
    )
    audit.record(actor, Action.ACCEPT_EARLY_PAYMENT, EARLY_PAYMENT_SUBJECT, offer.id, before=before,
                 after={**_state(offer), "pending_action": ACCEPT_FUNCTION, "max_discount_minor": seen_minor,
                        "quoted_paid_minor": quote.paid_minor})
    return offer


# ---------------------------------------------------------------- expiry


def lapse_expired_early_payment_offers() -> list[int]:
    """Marks open offers past their expiry LAPSED (the ledger refuses to settle them anyway),
    unless an acceptance is on its way (it may have been mined in time: the indexer decides),
    one offer per database transaction, and tells the buyer and the holder. Returns the
    offers' ids. For the schedules, beside `schedules.lapse_expired_offers`."""
    now = ledger_now()
    expired = db.session.scalars(select(EarlyPaymentOffer.id).where(
        EarlyPaymentOffer.status == EarlyPaymentOfferStatus.OPEN, EarlyPaymentOffer.expiry < now
    ).order_by(EarlyPaymentOffer.id)).all()
    db.session.rollback()  # end the read: each lapse is a transaction of its own
    return [offer_id for offer_id in expired if _lapse(offer_id)]


@atomic
def _lapse(offer_id: int) -> bool:
    offer = db.session.get(EarlyPaymentOffer, offer_id)
    if offer is None or pending_actions(offer):
        return False
    changed = db.session.execute(
        update(EarlyPaymentOffer)
        .where(EarlyPaymentOffer.id == offer_id, EarlyPaymentOffer.status == EarlyPaymentOfferStatus.OPEN)
        .values(status=EarlyPaymentOfferStatus.LAPSED, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not changed:  # another run lapsed it, or the indexer moved it on, first
        return False
    db.session.refresh(offer)
    audit.record(None, "early_payment.lapse", EARLY_PAYMENT_SUBJECT, offer.id,
                 before={"status": str(EarlyPaymentOfferStatus.OPEN)}, after={"status": str(offer.status)})
    webhooks.publish("early_payment.lapsed", organisations=(offer.buyer, offer.invoice.holder),
                     payload={"early_payment_offer_id": offer.id, "invoice_id": offer.invoice_id,
                              "status": str(offer.status), "expiry": offer.expiry.isoformat()},
                     event_key=f"early_payment_offer:{offer.id}:lapsed:{offer.expiry.isoformat()}")
    return True


# ---------------------------------------------------------------- reads


def early_payment_offer(actor: Actor, invoice_id: int) -> EarlyPaymentOffer:
    """The early payment offer on an invoice the actor may see; NotFound when it has none."""
    invoice = get_authorized(actor, Action.VIEW_EARLY_PAYMENT, Invoice, invoice_id)
    # The buyer's terms are between it and whoever it would pay: a financier looking at the
    # receivable in the market is not told them.
    if not (reads_everything(actor) or actor.organisation.id in (invoice.buyer_id, invoice.holder_id)):
        raise NotFound("no early payment offer on this receivable")
    return _require_offer(invoice)


def pending_actions(offer: EarlyPaymentOffer) -> list[ChainTransaction]:
    """The ledger writes queued for the offer and not yet mined (its status moves on only once
    they are), oldest first: its offers and withdrawal, and the holder's acceptance (queued as
    the repayment it makes). For an offer the caller has been authorised to see."""
    return outbox.in_flight(or_(
        and_(ChainTransaction.subject_type == EARLY_PAYMENT_SUBJECT, ChainTransaction.subject_id == offer.id),
        and_(ChainTransaction.invoice_id == offer.invoice_id, ChainTransaction.function == ACCEPT_FUNCTION),
    ))


# ---------------------------------------------------------------- internals


def _rate_bps(annual_rate: Decimal | str, errors: dict[str, list[str]]) -> int | None:
    """`annual_rate` percent in whole basis points; None, with the reason under `annual_rate`,
    when it is not a percentage the ledger can hold."""
    try:
        percent = Decimal(str(annual_rate).strip())
    except InvalidOperation:
        percent = None
    if percent is None or not percent.is_finite():
        errors.setdefault("annual_rate", []).append("must be a percentage, for example 12.5")
        return None
    # Bounded before scaling: "1e999999999" would overflow the decimal context.
    if not 0 < percent <= Decimal(MAX_RATE_BPS) / BPS_PER_PERCENT:
        errors.setdefault("annual_rate", []).append(
            f"must be more than 0 and at most {Decimal(MAX_RATE_BPS) / BPS_PER_PERCENT} percent"
        )
        return None
    bps = percent * BPS_PER_PERCENT
    if bps != bps.to_integral_value():
        errors.setdefault("annual_rate", []).append("at most two decimals (whole basis points)")
        return None
    return int(bps)


def _discount_seen_minor(discount_seen: Decimal | str, invoice: Invoice, errors: dict[str, list[str]]) -> int | None:
    """The discount the holder saw in minor units of the invoice's currency; None, with the
    reason under `discount_seen`, when it is not such an amount. Zero (the due date too near for
    any discount) is an answer too, which an amount to pay never is."""
    try:
        if Decimal(str(discount_seen).strip()) == 0:
            return 0
    except InvalidOperation:
        pass  # not a number at all: the amount's own check says so
    return amount_in_minor_units(discount_seen, invoice.currency, invoice, "discount_seen", errors)


def _offer_on(invoice: Invoice) -> EarlyPaymentOffer | None:
    return db.session.scalar(select(EarlyPaymentOffer).where(EarlyPaymentOffer.invoice_id == invoice.id))


def _require_offer(invoice: Invoice) -> EarlyPaymentOffer:
    offer = _offer_on(invoice)
    if offer is None:
        raise NotFound("no early payment offer on this receivable")
    return offer


def _get_offer(actor: Actor, action: Action, offer_id: int) -> EarlyPaymentOffer:
    """The offer, once the actor may do `action` to its invoice; NotFound as for the invoice."""
    offer = db.session.get(EarlyPaymentOffer, offer_id)
    if offer is None:
        require_active(actor.organisation)  # an inactive organisation learns nothing, not even this
        raise NotFound("no such early payment offer")
    authorize(actor, action, offer.invoice)
    return offer


def _require_open(offer: EarlyPaymentOffer) -> None:
    if offer.status != EarlyPaymentOfferStatus.OPEN:
        raise InvalidState(f"the early payment offer is {offer.status}, not open")


def _require_no_acceptance_on_its_way(invoice: Invoice) -> None:
    """Once the holder's acceptance is queued, the offer it accepted must stand until the
    ledger answers."""
    accepting = outbox.in_flight(ChainTransaction.invoice_id == invoice.id,
                                 ChainTransaction.function == ACCEPT_FUNCTION)
    if accepting:
        raise InvalidState(f"the holder's acceptance of the early payment offer is {accepting[0].status}")


def _require_no_write_on_its_way(offer: EarlyPaymentOffer, invoice: Invoice) -> None:
    """What the acceptance would race on the ledger: the buyer's revision or withdrawal of the
    offer (the offer accepted must be the one quoted), or a financing settlement, which passes
    the receivable to a financier (the acceptance would then revert with NotHolder)."""
    on_its_way = outbox.in_flight(or_(
        and_(ChainTransaction.subject_type == EARLY_PAYMENT_SUBJECT, ChainTransaction.subject_id == offer.id),
        and_(ChainTransaction.invoice_id == invoice.id, ChainTransaction.function.in_(FINANCING_SETTLEMENTS)),
    ))
    if on_its_way:
        raise InvalidState(f"{on_its_way[0].function} is {on_its_way[0].status} on this receivable: "
                           "accept once the ledger has answered it")


def _pending_repayments(invoice: Invoice) -> list[Repayment]:
    return list(db.session.scalars(select(Repayment).where(
        Repayment.invoice_id == invoice.id, Repayment.status == RepaymentStatus.PENDING).order_by(Repayment.id)))


def _state(offer: EarlyPaymentOffer) -> dict[str, Any]:
    return {
        "invoice_id": offer.invoice_id,
        "status": str(offer.status),
        "annual_rate_bps": offer.annual_rate_bps,
        "expiry": offer.expiry.isoformat(),
        "repayment_id": offer.repayment_id,
    }
