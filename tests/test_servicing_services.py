"""Servicing services: the buyer's repayments, the holder's overdue and default marks (judged
against the due date's 00:00 UTC plus the servicing periods, as the ledger judges them), the
financier's portfolio and the list of repayments."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    EarlyPaymentOffer,
    EarlyPaymentOfferStatus,
    FinancingRequestStatus,
    Invoice,
    InvoiceStatus,
    OfferStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    Role,
)
from backend.services import ledger, servicing
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, NotFound, PermissionDenied
from tests import domain_factories as factories
from tests.domain_factories import assert_refused, only_audit_entry, only_outbox_row

GRACE, DEFAULT = 5 * 86_400, 30 * 86_400  # the configuration's defaults


@dataclass
class Book:
    supplier: Organisation
    buyer: Organisation
    financier: Organisation
    invoice: Invoice  # confirmed, CNY 10,000.00, held by the financier
    seller: Actor
    payer: Actor
    holder: Actor


def book_with(due_in_days: int) -> Book:
    supplier = factories.organisation(Role.SUPPLIER)
    buyer = factories.organisation(Role.BUYER)
    financier = factories.organisation(Role.FINANCIER)
    invoice = factories.invoice(supplier, buyer, holder=financier, due_in_days=due_in_days,
                                issue_date=date.today() - timedelta(days=120))
    book = Book(supplier, buyer, financier, invoice, factories.actor(supplier), factories.actor(buyer),
                factories.actor(financier))
    db.session.commit()  # a refused call rolls its transaction back: the world before it must stay
    return book


@pytest.fixture
def book(db_session: Any) -> Book:
    """A receivable due in 30 days."""
    return book_with(30)


@pytest.fixture
def late_book(db_session: Any) -> Book:
    """A receivable 40 days past its due date: past the grace period and the default period."""
    return book_with(-40)


# ---------------------------------------------------------------- repayments


def test_the_buyer_repays_in_part(book: Book) -> None:
    repayment = servicing.repay(book.payer, book.invoice.id, amount="2500.50", currency="CNY")

    assert (repayment.status, repayment.amount_minor, repayment.payer_id) == (RepaymentStatus.PENDING, 250_050,
                                                                            book.buyer.id)
    row = only_outbox_row()
    assert (row.contract, row.function, row.signer_id) == (ContractName.FINANCING, "repay", book.buyer.id)
    assert row.args == [book.invoice.receivable_id, 250_050]
    assert (row.intent_key, row.subject_type, row.subject_id) == (f"repayment:{repayment.id}:repay", "repayment",
                                                                  repayment.id)
    entry = only_audit_entry()
    assert (entry.action, entry.subject_type, entry.subject_id) == ("invoice.repay", "repayment", str(repayment.id))
    assert entry.after == {"invoice_id": book.invoice.id, "amount_minor": 250_050, "status": "pending"}


def test_pending_repayments_count_against_what_is_owed(book: Book) -> None:
    book.invoice.repaid_minor = 100_000
    db.session.commit()
    servicing.repay(book.payer, book.invoice.id, amount="6000", currency="CNY")
    refusal = assert_refused(InvalidInput, servicing.repay, book.payer, book.invoice.id, amount="3000.01",
                             currency="CNY")
    assert "3000.00 CNY still to pay" in refusal.value.errors["amount"][0]
    assert servicing.repay(book.payer, book.invoice.id, amount="3000", currency="CNY").amount_minor == 300_000


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [("0", "CNY", "amount"), ("10000.01", "CNY", "amount"), ("1.005", "CNY", "amount"), ("1e3", "CNY", "amount"),
     ("100", "EUR", "currency")],
)
def test_bad_repayments_are_refused_by_field(book: Book, amount: str, currency: str, field: str) -> None:
    refusal = assert_refused(InvalidInput, servicing.repay, book.payer, book.invoice.id, amount=amount,
                             currency=currency)
    assert field in refusal.value.errors


@pytest.mark.parametrize(
    "change",
    [
        {"status": InvoiceStatus.REGISTERED},
        {"status": InvoiceStatus.REPAID},
        {"currency": "EUR"},
    ],
)
def test_only_a_confirmed_receivable_in_the_settlement_currency_is_repaid(book: Book, change: dict[str, Any]) -> None:
    for column, value in change.items():
        setattr(book.invoice, column, value)
    db.session.commit()
    assert_refused(InvalidState, servicing.repay, book.payer, book.invoice.id, amount="1",
                   currency=book.invoice.currency)


def test_the_holder_must_be_an_active_participant_to_be_paid(book: Book) -> None:
    book.financier.suspended = True
    db.session.commit()
    assert_refused(InvalidState, servicing.repay, book.payer, book.invoice.id, amount="1", currency="CNY")


def test_only_the_buyer_repays(book: Book) -> None:
    assert_refused(PermissionDenied, servicing.repay, book.holder, book.invoice.id, amount="1", currency="CNY")
    other_buyer = factories.actor(factories.organisation(Role.BUYER))
    db.session.commit()
    assert_refused(NotFound, servicing.repay, other_buyer, book.invoice.id, amount="1", currency="CNY")


def test_repayments_are_listed_for_those_who_see_the_invoice(book: Book) -> None:
    first = servicing.repay(book.payer, book.invoice.id, amount="1", currency="CNY")
    elsewhere = book_with(30)
    theirs = servicing.repay(elsewhere.payer, elsewhere.invoice.id, amount="2", currency="CNY")
    theirs.status = RepaymentStatus.RECORDED
    db.session.commit()
    auditor = factories.actor(factories.organisation(Role.AUDITOR))
    db.session.commit()

    def listed(actor: Actor, **filters: Any) -> list[Repayment]:
        return sorted(db.session.scalars(servicing.repayments(actor, **filters)), key=lambda row: row.id)

    assert listed(book.payer) == [first]
    assert listed(book.holder) == [first]
    assert listed(book.seller) == [first]
    assert listed(auditor) == [first, theirs]
    assert listed(auditor, status=RepaymentStatus.RECORDED) == [theirs]
    assert listed(auditor, invoice_id=book.invoice.id) == [first]
    assert servicing.get_repayment(book.payer, first.id) is first
    with pytest.raises(NotFound):
        servicing.get_repayment(book.payer, theirs.id)


# ---------------------------------------------------------------- overdue and default


def test_the_holder_marks_a_late_receivable_overdue(late_book: Book) -> None:
    invoice = servicing.mark_overdue(late_book.holder, late_book.invoice.id)
    assert invoice.delinquency == Delinquency.NONE  # until the indexer reads ReceivableOverdue

    row = only_outbox_row()
    assert (row.function, row.args, row.signer_id) == ("markOverdue", [invoice.receivable_id], late_book.financier.id)
    assert (row.intent_key, row.invoice_id) == (f"invoice:{invoice.id}:markOverdue:1", invoice.id)
    entry = only_audit_entry()
    assert (entry.action, entry.subject_type, entry.subject_id) == ("invoice.mark_overdue", "invoice", str(invoice.id))
    assert entry.after == {"status": "confirmed", "delinquency": "none", "pending_action": "markOverdue"}
    assert_refused(Duplicate, servicing.mark_overdue, late_book.holder, late_book.invoice.id)


def test_the_holder_marks_an_overdue_receivable_defaulted(late_book: Book) -> None:
    late_book.invoice.delinquency = Delinquency.OVERDUE
    db.session.commit()
    servicing.mark_defaulted(late_book.holder, late_book.invoice.id)
    row = only_outbox_row()
    assert (row.function, row.args) == ("markDefaulted", [late_book.invoice.receivable_id])
    assert only_audit_entry().action == "invoice.mark_defaulted"


@pytest.mark.parametrize(
    ("mark", "delinquency"),
    [
        (servicing.mark_overdue, Delinquency.OVERDUE),
        (servicing.mark_overdue, Delinquency.DEFAULTED),
        (servicing.mark_defaulted, Delinquency.NONE),
        (servicing.mark_defaulted, Delinquency.DEFAULTED),
    ],
)
def test_each_mark_needs_the_delinquency_before_it(late_book: Book, mark: Any, delinquency: Delinquency) -> None:
    late_book.invoice.delinquency = delinquency
    db.session.commit()
    assert_refused(InvalidState, mark, late_book.holder, late_book.invoice.id)


@pytest.mark.parametrize(("mark", "wait"), [(servicing.mark_overdue, GRACE),
                                            (servicing.mark_defaulted, GRACE + DEFAULT)])
def test_marks_wait_until_after_the_due_date_and_the_periods(
    late_book: Book, monkeypatch: pytest.MonkeyPatch, mark: Any, wait: int
) -> None:
    if mark is servicing.mark_defaulted:
        late_book.invoice.delinquency = Delinquency.OVERDUE
        db.session.commit()
    allowed_after = datetime.combine(late_book.invoice.due_date, time.min, tzinfo=UTC) + timedelta(seconds=wait)
    monkeypatch.setattr(ledger, "utcnow", lambda: allowed_after + timedelta(microseconds=999_999))
    assert_refused(InvalidState, mark, late_book.holder, late_book.invoice.id)  # the same second: not yet
    monkeypatch.setattr(ledger, "utcnow", lambda: allowed_after + timedelta(seconds=1))
    mark(late_book.holder, late_book.invoice.id)


def test_the_servicing_periods_come_from_the_configuration(app: Flask, late_book: Book) -> None:
    app.config["GRACE_PERIOD_SECONDS"] = 50 * 86_400
    assert_refused(InvalidState, servicing.mark_overdue, late_book.holder, late_book.invoice.id)


def test_a_receivable_due_in_the_future_is_not_overdue(book: Book) -> None:
    assert_refused(InvalidState, servicing.mark_overdue, book.holder, book.invoice.id)


def test_only_the_holder_marks_a_confirmed_receivable(late_book: Book) -> None:
    assert_refused(PermissionDenied, servicing.mark_overdue, late_book.seller, late_book.invoice.id)  # sold it
    assert_refused(PermissionDenied, servicing.mark_overdue, late_book.payer, late_book.invoice.id)
    late_book.invoice.status = InvoiceStatus.REPAID
    db.session.commit()
    assert_refused(InvalidState, servicing.mark_overdue, late_book.holder, late_book.invoice.id)


def test_a_mark_the_ledger_refused_may_be_queued_again(late_book: Book) -> None:
    servicing.mark_overdue(late_book.holder, late_book.invoice.id)
    row = only_outbox_row()
    row.raw_tx, row.tx_hash, row.nonce, row.status = "0x00", "0x" + "ab" * 32, 0, ChainTransactionStatus.REVERTED
    db.session.commit()
    servicing.mark_overdue(late_book.holder, late_book.invoice.id)
    assert db.session.scalars(select(ChainTransaction.intent_key).order_by(ChainTransaction.id)).all() == [
        f"invoice:{late_book.invoice.id}:markOverdue:1", f"invoice:{late_book.invoice.id}:markOverdue:2"]


# ---------------------------------------------------------------- portfolio


def test_the_portfolio_holds_what_the_financier_holds_with_totals(book: Book) -> None:
    financier = book.financier
    overdue = factories.invoice(book.supplier, book.buyer, holder=financier, amount_minor=400_000)
    overdue.repaid_minor, overdue.delinquency = 100_000, Delinquency.OVERDUE
    defaulted = factories.invoice(book.supplier, book.buyer, holder=financier, amount_minor=200_000)
    defaulted.delinquency = Delinquency.DEFAULTED
    repaid = factories.invoice(book.supplier, book.buyer, holder=financier, status=InvoiceStatus.REPAID,
                               amount_minor=50_000)
    repaid.repaid_minor = 50_000
    euro = factories.invoice(book.supplier, book.buyer, holder=financier, currency="EUR", amount_minor=70_000)
    factories.invoice(book.supplier, book.buyer)  # the supplier's, not the financier's
    db.session.commit()

    held = servicing.portfolio(book.holder)
    assert sorted(db.session.scalars(held.holdings), key=lambda row: row.id) == [book.invoice, overdue, defaulted,
                                                                                repaid, euro]
    assert held.totals == [
        servicing.PortfolioTotal("CNY", receivables=4, amount_minor=1_650_000, outstanding_minor=1_500_000,
                                 overdue_minor=300_000, defaulted_minor=200_000),
        servicing.PortfolioTotal("EUR", 1, 70_000, 70_000, 0, 0),
    ]
    only_overdue = servicing.portfolio(book.holder, delinquency=Delinquency.OVERDUE)
    assert db.session.scalars(only_overdue.holdings).all() == [overdue]
    assert only_overdue.totals == [servicing.PortfolioTotal("CNY", 1, 400_000, 300_000, 300_000, 0)]
    assert db.session.scalars(servicing.portfolio(book.holder, status=InvoiceStatus.REPAID).holdings).all() == [repaid]
    with pytest.raises(InvalidInput):
        servicing.portfolio(book.holder, status=InvoiceStatus.PENDING)
    with pytest.raises(PermissionDenied):
        servicing.portfolio(book.seller)


# ---------------------------------------------------------------- the financier's yields
#
# Worked examples: amounts in fen (CNY minor units), days counted from the day the ledger
# settled the purchase. Each expected figure is the formula of servicing.HoldingYield done by hand.


def days_from_today(days: int) -> date:
    return date.today() + timedelta(days=days)


def mined_write(function: str, signer: Organisation, invoice: Invoice, subject_type: str, subject_id: int, *,
                block: int, on: date) -> ChainTransaction:
    """A ledger write the platform sent, mined in `block` on the day `on`."""
    row = ChainTransaction(intent_key=f"{subject_type}:{subject_id}:{function}:1", signer=signer, invoice=invoice,
                           contract=ContractName.FINANCING, function=function, args=[], nonce=block, raw_tx="0x00",
                           tx_hash="0x" + secrets.token_hex(32), status=ChainTransactionStatus.MINED,
                           block_number=block, mined_at=datetime.combine(on, time(12), UTC),
                           subject_type=subject_type, subject_id=subject_id)
    db.session.add(row)
    db.session.flush()
    return row


def bought(invoice: Invoice, financier: Organisation, *, paid_minor: int, on: date, block: int = 100,
           via_offer: bool = True) -> None:
    """`financier` bought `invoice` from its supplier for `paid_minor`, settled on the ledger `on`
    in `block`: the supplier accepted its offer, or (not `via_offer`) it funded the request."""
    request = factories.financing_request(invoice, status=FinancingRequestStatus.FUNDED,
                                          asking_advance_minor=paid_minor)
    request.seller_id = invoice.supplier_id
    if via_offer:
        offer = factories.offer(request, financier, advance_minor=paid_minor, status=OfferStatus.ACCEPTED)
        mined_write("acceptOffer", invoice.supplier, invoice, "offer", offer.id, block=block, on=on)
    else:
        mined_write("fundRequest", financier, invoice, "financing_request", request.id, block=block, on=on)


def repaid(invoice: Invoice, amount_minor: int, *, on: date, block: int) -> None:
    """The buyer's repayment of `amount_minor`, recorded on the ledger `on` in `block`."""
    repayment = Repayment(invoice=invoice, payer=invoice.buyer, amount_minor=amount_minor,
                          status=RepaymentStatus.RECORDED, recorded_at=datetime.combine(on, time(9), UTC))
    db.session.add(repayment)
    db.session.flush()
    mined_write("repay", invoice.buyer, invoice, "repayment", repayment.id, block=block, on=on)
    invoice.repaid_minor += amount_minor
    if invoice.repaid_minor == invoice.amount_minor:
        invoice.status = InvoiceStatus.REPAID


