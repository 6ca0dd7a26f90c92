"""Early payment services (backend/services/early_payment.py): the quote is the ledger's
integer formula; the buyer's offer, revision and withdrawal and the holder's acceptance queue
exactly the Financing call the contract expects, with an audit entry, after the same checks it
makes; every refusal leaves the database as it was."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import (
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    EarlyPaymentOffer,
    EarlyPaymentOfferStatus,
    Invoice,
    InvoiceStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    Role,
)
from backend.services import early_payment, outbox, servicing
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, NotFound, PermissionDenied
from backend.services.ledger import due_instant
from tests import domain_factories as factories
from tests.domain_factories import assert_refused, audit_entries, outbox_rows


@dataclass
class Payable:
    supplier: Organisation
    buyer: Organisation
    financier: Organisation
    invoice: Invoice  # confirmed, CNY 10,000.00 (1,000,000 minor), due in 60 days, held by the financier
    holder: Actor
    payer: Actor
    seller: Actor  # the supplier, which no longer holds it


@pytest.fixture
def payable(db_session: Any) -> Payable:
    supplier = factories.organisation(Role.SUPPLIER)
    buyer = factories.organisation(Role.BUYER)
    financier = factories.organisation(Role.FINANCIER)
    invoice = factories.invoice(supplier, buyer, holder=financier)
    world = Payable(supplier, buyer, financier, invoice, factories.actor(financier), factories.actor(buyer),
                    factories.actor(supplier))
    db.session.commit()  # a refused call rolls its transaction back: the world before it must stay
    return world


def in_days(days: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)


def offer(world: Payable, **overrides: Any) -> EarlyPaymentOffer:
    terms = {"annual_rate": "12", "expiry": in_days(20), **overrides}
    return early_payment.offer_early_payment(world.payer, world.invoice.id, **terms)


def open_offer(world: Payable, **kwargs: Any) -> EarlyPaymentOffer:
    row = factories.early_payment_offer(world.invoice, **kwargs)
    db.session.commit()
    return row


# ---------------------------------------------------------------- the quote


def test_the_discount_is_the_ledgers_integer_formula_rounded_down() -> None:
    # 1,000,000 × 1,200 × 2,592,000 / (10,000 × 31,536,000) = 9,863.01…
    assert early_payment.discount_minor(1_000_000, 1200, 30 * 86_400) == 9_863
    assert early_payment.discount_minor(1_000_000, 1200, 0) == 0
    assert early_payment.discount_minor(1_000_000, 1200, -5) == 0  # past the due date: nothing early
    # Exact integers, beyond what a float holds.
    assert early_payment.discount_minor(2**63 - 1, 65_535, 86_400) == (2**63 - 1) * 65_535 * 86_400 // 315_360_000_000


def test_a_quote_thirty_days_before_the_due_date(payable: Payable) -> None:
    row = open_offer(payable, annual_rate_bps=1200, expiry_in_days=45)
    thirty_days_early = due_instant(payable.invoice) - timedelta(days=30)

    quote = early_payment.early_payment_quote(row, at=thirty_days_early)

    assert (quote.outstanding_minor, quote.discount_minor, quote.paid_minor) == (1_000_000, 9_863, 990_137)
    assert (quote.seconds_to_due, quote.days_early, str(quote.annual_rate_percent)) == (2_592_000, 30, "12.00")
    assert not quote.expired
    later = early_payment.early_payment_quote(row, at=thirty_days_early + timedelta(days=10))
    assert later.discount_minor < quote.discount_minor  # the discount only shrinks
    assert early_payment.early_payment_quote(row, at=row.expiry + timedelta(seconds=1)).expired


def test_part_repaid_the_discount_is_on_what_is_outstanding(payable: Payable) -> None:
    payable.invoice.repaid_minor = 400_000
    row = open_offer(payable)
    quote = early_payment.early_payment_quote(row, at=due_instant(payable.invoice) - timedelta(days=30))
    assert (quote.outstanding_minor, quote.discount_minor) == (600_000, 5_917)


# ---------------------------------------------------------------- the buyer's offer


def test_an_offer_is_pending_with_its_ledger_call_and_audit_entry(payable: Payable) -> None:
    expiry = in_days(20)
    row = offer(payable, annual_rate="12.5", expiry=expiry + timedelta(microseconds=300))

    assert (row.status, row.annual_rate_bps, row.buyer_id, row.expiry) == (
        EarlyPaymentOfferStatus.PENDING, 1250, payable.buyer.id, expiry)
    [call] = outbox_rows()
    assert (call.contract, call.function, call.signer_id) == (ContractName.FINANCING, "offerEarlyPayment",
                                                              payable.buyer.id)
    assert call.args == [payable.invoice.receivable_id, 1250, int(expiry.timestamp())]
    assert call.intent_key == f"early_payment_offer:{row.id}:offer:1"
    assert (call.subject_type, call.subject_id, call.invoice_id) == ("early_payment_offer", row.id,
                                                                     payable.invoice.id)
    [entry] = audit_entries()
    assert (entry.action, entry.subject_id, entry.after["annual_rate_bps"]) == ("early_payment.offer", str(row.id),
                                                                                 1250)


def test_a_second_offer_revises_the_first_in_place(payable: Payable) -> None:
    first = open_offer(payable, annual_rate_bps=1200)

    revised = offer(payable, annual_rate="9.75")

    assert revised.id == first.id
    assert (revised.status, revised.annual_rate_bps) == (EarlyPaymentOfferStatus.PENDING, 975)
    assert outbox_rows()[-1].intent_key == f"early_payment_offer:{first.id}:offer:1"
    offer(payable, annual_rate="9")
    assert outbox_rows()[-1].intent_key == f"early_payment_offer:{first.id}:offer:2"
    assert audit_entries()[-1].before["annual_rate_bps"] == 975


@pytest.mark.parametrize(("overrides", "field", "reason"), [
    ({"annual_rate": "twelve"}, "annual_rate", "must be a percentage"),
    ({"annual_rate": "NaN"}, "annual_rate", "must be a percentage"),
    ({"annual_rate": "12.345"}, "annual_rate", "at most two decimals"),
    ({"annual_rate": "0"}, "annual_rate", "more than 0"),
    # The ledger refuses more than 10,000 basis points (InvalidDiscountRate), though a uint16 holds them.
    ({"annual_rate": "100.01"}, "annual_rate", "at most 100 percent"),
    ({"annual_rate": "655.35"}, "annual_rate", "at most 100 percent"),
    ({"annual_rate": "1e999999999"}, "annual_rate", "at most 100 percent"),  # no decimal overflow
    ({"expiry": datetime(2030, 1, 1)}, "expiry", "time zone"),
    ({"expiry": in_days(-1)}, "expiry", "in the future"),
    ({"expiry": in_days(61)}, "expiry", "no later than the due date"),
])
def test_bad_terms_are_refused_by_field(payable: Payable, overrides: dict[str, Any], field: str,
                                        reason: str) -> None:
    refusal = assert_refused(InvalidInput, offer, payable, **overrides)
    assert list(refusal.value.errors) == [field]
    assert reason in refusal.value.errors[field][0]


def test_a_rate_whose_discount_is_the_whole_amount_is_refused(payable: Payable) -> None:
    """Possible only over a year before the due date: 100 % for 400 days is more than the
    amount, 91 % is not (the ledger's `annualRateBps × seconds ≥ 10,000 × 365 days`)."""
    payable.invoice.due_date = datetime.now(UTC).date() + timedelta(days=400)
    db.session.commit()
    refusal = assert_refused(InvalidInput, offer, payable, annual_rate="100")
    assert "the whole amount" in refusal.value.errors["annual_rate"][0]
    assert offer(payable, annual_rate="91").annual_rate_bps == 9100


def test_only_the_buyer_of_a_confirmed_payable_not_yet_due_may_offer(payable: Payable) -> None:
    assert_refused(PermissionDenied, early_payment.offer_early_payment, payable.seller, payable.invoice.id,
                   annual_rate="12", expiry=in_days(20))
    stranger = factories.actor(factories.organisation(Role.BUYER))
    db.session.commit()
    assert_refused(NotFound, early_payment.offer_early_payment, stranger, payable.invoice.id,
                   annual_rate="12", expiry=in_days(20))
    for change, message in ((("status", InvoiceStatus.REGISTERED), "not confirmed"),
                            (("delinquency", Delinquency.OVERDUE), "overdue"),
                            (("currency", "EUR"), "only CNY receivables"),
                            (("due_date", datetime.now(UTC).date()), "is due")):
        saved = getattr(payable.invoice, change[0])
        setattr(payable.invoice, change[0], change[1])
        db.session.commit()
        assert message in str(assert_refused(InvalidState, offer, payable).value)
        setattr(payable.invoice, change[0], saved)
        db.session.commit()


# ---------------------------------------------------------------- withdrawal


def test_the_buyer_withdraws_its_open_offer_once_at_a_time(payable: Payable) -> None:
    row = open_offer(payable)

    early_payment.withdraw_early_payment(payable.payer, payable.invoice.id)

    [call] = outbox_rows()
    assert (call.function, call.args, call.intent_key) == (
        "withdrawEarlyPayment", [payable.invoice.receivable_id], f"early_payment_offer:{row.id}:withdraw:1")
    assert row.status == EarlyPaymentOfferStatus.OPEN  # until the ledger's event is read
    assert [action.function for action in early_payment.pending_actions(row)] == ["withdrawEarlyPayment"]
    assert audit_entries()[-1].after["pending_action"] == "withdrawEarlyPayment"
    assert_refused(Duplicate, early_payment.withdraw_early_payment, payable.payer, payable.invoice.id)


def test_only_an_open_offer_is_withdrawn_and_only_by_the_buyer(payable: Payable) -> None:
    assert_refused(NotFound, early_payment.withdraw_early_payment, payable.payer, payable.invoice.id)
    open_offer(payable, status=EarlyPaymentOfferStatus.PENDING)
    assert_refused(InvalidState, early_payment.withdraw_early_payment, payable.payer, payable.invoice.id)
    assert_refused(PermissionDenied, early_payment.withdraw_early_payment, payable.holder, payable.invoice.id)


# ---------------------------------------------------------------- acceptance


def test_the_holder_accepts_at_the_discount_it_saw(payable: Payable) -> None:
    row = open_offer(payable, annual_rate_bps=1200)
    quote = early_payment.early_payment_quote(row)

    early_payment.accept_early_payment(payable.holder, row.id, discount_seen=str(quote.discount_minor / 100))

    [call] = outbox_rows()
    repayment = db.session.get(Repayment, call.subject_id)
    assert (call.function, call.signer_id, call.args) == (
        "acceptEarlyPayment", payable.financier.id, [payable.invoice.receivable_id, quote.discount_minor])
    assert call.intent_key == f"early_payment_offer:{row.id}:accept:1"
    assert call.subject_type == "repayment"  # a refused settlement fails the repayment
    # The acceptance repays the whole outstanding amount on the ledger; the buyer pays it.
    assert (repayment.amount_minor, repayment.payer_id, repayment.status) == (
        1_000_000, payable.buyer.id, RepaymentStatus.PENDING)
    assert row.repayment_id == repayment.id and row.status == EarlyPaymentOfferStatus.OPEN
    assert [action.function for action in early_payment.pending_actions(row)] == ["acceptEarlyPayment"]
    entry = audit_entries()[-1]
    assert (entry.action, entry.after["max_discount_minor"]) == ("early_payment.accept", quote.discount_minor)
    # Nothing else may be queued on the payable until the ledger answers.
    assert_refused(Duplicate, early_payment.accept_early_payment, payable.holder, row.id, discount_seen="100")
    assert_refused(InvalidState, offer, payable, annual_rate="20")
    assert_refused(InvalidInput, servicing.repay, payable.payer, payable.invoice.id, amount="1.00", currency="CNY")


def test_an_acceptance_below_the_discount_now_due_is_refused(payable: Payable) -> None:
    row = open_offer(payable, annual_rate_bps=1200)
    quote = early_payment.early_payment_quote(row)
    seen = f"{(quote.discount_minor - 1) / 100:.2f}"
    refusal = assert_refused(InvalidState, early_payment.accept_early_payment, payable.holder, row.id,
                             discount_seen=seen)
    assert "offer changed" in str(refusal.value)
    assert list(assert_refused(InvalidInput, early_payment.accept_early_payment, payable.holder, row.id,
                               discount_seen="a lot").value.errors) == ["discount_seen"]


def test_only_the_holder_accepts_an_open_live_offer(payable: Payable) -> None:
    row = open_offer(payable, expiry_in_days=-1)
    generous = "10000.00"
    assert "expired" in str(assert_refused(InvalidState, early_payment.accept_early_payment, payable.holder, row.id,
                                           discount_seen=generous).value)
    row.expiry = in_days(5)
    row.status = EarlyPaymentOfferStatus.WITHDRAWN
    db.session.commit()
    assert_refused(InvalidState, early_payment.accept_early_payment, payable.holder, row.id, discount_seen=generous)
    row.status = EarlyPaymentOfferStatus.OPEN
    db.session.commit()
    assert_refused(PermissionDenied, early_payment.accept_early_payment, payable.payer, row.id,
                   discount_seen=generous)
    assert_refused(PermissionDenied, early_payment.accept_early_payment, payable.seller, row.id,
                   discount_seen=generous)
    assert_refused(NotFound, early_payment.accept_early_payment, payable.holder, row.id + 1, discount_seen=generous)
    db.session.add(Repayment(invoice=payable.invoice, payer=payable.buyer, amount_minor=100,
                             status=RepaymentStatus.PENDING))
    db.session.commit()
    assert "on its way" in str(assert_refused(InvalidState, early_payment.accept_early_payment, payable.holder,
                                              row.id, discount_seen=generous).value)


def test_no_acceptance_while_a_write_it_would_race_is_on_its_way(payable: Payable) -> None:
    """The buyer's revision or withdrawal, or a financing settlement that passes the receivable
    on, would make the ledger refuse the acceptance or settle an offer the holder never saw."""
    row = open_offer(payable, annual_rate_bps=1200)
    generous = "10000.00"
    early_payment.withdraw_early_payment(payable.payer, payable.invoice.id)
    refusal = assert_refused(InvalidState, early_payment.accept_early_payment, payable.holder, row.id,
                             discount_seen=generous)
    assert "withdrawEarlyPayment" in str(refusal.value)

    outbox_rows()[-1].status = ChainTransactionStatus.REVERTED
    # The financier resold the receivable: another financier's funding of its request is on its way.
    outbox.enqueue(intent_key="financing_request:1:fund:9:1", signer=factories.organisation(Role.FINANCIER),
                   contract=ContractName.FINANCING, function="fundRequest", args=[payable.invoice.receivable_id],
                   invoice=payable.invoice, subject_type="financing_request", subject_id=1)
    db.session.commit()
    refusal = assert_refused(InvalidState, early_payment.accept_early_payment, payable.holder, row.id,
                             discount_seen=generous)
    assert "fundRequest" in str(refusal.value)
    assert not db.session.scalars(select(Repayment)).all()


def test_the_buyer_must_still_be_a_buyer_on_the_ledger(payable: Payable) -> None:
    row = open_offer(payable)
    payable.buyer.roles = Role.SUPPLIER
    db.session.commit()
    assert "not a buyer" in str(assert_refused(InvalidState, early_payment.accept_early_payment, payable.holder,
                                               row.id, discount_seen="10000.00").value)


def test_the_offer_is_read_by_its_buyer_its_holder_and_the_readers_of_everything(payable: Payable) -> None:
    assert_refused(NotFound, early_payment.early_payment_offer, payable.holder, payable.invoice.id)
    row = open_offer(payable)
    assert early_payment.early_payment_offer(payable.holder, payable.invoice.id) is row
    assert early_payment.early_payment_offer(payable.payer, payable.invoice.id) is row
    auditor = factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))
    stranger = factories.actor(factories.organisation(Role.FINANCIER))
    # A financier that sees the receivable in the market (an open request) is not told the terms.
    market_reader = factories.actor(factories.organisation(Role.FINANCIER))
    factories.financing_request(payable.invoice)
    db.session.commit()
    assert early_payment.early_payment_offer(auditor, payable.invoice.id) is row
    assert_refused(NotFound, early_payment.early_payment_offer, stranger, payable.invoice.id)
    assert_refused(NotFound, early_payment.early_payment_offer, market_reader, payable.invoice.id)


