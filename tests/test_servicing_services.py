"""Servicing services: the buyer's repayments, the holder's overdue and default marks (judged
against the due date's 00:00 UTC plus the servicing periods, as the ledger judges them), the
financier's portfolio and the list of repayments."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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
    Invoice,
    InvoiceStatus,
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
