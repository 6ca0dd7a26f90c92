"""The models' constraints hold in the database itself, on SQLite and on PostgreSQL alike,
and values come back as they went in (enums, role bits, UTC timestamps, JSON)."""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Enum, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from backend.chain import client
from backend.extensions import db
from backend.models import (
    AmlAlertReview,
    AmlAlertStatus,
    ChainEvent,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    EarlyPaymentOffer,
    ExposureLimit,
    FinancingRequest,
    IndexerCursor,
    ReconciliationRun,
    WebhookDelivery,
    WebhookEndpoint,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    KycReview,
    KycStatus,
    Offer,
    Organisation,
    Repayment,
    Role,
    ScreeningHit,
    Side,
    SigningKey,
    TokenOperation,
    TokenOperationKind,
    User,
)

ISSUE_DATE = date(2026, 3, 1)
DUE_DATE = date(2026, 5, 30)


def number_hash(invoice_number: str) -> str:
    return "0x" + hashlib.sha256(invoice_number.encode()).hexdigest()


def organisation(identifier: str, roles: Role = Role.SUPPLIER) -> Organisation:
    return Organisation(name=f"Organisation {identifier}", legal_identifier=f"0088:{identifier}", roles=roles)


def invoice(supplier: Organisation, buyer: Organisation, number: str | None = "INV-1", **columns: Any) -> Invoice:
    values: dict[str, Any] = {
        "supplier": supplier,
        "buyer": buyer,
        "holder": supplier,
        "invoice_number": number,
        "invoice_number_hash": number_hash(number) if number else None,
        "currency": "EUR",
        "amount_minor": 125_000,
        "issue_date": ISSUE_DATE,
        "due_date": DUE_DATE,
        "source": InvoiceSource.API,
        **columns,
    }
    return Invoice(**values)


def parties() -> tuple[Organisation, Organisation]:
    supplier = organisation("7300010000001", Role.SUPPLIER)
    buyer = organisation("7300010000002", Role.BUYER)
    db.session.add_all([supplier, buyer])
    return supplier, buyer


def one_row_in_every_table() -> None:
    """A row in each table that has an enum column, linked as the application would link them."""
    supplier, buyer = parties()
    financier = organisation("7300010000003", Role.FINANCIER)
    operator = User(organisation=organisation("7300010000004", Role.OPERATOR), email="ops@example.com",
                    password_hash="$argon2id$...", display_name="Operator")
    receivable = invoice(supplier, buyer)
    request = FinancingRequest(invoice=receivable, seller=supplier, asking_advance_minor=100_000,
                               deadline=datetime(2026, 4, 1, tzinfo=UTC), recourse=False)
    db.session.add_all([
        financier,
        operator,
        Offer(financing_request=request, financier=financier, advance_minor=110_000,
              expiry=datetime(2026, 3, 20, tzinfo=UTC)),
        Repayment(invoice=receivable, payer=buyer, amount_minor=5_000),
        TokenOperation(kind=TokenOperationKind.MINT, organisation=financier, amount_minor=1_000_000,
                       reference="0x" + "ab" * 32, created_by=operator),
        ChainTransaction(intent_key="invoice:1:register", contract=ContractName.RECEIVABLE_REGISTRY,
                         function="register", args={"amount": 125_000}, invoice=receivable),
        ChainEvent(chain_id=31337, tx_hash="0x" + "01" * 32, log_index=0, block_number=7, block_hash="0x" + "02" * 32,
                   contract=ContractName.RECEIVABLE_REGISTRY, event="ReceivableRegistered", args={}),
        IndexerCursor(chain_id=31337, contract=ContractName.FINANCING, block_number=7, block_hash="0x" + "02" * 32),
        ReconciliationRun(chain_id=31337),
        WebhookDelivery(endpoint=WebhookEndpoint(organisation=financier, url="https://example.com/hook",
                                                 event_types=["invoice.confirmed"], secret="s" * 64),
                        event_id="5f0c6c2e-9d1e-4c1a-8c61-0d7b7f6f1a01", event_type="invoice.confirmed",
                        payload={}, occurred_at=datetime(2026, 3, 1, tzinfo=UTC)),
        ExposureLimit(financier=financier, counterparty=buyer, side=Side.BUYER, limit_minor=1_000_000),
        KycReview(organisation=supplier, decision=KycStatus.APPROVED, documents_checked=["business_licence"]),
        ScreeningHit(organisation=supplier, list_name="OFAC SDN", entry_reference="SDN-1", matched_on="name",
                     entry_value="Supplier"),
        AmlAlertReview(alert_key="large_movement:0x01:0", status=AmlAlertStatus.CLEARED, note="payroll"),
        EarlyPaymentOffer(invoice=receivable, buyer=buyer, annual_rate_bps=1200,
                          expiry=datetime(2026, 3, 20, tzinfo=UTC)),
    ])
    db.session.commit()