def test_the_expected_yield_of_a_receivable_bought_through_an_offer(book: Book) -> None:
    # 10,000.00 due in 30 days, bought 60 days ago for 9,700.00: 300.00 over 90 days.
    bought(book.invoice, book.financier, paid_minor=970_000, on=days_from_today(-60))

    (entry,) = servicing.holding_yields(book.holder, [book.invoice]).values()

    assert (entry.paid_minor, entry.funded_on, entry.received_minor, entry.expected_minor, entry.expected_days) == (
        970_000, days_from_today(-60), 0, 1_000_000, 90)
    # 300 / 9,700 × 365 / 90 × 100 = 12.5429…
    assert entry.expected_yield_percent == Decimal("12.54")
    assert (entry.repaid_on, entry.realised_yield_percent) == (None, None)


def test_a_funded_request_returns_only_what_is_repaid_to_its_financier(book: Book) -> None:
    # 2,000.00 repaid to the supplier before the purchase (an earlier block); the financier funds
    # the request outright at its asking 7,600.00 45 days before the due date, then is repaid 3,000.00.
    repaid(book.invoice, 200_000, on=days_from_today(-50), block=90)
    bought(book.invoice, book.financier, paid_minor=760_000, on=days_from_today(-45), via_offer=False)
    repaid(book.invoice, 300_000, on=days_from_today(-10), block=120)

    entry = servicing.holding_yields(book.holder, [book.invoice])[book.invoice.id]

    # It collects the 8,000.00 outstanding when it bought: 3,000.00 received, 5,000.00 still owed.
    assert (entry.paid_minor, entry.received_minor, entry.expected_minor, entry.expected_days) == (
        760_000, 300_000, 800_000, 75)
    # 400 / 7,600 × 365 / 75 × 100 = 25.6140…
    assert entry.expected_yield_percent == Decimal("25.61")
    assert entry.realised_yield_percent is None  # not repaid in full yet


