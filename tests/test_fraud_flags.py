"""Fraud and double-financing signals (backend/services/fraud.py): each pattern planted in ledger
data raises its flag with its evidence, the same data just inside each threshold raises none,
and who sees which flags."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.event import listen, remove
from sqlalchemy.orm import Session

from backend.extensions import db
from backend.models import (
    ChainEvent,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Invoice,
    InvoiceStatus,
    Organisation,
    Role,
)
from backend.services import fraud
from backend.services.errors import NotFound, PermissionDenied
from backend.services.fraud import FlagKind
from tests import domain_factories as factories
from tests.api_support import caller, issue_api_key
from tests.domain_factories import assert_refused

ZERO = "0x" + "0" * 40


@pytest.fixture
def parties(db_session: Any) -> dict[str, Organisation]:
    return {"supplier": factories.organisation(Role.SUPPLIER | Role.BUYER),
            "buyer": factories.organisation(Role.BUYER | Role.SUPPLIER),
            "other_supplier": factories.organisation(Role.SUPPLIER),
            "tier2": factories.organisation(Role.SUPPLIER),
            "financier": factories.organisation(Role.FINANCIER)}


@pytest.fixture
def auditor(db_session: Any) -> Any:
    return factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))


def kinds(actor: Any) -> list[FlagKind]:
    return [flag.kind for flag in fraud.fraud_flags(actor)]


def ledger_write(invoice: Invoice, function: str, signer: Organisation, *, created_at: datetime,
                 mined_at: datetime | None = None, carried_by: ChainTransaction | None = None) -> ChainTransaction:
    row = ChainTransaction(intent_key=f"invoice:{invoice.id}:{function}:{created_at.timestamp()}", signer=signer,
                           invoice=invoice, contract=ContractName.RECEIVABLE_REGISTRY, function=function, args=[],
                           status=ChainTransactionStatus.BATCHED if carried_by else ChainTransactionStatus.MINED,
                           created_at=created_at, mined_at=mined_at, carried_by=carried_by)
    if carried_by is None:
        row.nonce, row.raw_tx, row.tx_hash = next(_nonces), "0x00", "0x%064x" % (10**6 + next(_nonces))
    db.session.add(row)
    db.session.flush()
    return row


_nonces = iter(range(10**6))


def test_an_ordinary_book_raises_no_flag(parties: dict[str, Organisation], auditor: Any) -> None:
    supplier, buyer, tier2 = parties["supplier"], parties["buyer"], parties["tier2"]
    registered = datetime(2026, 11, 2, 9, tzinfo=UTC)
    for n, amount in enumerate((1000, 1200, 900, 1100, 1000, 9_000)):  # 9 times the median: not an outlier
        invoice = factories.with_document(factories.invoice(supplier, buyer, amount_minor=amount), f"{n:064x}")
        ledger_write(invoice, "register", supplier, created_at=registered, mined_at=registered)
        ledger_write(invoice, "confirm", buyer, created_at=registered + timedelta(seconds=45))
    # The buyer invoiced the supplier too, but 31 days apart.
    factories.invoice(buyer, supplier, issue_date=date.today() - timedelta(days=31))
    # A split whose part went to a tier-2 supplier, and one the supplier kept from the start.
    parent = factories.invoice(supplier, buyer, status=InvoiceStatus.SPLIT, amount_minor=1000)
    passed, kept = (factories.split_part(parent, 0, amount_minor=400, holder=tier2),
                    factories.split_part(parent, 1, amount_minor=600))
    factories.chain_event("Transfer", {"from": ZERO, "to": tier2.chain_address,
                                       "tokenId": str(int(passed.receivable_id, 16))}, block_number=5)
    factories.chain_event("Transfer", {"from": ZERO, "to": supplier.chain_address,
                                       "tokenId": str(int(kept.receivable_id, 16))}, block_number=5)
    for _ in range(fraud.COUNT_SPIKE_MIN - 1):  # one short of a spike, registered today
        factories.invoice(parties["other_supplier"], buyer)
    factories.invoice(parties["other_supplier"], buyer, status=InvoiceStatus.PENDING)

    assert fraud.fraud_flags(auditor) == []


def test_one_document_under_two_invoices(parties: dict[str, Organisation], auditor: Any) -> None:
    first = factories.with_document(factories.invoice(parties["supplier"], parties["buyer"]), "ab" * 32)
    second = factories.with_document(factories.invoice(parties["other_supplier"], parties["buyer"]), "ab" * 32)
    cancelled = factories.with_document(factories.invoice(parties["supplier"], parties["buyer"],
                                                status=InvoiceStatus.CANCELLED), "ab" * 32)

    [flag] = fraud.fraud_flags(auditor)

    assert (flag.kind, flag.invoice_ids) == (FlagKind.DUPLICATE_DOCUMENT, (first.id, second.id))
    assert cancelled.id not in flag.invoice_ids
    assert flag.evidence == {"document_sha256": "ab" * 32, "invoices": 2, "related_invoice_ids": [first.id, second.id]}
    assert set(flag.organisation_ids) == {parties["supplier"].id, parties["other_supplier"].id, parties["buyer"].id}


def test_an_amount_far_outside_the_suppliers_history(parties: dict[str, Organisation], auditor: Any) -> None:
    for amount in (1000, 1200, 900, 1100, 1000):
        factories.invoice(parties["supplier"], parties["buyer"], amount_minor=amount)
    outlier = factories.invoice(parties["supplier"], parties["buyer"], amount_minor=10_001)

    [flag] = fraud.fraud_flags(auditor)

    assert (flag.kind, flag.invoice_ids, flag.organisation_ids) == \
        (FlagKind.AMOUNT_OUTLIER, (outlier.id,), (parties["supplier"].id,))
    assert flag.evidence == {"amount_minor": 10_001, "median_minor": 1000, "earlier_invoices": 5, "currency": "CNY"}


def test_a_day_with_far_more_invoices_than_usual(parties: dict[str, Organisation], auditor: Any) -> None:
    for _ in range(fraud.COUNT_SPIKE_MIN):
        factories.invoice(parties["other_supplier"], parties["buyer"])

    [flag] = fraud.fraud_flags(auditor)

    assert (flag.kind, flag.organisation_ids) == (FlagKind.COUNT_SPIKE, (parties["other_supplier"].id,))
    assert flag.evidence == {"date": datetime.now(UTC).date().isoformat(), "invoices": 20, "daily_average": 0.0}


def test_a_spike_is_counted_by_utc_day_whatever_the_database_sessions_time_zone(
        parties: dict[str, Organisation]) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL TIME ZONE 'Asia/Shanghai'"))
    evening = datetime(2026, 11, 2, 20, tzinfo=UTC)  # 04:00 on 3 November in Shanghai
    invoices = [factories.invoice(parties["other_supplier"], parties["buyer"]) for _ in range(fraud.COUNT_SPIKE_MIN)]
    for invoice in invoices:
        invoice.created_at = evening
    db.session.flush()

    [flag] = fraud.count_spikes(invoices[0])

    assert flag.evidence["date"] == "2026-11-02"


def test_two_organisations_invoicing_each_other(parties: dict[str, Organisation], auditor: Any) -> None:
    there = factories.invoice(parties["supplier"], parties["buyer"], issue_date=date.today() - timedelta(days=30))
    back = factories.invoice(parties["buyer"], parties["supplier"])

    [flag] = fraud.fraud_flags(auditor)

    assert (flag.kind, set(flag.invoice_ids)) == (FlagKind.CIRCULAR_FLOW, {there.id, back.id})
    assert set(flag.organisation_ids) == {parties["supplier"].id, parties["buyer"].id}
    assert flag.evidence["days_apart"] == 30


def test_a_split_part_transferred_back_to_its_origin(parties: dict[str, Organisation], auditor: Any) -> None:
    supplier, tier2 = parties["supplier"], parties["tier2"]
    parent = factories.invoice(supplier, parties["buyer"], status=InvoiceStatus.SPLIT)
    part = factories.split_part(parent, 0, amount_minor=500_000, holder=supplier)
    token = str(int(part.receivable_id, 16))
    factories.chain_event("Transfer", {"from": ZERO, "to": tier2.chain_address, "tokenId": token}, block_number=5)
    back = factories.chain_event("Transfer", {"from": tier2.chain_address, "to": supplier.chain_address,
                                              "tokenId": token}, block_number=9)

    [flag] = fraud.fraud_flags(auditor)

    assert (flag.kind, flag.invoice_ids, flag.organisation_ids) == \
        (FlagKind.SPLIT_RETURNED_TO_ORIGIN, (part.id,), (supplier.id,))
    assert flag.evidence == {"tx_hash": back.tx_hash, "block_number": 9}


def test_the_split_check_reads_only_transfers_back_to_an_origin(parties: dict[str, Organisation]) -> None:
    """Not the registry's every Transfer (a mint per invoice, each sale) for each invoice's flags."""
    supplier, financier = parties["supplier"], parties["financier"]
    parent = factories.invoice(supplier, parties["buyer"], status=InvoiceStatus.SPLIT)
    part = factories.split_part(parent, 0, amount_minor=500_000, holder=supplier)
    for block in range(1, 11):
        factories.chain_event("Transfer", {"from": ZERO, "to": supplier.chain_address, "tokenId": str(block)},
                              block_number=block)
        factories.chain_event("Transfer", {"from": supplier.chain_address, "to": financier.chain_address,
                                           "tokenId": str(block)}, block_number=block)
    db.session.expunge_all()
    loaded: list[Any] = []

    def record(_session: Any, row: Any) -> None:
        loaded.append(row)

    listen(Session, "loaded_as_persistent", record)
    try:
        assert fraud.splits_returned_to_origin(db.session.get(Invoice, part.id)) == []
    finally:
        remove(Session, "loaded_as_persistent", record)
    assert [row for row in loaded if isinstance(row, ChainEvent)] == []


def test_a_confirmation_faster_than_a_person_could_review(parties: dict[str, Organisation], auditor: Any) -> None:
    supplier, buyer = parties["supplier"], parties["buyer"]
    mined = datetime(2026, 11, 2, 9, tzinfo=UTC)
    single = factories.invoice(supplier, buyer)
    ledger_write(single, "register", supplier, created_at=mined - timedelta(seconds=3), mined_at=mined)
    ledger_write(single, "confirm", buyer, created_at=mined + timedelta(seconds=4))
    # One registered in a registerBatch: mined when its carrier was.
    batched = factories.invoice(supplier, buyer)
    carrier = ledger_write(batched, "registerBatch", supplier, created_at=mined, mined_at=mined)
    ledger_write(batched, "register", supplier, created_at=mined, carried_by=carrier)
    ledger_write(batched, "confirm", buyer, created_at=mined + timedelta(seconds=29))

    flags = fraud.fraud_flags(auditor, kind=FlagKind.FAST_CONFIRMATION)

    assert [(flag.invoice_ids, flag.evidence) for flag in flags] == [
        ((single.id,), {"seconds": 4.0}), ((batched.id,), {"seconds": 29.0})]
    assert fraud.fraud_flags(auditor, organisation_id=parties["tier2"].id) == []


def test_a_financier_sees_the_flags_on_what_it_may_fund_without_the_other_invoices(
        parties: dict[str, Organisation]) -> None:
    for_sale = factories.with_document(factories.invoice(parties["supplier"], parties["buyer"]), "cd" * 32)
    factories.financing_request(for_sale)
    elsewhere = factories.with_document(factories.invoice(parties["other_supplier"], parties["buyer"]), "cd" * 32)
    financier = factories.actor(parties["financier"])

    [flag] = fraud.flags_on_invoice(financier, for_sale.id)

    assert (flag.kind, flag.invoice_ids) == (FlagKind.DUPLICATE_DOCUMENT, (for_sale.id,))
    assert flag.evidence == {"document_sha256": "cd" * 32, "invoices": 2}
    assert parties["other_supplier"].id not in flag.organisation_ids
    db.session.commit()
    assert_refused(NotFound, fraud.flags_on_invoice, financier, elsewhere.id)
    assert_refused(PermissionDenied, fraud.fraud_flags, financier)


def test_the_api_lists_flags_for_readers_and_an_invoices_flags_for_a_financier(app: Any) -> None:
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        for_sale = factories.with_document(factories.invoice(supplier, buyer), "ef" * 32)
        factories.financing_request(for_sale)
        factories.with_document(factories.invoice(supplier, buyer), "ef" * 32)
        db.session.commit()
        for_sale_id = for_sale.id
        supplier_key = issue_api_key(supplier)
    auditor, financier = caller(app, Role.AUDITOR, onboarded=False), caller(app, Role.FINANCIER)
    client = app.test_client()

    listed = client.get("/api/v1/fraud-flags?kind=duplicate_document", headers=auditor.headers)
    assert listed.status_code == 200
    assert [flag["kind"] for flag in listed.json] == ["duplicate_document"]
    assert len(listed.json[0]["evidence"]["related_invoice_ids"]) == 2
    assert client.get("/api/v1/fraud-flags?kind=circular_flow", headers=auditor.headers).json == []
    assert client.get("/api/v1/fraud-flags", headers=financier.headers).status_code == 403

    seen = client.get(f"/api/v1/invoices/{for_sale_id}/fraud-flags", headers=financier.headers)
    assert seen.status_code == 200
    assert seen.json[0]["invoice_ids"] == [for_sale_id] and "related_invoice_ids" not in seen.json[0]["evidence"]
    assert client.get(f"/api/v1/invoices/{for_sale_id}/fraud-flags", headers=supplier_key.headers).status_code == 200