def enum_columns() -> list[tuple[str, str]]:
    return sorted(
        (table.name, column.name)
        for table in db.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, Enum)
    )


def refused() -> bool:
    """Whether the database refuses to commit the session's changes (then they are rolled back)."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return True
    return False


def test_a_duplicate_invoice_is_refused(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        supplier, buyer = parties()
        db.session.add(invoice(supplier, buyer, "INV-1"))
        db.session.commit()

        db.session.add(invoice(supplier, buyer, "INV-1", amount_minor=999))
        assert refused()

        another_buyer = organisation("7300010000009", Role.BUYER)
        db.session.add(invoice(supplier, another_buyer, "INV-1"))
        assert not refused()


def test_a_due_date_before_the_issue_date_is_refused(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        supplier, buyer = parties()
        db.session.add(invoice(supplier, buyer, due_date=ISSUE_DATE - timedelta(days=1)))
        assert refused()
        db.session.add(invoice(supplier, buyer, due_date=ISSUE_DATE))
        assert not refused()


def non_positive_amounts() -> list[Any]:
    def invoice_of(amount: int) -> Callable[[Organisation, Organisation], Any]:
        return lambda supplier, buyer: invoice(supplier, buyer, amount_minor=amount)

    def financing_request(supplier: Organisation, buyer: Organisation) -> Any:
        return FinancingRequest(invoice=invoice(supplier, buyer), seller=supplier, asking_advance_minor=0,
                                deadline=datetime(2026, 4, 1, tzinfo=UTC), recourse=True)

    def offer(supplier: Organisation, buyer: Organisation) -> Any:
        request = FinancingRequest(invoice=invoice(supplier, buyer), seller=supplier, asking_advance_minor=1,
                                   deadline=datetime(2026, 4, 1, tzinfo=UTC), recourse=True)
        return Offer(financing_request=request, financier=buyer, advance_minor=0,
                     expiry=datetime(2026, 3, 20, tzinfo=UTC))

    def repayment(supplier: Organisation, buyer: Organisation) -> Any:
        return Repayment(invoice=invoice(supplier, buyer), payer=buyer, amount_minor=0)

    def token_operation(supplier: Organisation, buyer: Organisation) -> Any:
        user = User(organisation=supplier, email="a@example.com", password_hash="x", display_name="A")
        return TokenOperation(kind=TokenOperationKind.BURN, organisation=supplier, amount_minor=0,
                              reference="0x" + "cd" * 32, created_by=user)

    return [
        pytest.param(invoice_of(0), id="invoice-zero"),
        pytest.param(invoice_of(-1), id="invoice-negative"),
        pytest.param(financing_request, id="financing-request"),
        pytest.param(offer, id="offer"),
        pytest.param(repayment, id="repayment"),
        pytest.param(token_operation, id="token-operation"),
    ]


@pytest.mark.parametrize("make", non_positive_amounts())
def test_a_non_positive_amount_is_refused(app_on_each_backend: Flask, make: Callable[..., Any]) -> None:
    with app_on_each_backend.app_context():
        db.session.add(make(*parties()))
        assert refused()


def test_more_repaid_than_owed_is_refused(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        supplier, buyer = parties()
        db.session.add(invoice(supplier, buyer, amount_minor=100, repaid_minor=101))
        assert refused()
        db.session.add(invoice(supplier, buyer, amount_minor=100, repaid_minor=100))
        assert not refused()


def test_a_split_child_needs_both_its_parent_and_its_index(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        supplier, buyer = parties()
        parent = invoice(supplier, buyer, status=InvoiceStatus.SPLIT)
        db.session.add(parent)
        db.session.commit()

        db.session.add(invoice(supplier, buyer, None, source=InvoiceSource.SPLIT,
                               split_index=0))
        assert refused()

        for index in (1, 0):
            db.session.add(invoice(supplier, buyer, None, source=InvoiceSource.SPLIT,
                                   parent=parent, split_index=index, amount_minor=62_500))
        db.session.commit()
        assert [child.split_index for child in parent.children] == [0, 1]

        db.session.add(invoice(supplier, buyer, None, source=InvoiceSource.SPLIT,
                               parent=parent, split_index=1))
        assert refused()


def test_an_intent_is_queued_once(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        for _ in range(2):
            db.session.add(ChainTransaction(intent_key="organisation:1:onboard",
                                            contract=ContractName.FINANCING, function="onboard", args=[]))
        assert refused()


def test_a_transaction_cannot_be_sent_before_it_is_signed_and_stored(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        db.session.add(ChainTransaction(intent_key="k", contract=ContractName.FINANCING, function="repay", args=[],
                                        status=ChainTransactionStatus.SENT))
        assert refused()
        db.session.add(ChainTransaction(intent_key="k", contract=ContractName.FINANCING, function="repay", args=[],
                                        status=ChainTransactionStatus.SENT, nonce=0, raw_tx="0x02f8",
                                        tx_hash="0x" + "0f" * 32))
        assert not refused()


def test_an_event_is_stored_once(app_on_each_backend: Flask) -> None:
    def event(chain_id: int, log_index: int) -> ChainEvent:
        return ChainEvent(chain_id=chain_id, tx_hash="0x" + "aa" * 32, log_index=log_index, block_number=1,
                          block_hash="0x" + "bb" * 32, contract=ContractName.FINANCING, event="OfferMade", args={})

    with app_on_each_backend.app_context():
        db.session.add(event(31337, 0))
        db.session.commit()
        db.session.add(event(31337, 0))
        assert refused()
        db.session.add_all([event(31337, 1), event(1337, 0)])
        assert not refused()


def test_every_enum_column_is_checked_by_the_database(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        one_row_in_every_table()
        columns = enum_columns()
        assert ("invoices", "status") in columns and ("chain_transactions", "contract") in columns
        for table, column in columns:
            with db.engine.connect() as connection:
                with pytest.raises(IntegrityError):
                    connection.execute(text(f"UPDATE {table} SET {column} = 'no-such-value'"))


def test_unknown_role_bits_and_uppercase_emails_are_refused_by_the_database(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        one_row_in_every_table()
        with db.engine.connect() as connection:
            with pytest.raises(IntegrityError):
                connection.execute(text("UPDATE organisations SET roles = 32"))
        with db.engine.connect() as connection:
            with pytest.raises(IntegrityError):
                connection.execute(text("UPDATE users SET email = 'Ops@Example.com'"))


def test_foreign_keys_are_enforced(app_on_each_backend: Flask) -> None:
    with app_on_each_backend.app_context():
        one_row_in_every_table()
        with db.engine.connect() as connection:
            with pytest.raises(IntegrityError):
                connection.execute(text("UPDATE invoices SET holder_id = 999999"))


def test_values_come_back_as_they_were_stored(app_on_each_backend: Flask) -> None:
    deadline = datetime(2026, 4, 1, 17, 30, tzinfo=timezone(timedelta(hours=2)))
    with app_on_each_backend.app_context():
        supplier, buyer = parties()
        supplier.roles = Role.SUPPLIER | Role.FINANCIER
        db.session.add(FinancingRequest(invoice=invoice(supplier, buyer), seller=supplier, asking_advance_minor=1,
                                        deadline=deadline, recourse=True))
        db.session.add(ChainTransaction(intent_key="k", contract=ContractName.RECEIVABLE_REGISTRY, function="register",
                                        args={"registration": ["0xAb", 125_000, "EUR"], "nested": {"ok": True}}))
        db.session.commit()
        db.session.expire_all()

        request = db.session.execute(select(FinancingRequest)).scalar_one()
        assert request.deadline == deadline and request.deadline.tzinfo == UTC
        assert request.created_at.tzinfo == UTC
        assert request.invoice.status is InvoiceStatus.PENDING and request.invoice.repaid_minor == 0
        assert request.seller.roles == Role.SUPPLIER | Role.FINANCIER and Role.BUYER not in request.seller.roles
        transaction = db.session.execute(select(ChainTransaction)).scalar_one()
        assert transaction.args == {"registration": ["0xAb", 125_000, "EUR"], "nested": {"ok": True}}
        assert transaction.status is ChainTransactionStatus.QUEUED and transaction.attempts == 0


def test_a_naive_timestamp_is_refused(app: Flask) -> None:
    with app.app_context():
        supplier, buyer = parties()
        db.session.add(FinancingRequest(invoice=invoice(supplier, buyer), seller=supplier, asking_advance_minor=1,
                                        deadline=datetime(2026, 4, 1, 12, 0), recourse=True))
        with pytest.raises(StatementError, match="naive datetime"):
            db.session.commit()


def test_emails_are_stored_lowercased(app: Flask) -> None:
    with app.app_context():
        supplier, _ = parties()
        db.session.add(User(organisation=supplier, email="  Ana.Silva@Example.COM ", password_hash="x",
                            display_name="Ana"))
        db.session.commit()
        assert db.session.execute(text("SELECT email FROM users")).scalar_one() == "ana.silva@example.com"


def test_the_ledger_role_bits_are_the_chain_clients() -> None:
    assert (Role.SUPPLIER, Role.BUYER, Role.FINANCIER, Role.AUDITOR) == (
        client.SUPPLIER, client.BUYER, client.FINANCIER, client.AUDITOR)
    assert Role.OPERATOR not in Role(client.SUPPLIER | client.BUYER | client.FINANCIER | client.AUDITOR)


def test_a_signing_keys_repr_never_shows_the_keystore() -> None:
    key = SigningKey(id=3, organisation_id=1, address="0x" + "A" * 40,
                     keystore_json='{"crypto": {"ciphertext": "c0ffee"}}')
    assert "c0ffee" not in repr(key) and "crypto" not in repr(key)
    assert key.address in repr(key)