def test_the_realised_yield_of_a_receivable_repaid_in_full(book: Book) -> None:
    # 5,000.00 due 5 days ago, bought 40 days ago for 4,900.00, repaid 2,000.00 and then the
    # last 3,000.00 10 days ago: 100.00 over 30 days, where 35 were expected.
    invoice = factories.invoice(book.supplier, book.buyer, holder=book.financier, amount_minor=500_000,
                                due_in_days=-5, issue_date=days_from_today(-90))
    bought(invoice, book.financier, paid_minor=490_000, on=days_from_today(-40))
    repaid(invoice, 200_000, on=days_from_today(-20), block=110)
    repaid(invoice, 300_000, on=days_from_today(-10), block=130)

    entry = servicing.holding_yields(book.holder, [invoice])[invoice.id]

    assert (entry.received_minor, entry.repaid_on, entry.realised_days) == (500_000, days_from_today(-10), 30)
    # 100 / 4,900 × 365 / 35 × 100 = 21.2828…; 100 / 4,900 × 365 / 30 × 100 = 24.8299…
    assert (entry.expected_yield_percent, entry.realised_yield_percent) == (Decimal("21.28"), Decimal("24.83"))


def test_a_receivable_paid_early_yields_what_the_buyer_paid(book: Book) -> None:
    # 10,000.00 bought 30 days ago for 9,800.00; the buyer paid it early 10 days ago: 9,950.00
    # for the whole of it (a 50.00 discount), so the financier gained 150.00 in 20 days.
    invoice = factories.invoice(book.supplier, book.buyer, holder=book.financier, amount_minor=1_000_000,
                                due_in_days=30, issue_date=days_from_today(-60))
    bought(invoice, book.financier, paid_minor=980_000, on=days_from_today(-30))
    settlement = Repayment(invoice=invoice, payer=invoice.buyer, amount_minor=1_000_000,
                           status=RepaymentStatus.RECORDED, recorded_at=datetime.combine(days_from_today(-10), time(9), UTC))
    db.session.add(settlement)
    db.session.flush()
    db.session.add(EarlyPaymentOffer(invoice=invoice, buyer=invoice.buyer, annual_rate_bps=1200,
                                     expiry=datetime.combine(days_from_today(-5), time(0), UTC),
                                     status=EarlyPaymentOfferStatus.ACCEPTED, repayment=settlement,
                                     paid_minor=995_000, discount_minor=5_000))
    mined_write("acceptEarlyPayment", book.financier, invoice, "repayment", settlement.id, block=140,
                on=days_from_today(-10))
    invoice.repaid_minor, invoice.status = 1_000_000, InvoiceStatus.REPAID

    entry = servicing.holding_yields(book.holder, [invoice])[invoice.id]

    assert (entry.received_minor, entry.repaid_on, entry.realised_days) == (995_000, days_from_today(-10), 20)
    # 150 / 9,800 × 365 / 20 × 100 = 27.9336…
    assert entry.realised_yield_percent == Decimal("27.93")