# ---------------------------------------------------------------- expiry


def test_expired_open_offers_lapse_once_unless_an_acceptance_is_on_its_way(payable: Payable) -> None:
    expired = open_offer(payable, expiry_in_days=-1)
    other_buyer_payable = factories.invoice(payable.supplier, payable.buyer, holder=payable.financier)
    accepting = factories.early_payment_offer(other_buyer_payable, expiry_in_days=1)
    db.session.commit()
    early_payment.accept_early_payment(payable.holder, accepting.id, discount_seen="10000.00")
    accepting.expiry = in_days(-1)
    live = factories.early_payment_offer(factories.invoice(payable.supplier, payable.buyer), expiry_in_days=5)
    db.session.commit()

    assert early_payment.lapse_expired_early_payment_offers() == [expired.id]
    assert early_payment.lapse_expired_early_payment_offers() == []

    assert (expired.status, accepting.status, live.status) == (
        EarlyPaymentOfferStatus.LAPSED, EarlyPaymentOfferStatus.OPEN, EarlyPaymentOfferStatus.OPEN)
    entry = audit_entries()[-1]
    assert (entry.action, entry.subject_id, entry.actor_organisation_id) == ("early_payment.lapse", str(expired.id),
                                                                              None)


def test_no_discount_left_is_accepted_as_zero(payable: Payable) -> None:
    payable.invoice.due_date = datetime.now(UTC).date() + timedelta(days=1)
    row = open_offer(payable, annual_rate_bps=1, expiry_in_days=1)
    assert early_payment.early_payment_quote(row).discount_minor == 0

    early_payment.accept_early_payment(payable.holder, row.id, discount_seen="0.00")

    assert outbox_rows()[-1].args == [payable.invoice.receivable_id, 0]