def test_only_the_financiers_own_purchases_have_yields(book: Book) -> None:
    transferred = factories.invoice(book.supplier, book.buyer, holder=book.financier)
    funded_by_another = factories.invoice(book.supplier, book.buyer, holder=book.financier)
    bought(funded_by_another, factories.organisation(Role.FINANCIER), paid_minor=900_000, on=days_from_today(-5),
           via_offer=False)
    bought(book.invoice, book.financier, paid_minor=970_000, on=days_from_today(-1))
    stranger = factories.actor(factories.organisation(Role.FINANCIER))

    assert set(servicing.holding_yields(book.holder, [book.invoice, transferred, funded_by_another])) == {
        book.invoice.id}
    assert servicing.holding_yields(stranger, [book.invoice]) == {}  # not its holding
    with pytest.raises(PermissionDenied):
        servicing.holding_yields(book.seller, [book.invoice])


def test_the_portfolio_pools_its_yields_per_currency(book: Book) -> None:
    # Still owed: 300.00 on 9,700.00 for 90 days and 50.00 on 1,950.00 for 30 days:
    # 35,000 / (970,000 × 90 + 195,000 × 30) × 365 × 100 = 13.7144…
    bought(book.invoice, book.financier, paid_minor=970_000, on=days_from_today(-60))
    smaller = factories.invoice(book.supplier, book.buyer, holder=book.financier, amount_minor=200_000,
                                due_in_days=20)
    bought(smaller, book.financier, paid_minor=195_000, on=days_from_today(-10))
    # Repaid in full: 100.00 on 4,900.00 over 30 days (24.83 %), not among the expected.
    done = factories.invoice(book.supplier, book.buyer, holder=book.financier, amount_minor=500_000,
                             due_in_days=-5, issue_date=days_from_today(-90))
    bought(done, book.financier, paid_minor=490_000, on=days_from_today(-40))
    repaid(done, 500_000, on=days_from_today(-10), block=130)

    (total,) = servicing.portfolio(book.holder).totals

    assert (total.currency, total.receivables) == ("CNY", 3)
    assert (total.expected_yield_percent, total.realised_yield_percent) == (Decimal("13.71"), Decimal("24.83"))
    assert servicing.portfolio(book.holder, status=InvoiceStatus.REPAID).totals[0].expected_yield_percent is None


def test_the_overdue_list_holds_the_late_receivables_longest_late_first(book: Book) -> None:
    late = factories.invoice(book.supplier, book.buyer, holder=book.financier, due_in_days=-3,
                             issue_date=days_from_today(-60))
    later = factories.invoice(book.supplier, book.buyer, holder=book.financier, due_in_days=-40,
                              issue_date=days_from_today(-90))
    later.delinquency = Delinquency.DEFAULTED
    factories.invoice(book.supplier, book.buyer, holder=book.financier, due_in_days=-10,
                      issue_date=days_from_today(-60), status=InvoiceStatus.REPAID)
    factories.invoice(book.supplier, book.buyer, due_in_days=-10, issue_date=days_from_today(-60))  # the supplier's

    assert db.session.scalars(servicing.overdue_holdings(book.holder)).all() == [later, late]
    assert (servicing.days_late(later), servicing.days_late(book.invoice)) == (40, -30)
    with pytest.raises(PermissionDenied):
        servicing.overdue_holdings(book.payer)
