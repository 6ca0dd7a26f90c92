"""Invoices after registration (backend/services/invoices.py): the buyer confirms or disputes,
the supplier cancels, the holder splits or transfers, and the reads. Each change queues its
ledger call and an audit entry and leaves the status to the indexer; a refusal writes nothing."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from backend.chain.client import child_receivable_id
from backend.extensions import db
from backend.models import (
    AuditLog,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Delinquency,
    FinancingRequestStatus,
    IndexerCursor,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    KycStatus,
    Organisation,
    Role,
)
from backend.services import invoice_intake, invoices
from backend.services.actors import Actor
from backend.services.errors import InvalidInput, InvalidState, NotFound, OrganisationInactive, PermissionDenied
from backend.services.invoices import DisputeReason, Perspective, SplitPart
from tests import domain_factories as factories
from tests.domain_factories import committed_organisation, only_audit_entry, only_outbox_row, count


@pytest.fixture
def supplier(db_session) -> Organisation:
    return committed_organisation(Role.SUPPLIER)


@pytest.fixture
def buyer(db_session) -> Organisation:
    return committed_organisation(Role.BUYER)


@pytest.fixture
def financier(db_session) -> Organisation:
    return committed_organisation(Role.FINANCIER)


@pytest.fixture
def sub_supplier(db_session) -> Organisation:
    """One of the supplier's own suppliers."""
    return committed_organisation(Role.SUPPLIER)


def actor_of(org: Organisation, **options) -> Actor:
    actor = factories.actor(org, **options)
    db.session.commit()
    return actor


def invoice_of(supplier: Organisation, buyer: Organisation, **options) -> Invoice:
    invoice = factories.invoice(supplier, buyer, **options)
    db.session.commit()
    return invoice


def writes() -> tuple[int, int, int]:
    return count(Invoice), count(ChainTransaction), count(AuditLog)


def mined(row: ChainTransaction, *, indexed: bool = True) -> None:
    """What the outbox worker leaves behind once the ledger took the transaction in block 7,
    and, `indexed`, the indexer's cursor once it has applied that block."""
    row.status = ChainTransactionStatus.MINED
    row.nonce, row.raw_tx, row.tx_hash, row.block_number = row.id, "0x00", "0x%064x" % row.id, 7
    if indexed and db.session.scalar(select(IndexerCursor.id)) is None:
        db.session.add(IndexerCursor(chain_id=31337, contract=ContractName.RECEIVABLE_REGISTRY, block_number=7,
                                     block_hash="0x" + "07" * 32))
    db.session.commit()


# ---------------------------------------------------------------- confirm


@pytest.mark.parametrize("status", [InvoiceStatus.REGISTERED, InvoiceStatus.DISPUTED])
def test_the_buyer_confirms_a_registered_or_disputed_invoice(supplier, buyer, status):
    invoice = invoice_of(supplier, buyer, status=status)
    clerk = actor_of(buyer)

    confirmed = invoices.confirm_invoice(clerk, invoice.id)

    assert confirmed.status == status  # until the indexer sees ReceivableConfirmed
    row = only_outbox_row()
    assert (row.intent_key, row.contract, row.function, row.args, row.signer_id, row.invoice_id) == (
        f"invoice:{invoice.id}:confirm", ContractName.RECEIVABLE_REGISTRY, "confirm", [invoice.receivable_id],
        buyer.id, invoice.id)
    entry = only_audit_entry()
    assert (entry.action, entry.subject_type, entry.subject_id, entry.actor_user_id) == (
        "invoice.confirm", "invoice", str(invoice.id), clerk.user.id)
    assert entry.before["status"] == str(status)
    assert entry.after["queued"] == {"function": "confirm", "args": [invoice.receivable_id]}
    assert invoices.pending_actions(confirmed) == [row]


@pytest.mark.parametrize(
    "status", [InvoiceStatus.PENDING, InvoiceStatus.CONFIRMED, InvoiceStatus.CANCELLED, InvoiceStatus.REPAID]
)
def test_only_a_registered_or_disputed_invoice_can_be_confirmed(supplier, buyer, status):
    invoice = invoice_of(supplier, buyer, status=status)
    clerk = actor_of(buyer)
    before = writes()
    with pytest.raises(InvalidState):
        invoices.confirm_invoice(clerk, invoice.id)
    assert writes() == before


def test_a_confirmation_on_its_way_blocks_a_second_change(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    clerk = actor_of(buyer)
    invoices.confirm_invoice(clerk, invoice.id)
    before = writes()
    with pytest.raises(InvalidState, match="has not yet answered this invoice's confirm"):
        invoices.dispute_invoice(clerk, invoice.id, DisputeReason.OTHER)
    with pytest.raises(InvalidState):
        invoices.confirm_invoice(clerk, invoice.id)
    assert writes() == before


def test_only_the_invoices_buyer_may_confirm(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    with pytest.raises(NotFound):  # another buyer does not see it at all
        invoices.confirm_invoice(actor_of(committed_organisation(Role.BUYER)), invoice.id)
    with pytest.raises(PermissionDenied):  # the supplier sees it but is no buyer
        invoices.confirm_invoice(actor_of(supplier), invoice.id)
    with pytest.raises(PermissionDenied):
        invoices.confirm_invoice(actor_of(buyer, scopes=("read",)), invoice.id)
    with pytest.raises(NotFound):
        invoices.confirm_invoice(actor_of(buyer), invoice.id + 1000)
    assert count(ChainTransaction) == 0


def test_a_suspended_buyer_can_do_nothing(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    clerk = actor_of(buyer)
    buyer.suspended = True
    db.session.commit()
    with pytest.raises(OrganisationInactive):
        invoices.confirm_invoice(clerk, invoice.id)


# ---------------------------------------------------------------- dispute


def test_the_buyer_disputes_a_registered_invoice_with_a_reason_code_and_a_note(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)

    disputed = invoices.dispute_invoice(actor_of(buyer), invoice.id, DisputeReason.AMOUNT_INCORRECT,
                                        "  billed 12 valves, 10 delivered ")

    assert disputed.dispute_reason == "amount-incorrect: billed 12 valves, 10 delivered"
    assert disputed.status == InvoiceStatus.REGISTERED
    row = only_outbox_row()
    assert (row.intent_key, row.function, row.args) == (
        f"invoice:{invoice.id}:dispute", "dispute", [invoice.receivable_id, 3])
    entry = only_audit_entry()
    assert (entry.action, entry.before["dispute_reason"], entry.after["dispute_reason"]) == (
        "invoice.dispute", None, disputed.dispute_reason)


def test_every_dispute_reason_has_its_own_nonzero_code():
    codes = [invoices.DISPUTE_REASON_CODES[reason] for reason in DisputeReason]
    assert 0 not in codes and len(set(codes)) == len(codes) and all(0 < code < 256 for code in codes)


def test_a_dispute_without_a_note_keeps_the_reason(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    assert invoices.dispute_invoice(actor_of(buyer), invoice.id, DisputeReason.NOT_ORDERED).dispute_reason == (
        "not-ordered")


@pytest.mark.parametrize("status", [InvoiceStatus.PENDING, InvoiceStatus.CONFIRMED, InvoiceStatus.DISPUTED])
def test_only_a_registered_invoice_can_be_disputed(supplier, buyer, status):
    invoice = invoice_of(supplier, buyer, status=status)
    with pytest.raises(InvalidState):
        invoices.dispute_invoice(actor_of(buyer), invoice.id, DisputeReason.OTHER)
    assert count(ChainTransaction) == 0


def test_an_overlong_dispute_note_is_refused(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    clerk = actor_of(buyer)
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        invoices.dispute_invoice(clerk, invoice.id, DisputeReason.OTHER, "x" * 2001)
    assert list(refused.value.errors) == ["note"]
    assert writes() == before
    assert db.session.get(Invoice, invoice.id).dispute_reason is None


# ---------------------------------------------------------------- cancel


@pytest.mark.parametrize("status", [InvoiceStatus.REGISTERED, InvoiceStatus.DISPUTED])
def test_the_supplier_cancels_an_unconfirmed_invoice(supplier, buyer, status):
    invoice = invoice_of(supplier, buyer, status=status)

    invoices.cancel_invoice(actor_of(supplier), invoice.id)

    row = only_outbox_row()
    assert (row.intent_key, row.function, row.args, row.signer_id) == (
        f"invoice:{invoice.id}:cancel", "cancel", [invoice.receivable_id], supplier.id)
    assert only_audit_entry().action == "invoice.cancel"


@pytest.mark.parametrize("status", [InvoiceStatus.PENDING, InvoiceStatus.CONFIRMED, InvoiceStatus.CANCELLED])
def test_a_confirmed_or_unregistered_invoice_cannot_be_cancelled(supplier, buyer, status):
    invoice = invoice_of(supplier, buyer, status=status)
    with pytest.raises(InvalidState):
        invoices.cancel_invoice(actor_of(supplier), invoice.id)
    assert count(ChainTransaction) == 0


def test_only_the_invoices_supplier_may_cancel(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    with pytest.raises(PermissionDenied):
        invoices.cancel_invoice(actor_of(buyer), invoice.id)
    with pytest.raises(NotFound):
        invoices.cancel_invoice(actor_of(committed_organisation(Role.SUPPLIER)), invoice.id)
    assert count(ChainTransaction) == 0


# ---------------------------------------------------------------- split


def split(actor: Actor, invoice: Invoice, *parts: tuple[str, object], currency: str = "CNY") -> Invoice:
    return invoices.split_invoice(actor, invoice.id, currency=currency,
                                  parts=[SplitPart(amount=amount, holder=holder) for amount, holder in parts])


def test_the_holder_splits_a_confirmed_receivable_among_its_suppliers(supplier, buyer, sub_supplier):
    invoice = invoice_of(supplier, buyer, amount_minor=1_000_000)

    parent = split(actor_of(supplier), invoice, ("2500.00", sub_supplier.chain_address), ("7500", supplier.id))

    assert parent.status == InvoiceStatus.CONFIRMED  # until the indexer sees ReceivableSplit
    first, second = parent.children
    parent_id = int(invoice.receivable_id, 16)
    for index, (child, amount, holder) in enumerate([(first, 250_000, sub_supplier), (second, 750_000, supplier)]):
        assert (child.status, child.source, child.parent_id, child.split_index, child.amount_minor) == (
            InvoiceStatus.PENDING, InvoiceSource.SPLIT, invoice.id, index, amount)
        assert (child.supplier_id, child.buyer_id, child.holder_id, child.due_date, child.currency) == (
            supplier.id, buyer.id, holder.id, invoice.due_date, "CNY")
        assert child.receivable_id == "0x%064x" % child_receivable_id(parent_id, index)
        assert child.invoice_number is None and child.invoice_number_hash is None
    row = only_outbox_row()
    assert (row.intent_key, row.function, row.signer_id, row.invoice_id) == (
        f"invoice:{invoice.id}:split", "split", supplier.id, invoice.id)
    assert row.args == [invoice.receivable_id, [250_000, 750_000], [sub_supplier.chain_address, supplier.chain_address]]
    entry = only_audit_entry()
    assert (entry.action, entry.after["children"]) == ("invoice.split", [first.id, second.id])


def test_a_financier_holding_a_receivable_keeps_parts_of_its_split(supplier, buyer, financier, sub_supplier):
    invoice = invoice_of(supplier, buyer, holder=financier, amount_minor=300)
    parent = split(actor_of(financier), invoice, ("1", financier.id), ("1", financier.legal_identifier),
                   ("1", sub_supplier.id))
    assert [child.holder_id for child in parent.children] == [financier.id, financier.id, sub_supplier.id]


@pytest.mark.parametrize(
    ("parts", "currency", "field"),
    [
        ([("10000", "holder")], "CNY", "parts"),  # one part is no split
        ([("5000", "holder"), ("4999.99", "holder")], "CNY", "parts"),  # short of the face amount
        ([("5000", "holder"), ("5000.01", "holder")], "CNY", "parts"),
        ([("5000", "holder"), ("5000.001", "holder")], "CNY", "parts.1.amount"),
        ([("10000", "holder"), ("0", "holder")], "CNY", "parts.1.amount"),
        ([("5000", "holder"), ("5000", "holder")], "EUR", "currency"),
        ([("5000", "buyer"), ("5000", "holder")], "CNY", "parts.0.holder"),  # a buyer holds no receivables
        ([("5000", "financier"), ("5000", "holder")], "CNY", "parts.0.holder"),  # parts go to suppliers
        ([("5000", "suspended"), ("5000", "holder")], "CNY", "parts.0.holder"),
        ([("5000", "holder"), ("5000", 10**7)], "CNY", "parts.1.holder"),
    ],
)
def test_an_invalid_split_is_refused_and_nothing_is_written(supplier, buyer, financier, parts, currency, field):
    invoice = invoice_of(supplier, buyer, amount_minor=1_000_000)
    names = {"holder": supplier.id, "buyer": buyer.id, "financier": financier.id,
             "suspended": committed_organisation(Role.SUPPLIER, suspended=True).id}
    resolved = [(amount, names.get(holder, holder)) for amount, holder in parts]
    clerk = actor_of(supplier)
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        split(clerk, invoice, *resolved, currency=currency)
    assert list(refused.value.errors) == [field]
    assert writes() == before


def test_a_split_has_at_most_100_parts(supplier, buyer):
    invoice = invoice_of(supplier, buyer, amount_minor=10_100)
    with pytest.raises(InvalidInput) as refused:
        split(actor_of(supplier), invoice, *[("1", supplier.id)] * 101)
    assert refused.value.errors["parts"] == ["a split has 2 to 100 parts, not 101"]
    hundred = invoice_of(supplier, buyer, amount_minor=10_000)
    assert len(split(actor_of(supplier), hundred, *[("1", supplier.id)] * 100).children) == 100


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": InvoiceStatus.REGISTERED}, "only a confirmed invoice"),
        ({"status": InvoiceStatus.SPLIT}, "only a confirmed invoice"),
        ({"repaid_minor": 1}, "repaid already"),
        ({"delinquency": Delinquency.OVERDUE}, "overdue"),
    ],
)
def test_only_an_unpaid_confirmed_punctual_receivable_is_split(supplier, buyer, changes, reason):
    invoice = invoice_of(supplier, buyer)
    for name, value in changes.items():
        setattr(invoice, name, value)
    db.session.commit()
    with pytest.raises(InvalidState, match=reason):
        split(actor_of(supplier), invoice, ("5000", supplier.id), ("5000", supplier.id))
    assert count(ChainTransaction) == 0


@pytest.mark.parametrize("request_status", [FinancingRequestStatus.PENDING, FinancingRequestStatus.OPEN])
def test_a_receivable_offered_for_financing_does_not_move(supplier, buyer, financier, request_status):
    invoice = invoice_of(supplier, buyer)
    factories.financing_request(invoice, status=request_status)
    db.session.commit()
    clerk = actor_of(supplier)
    with pytest.raises(InvalidState, match="offered for financing"):
        split(clerk, invoice, ("5000", supplier.id), ("5000", supplier.id))
    with pytest.raises(InvalidState, match="offered for financing"):
        invoices.transfer_invoice(clerk, invoice.id, to=financier.id)
    assert count(ChainTransaction) == 0


def test_only_the_holder_splits(supplier, buyer, financier):
    invoice = invoice_of(supplier, buyer, holder=financier)
    with pytest.raises(PermissionDenied):  # the supplier still sees the invoice it issued
        split(actor_of(supplier), invoice, ("5000", supplier.id), ("5000", supplier.id))
    with pytest.raises(NotFound):
        split(actor_of(committed_organisation(Role.SUPPLIER)), invoice, ("5000", supplier.id), ("5000", supplier.id))


# ---------------------------------------------------------------- transfer


def test_the_holder_transfers_a_confirmed_receivable(supplier, buyer, financier):
    invoice = invoice_of(supplier, buyer)

    invoices.transfer_invoice(actor_of(supplier), invoice.id, to=financier.legal_identifier)

    row = only_outbox_row()
    assert (row.intent_key, row.contract, row.function, row.signer_id) == (
        f"invoice:{invoice.id}:transfer:1", ContractName.RECEIVABLE_REGISTRY, "transferFrom", supplier.id)
    assert row.args == [supplier.chain_address, financier.chain_address, invoice.receivable_id]
    entry = only_audit_entry()
    assert (entry.action, entry.after["to"]) == ("invoice.transfer", financier.id)
    assert db.session.get(Invoice, invoice.id).holder_id == supplier.id  # until the indexer sees Transfer


def test_each_transfer_of_a_receivable_is_its_own_intent(supplier, buyer, financier, sub_supplier):
    invoice = invoice_of(supplier, buyer)
    invoices.transfer_invoice(actor_of(supplier), invoice.id, to=financier.id)
    first = only_outbox_row()
    mined(first)
    invoice.holder_id = financier.id  # the indexer applied the Transfer event
    db.session.commit()

    invoices.transfer_invoice(actor_of(financier), invoice.id, to=sub_supplier.id)

    second = db.session.scalars(select(ChainTransaction).where(ChainTransaction.id != first.id)).one()
    assert (second.intent_key, second.args[0], second.signer_id) == (
        f"invoice:{invoice.id}:transfer:2", financier.chain_address, financier.id)
    assert invoices.pending_actions(invoice) == [second]


@pytest.mark.parametrize(
    ("recipient", "problem"),
    [
        ("self", "yours already"),
        ("buyer", "is not a supplier or financier"),
        ("suspended", "not an active participant"),
        ("not onboarded", "not onboarded"),
        ("unknown", "no organisation"),
    ],
)
def test_a_transfer_goes_to_another_active_holder(supplier, buyer, recipient, problem):
    invoice = invoice_of(supplier, buyer)
    to = {
        "self": lambda: supplier.id,
        "buyer": lambda: buyer.chain_address,
        "suspended": lambda: committed_organisation(Role.FINANCIER, suspended=True).id,
        "not onboarded": lambda: committed_organisation(Role.FINANCIER, onboarded=False).id,
        "unknown": lambda: "0088:0000000000000",
    }[recipient]()
    clerk = actor_of(supplier)
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        invoices.transfer_invoice(clerk, invoice.id, to=to)
    assert problem in refused.value.errors["to"][0]
    assert writes() == before


@pytest.mark.parametrize("status", [InvoiceStatus.PENDING, InvoiceStatus.REGISTERED, InvoiceStatus.REPAID])
def test_only_a_confirmed_receivable_is_transferred(supplier, buyer, financier, status):
    invoice = invoice_of(supplier, buyer, status=status)
    with pytest.raises(InvalidState):
        invoices.transfer_invoice(actor_of(supplier), invoice.id, to=financier.id)
    assert count(ChainTransaction) == 0


def test_only_the_holder_transfers(supplier, buyer, financier):
    invoice = invoice_of(supplier, buyer, holder=financier)
    with pytest.raises(PermissionDenied):
        invoices.transfer_invoice(actor_of(supplier), invoice.id, to=committed_organisation(Role.FINANCIER).id)
    with pytest.raises(PermissionDenied):
        invoices.transfer_invoice(actor_of(buyer), invoice.id, to=supplier.id)


# ---------------------------------------------------------------- reads


def listed(actor: Actor, **filters) -> list[int]:
    return list(db.session.scalars(invoices.invoice_query(actor, **filters).with_only_columns(Invoice.id)
                                   .order_by(Invoice.id)))


def test_each_party_lists_the_invoices_it_may_see(supplier, buyer, financier):
    mine = invoice_of(supplier, buyer)
    held = invoice_of(committed_organisation(Role.SUPPLIER), buyer, holder=financier)
    foreign = invoice_of(committed_organisation(Role.SUPPLIER), committed_organisation(Role.BUYER))

    assert listed(actor_of(supplier)) == [mine.id]
    assert listed(actor_of(buyer)) == [mine.id, held.id]
    assert listed(actor_of(financier)) == [held.id]
    assert listed(actor_of(committed_organisation(Role.AUDITOR))) == [mine.id, held.id, foreign.id]


def test_the_list_filters(supplier, buyer):
    other_buyer = committed_organisation(Role.BUYER)
    small = invoice_of(supplier, buyer, amount_minor=100, due_in_days=10)
    large = invoice_of(supplier, buyer, amount_minor=10_000, due_in_days=90, status=InvoiceStatus.REGISTERED)
    euro = invoice_of(supplier, other_buyer, amount_minor=5_000, due_in_days=30, currency="EUR")
    auditor = actor_of(committed_organisation(Role.AUDITOR))
    today = date.today()

    assert listed(auditor, status=InvoiceStatus.REGISTERED) == [large.id]
    assert listed(auditor, buyer_id=other_buyer.id) == [euro.id]
    assert listed(auditor, supplier_id=supplier.id) == [small.id, large.id, euro.id]
    assert listed(auditor, due_from=today + timedelta(days=30)) == [large.id, euro.id]
    assert listed(auditor, due_to=today + timedelta(days=30)) == [small.id, euro.id]
    assert listed(auditor, amount_min_minor=100, amount_max_minor=5_000) == [small.id, euro.id]
    assert listed(auditor, currency="eur") == [euro.id]


def test_the_payables_inbox_and_the_receivables_are_perspectives_of_the_same_list(supplier, buyer):
    both = committed_organisation(Role.SUPPLIER | Role.BUYER)
    payable = invoice_of(supplier, both)
    receivable = invoice_of(both, buyer)
    clerk = actor_of(both)

    assert listed(clerk) == [payable.id, receivable.id]
    assert listed(clerk, perspective=Perspective.BUYER) == [payable.id]
    assert listed(clerk, perspective=Perspective.SUPPLIER) == [receivable.id]
    assert listed(clerk, perspective=Perspective.HOLDER) == [receivable.id]


def test_an_invoice_is_read_by_those_who_may_see_it(supplier, buyer):
    invoice = invoice_of(supplier, buyer)
    assert invoices.get_invoice(actor_of(buyer), invoice.id).id == invoice.id
    with pytest.raises(NotFound):
        invoices.get_invoice(actor_of(committed_organisation(Role.SUPPLIER)), invoice.id)
    with pytest.raises(NotFound):
        invoices.get_invoice(actor_of(buyer), invoice.id + 1)
    with pytest.raises(OrganisationInactive):
        invoices.get_invoice(actor_of(committed_organisation(Role.BUYER, kyc=KycStatus.REJECTED)), invoice.id)


def test_an_invoice_without_a_document_has_none_to_read(supplier, buyer):
    invoice = invoice_of(supplier, buyer)
    with pytest.raises(NotFound, match="no document"):
        invoices.invoice_document(actor_of(buyer), invoice.id)


def test_pending_actions_are_the_writes_not_yet_answered(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    invoices.cancel_invoice(actor_of(supplier), invoice.id)
    row = only_outbox_row()
    for status in (ChainTransactionStatus.SIGNED, ChainTransactionStatus.SENT):
        row.status, row.nonce, row.raw_tx, row.tx_hash = status, 0, "0x00", "0x" + "11" * 32
        db.session.commit()
        assert invoices.pending_actions(invoice) == [row]
    mined(row, indexed=False)
    assert invoices.pending_actions(invoice) == [row]  # mined, but the projections do not show it yet
    mined(row)
    assert invoices.pending_actions(invoice) == []
    row.status = ChainTransactionStatus.REVERTED
    db.session.commit()
    assert invoices.pending_actions(invoice) == []


# ---------------------------------------------------------------- on PostgreSQL too


@pytest.fixture
def on_each_backend(app_on_each_backend) -> Iterator[None]:
    with app_on_each_backend.app_context():
        yield
        db.session.rollback()


def test_registration_and_every_change_on_each_database_backend(on_each_backend):
    supplier, buyer = committed_organisation(Role.SUPPLIER), committed_organisation(Role.BUYER)
    sub_supplier = committed_organisation(Role.SUPPLIER)
    clerk, payer = actor_of(supplier), actor_of(buyer)
    due = date.today() + timedelta(days=30)
    data = "".join(f"B-{n},{buyer.legal_identifier},10.00,CNY,{date.today()},{due}\n" for n in range(3))
    registered = invoice_intake.register_csv_invoices(
        clerk, ("invoice_number,buyer,amount,currency,issue_date,due_date\n" + data).encode(),
        mode=invoice_intake.CsvMode.ALL_OR_NOTHING).invoices
    (batch,) = db.session.scalars(select(ChainTransaction)).all()
    assert all(invoices.pending_actions(invoice) == [batch] for invoice in registered)

    mined(batch)  # the indexer saw the receivables registered
    first, second, third = registered
    for invoice in registered:
        invoice.status = InvoiceStatus.REGISTERED
    db.session.commit()
    assert invoices.pending_actions(first) == []
    invoices.confirm_invoice(payer, first.id)
    invoices.dispute_invoice(payer, second.id, DisputeReason.GOODS_NOT_RECEIVED, "not delivered")
    invoices.cancel_invoice(clerk, third.id)
    with pytest.raises(InvalidState):
        invoices.confirm_invoice(payer, first.id)

    confirmed = invoice_of(supplier, buyer, amount_minor=1_000)
    parent = split(clerk, confirmed, ("4", sub_supplier.id), ("6", supplier.id))
    transferable = invoice_of(supplier, buyer)
    invoices.transfer_invoice(clerk, transferable.id, to=sub_supplier.chain_address)

    functions = [row.function for row in db.session.scalars(select(ChainTransaction).order_by(ChainTransaction.id))]
    assert functions == ["registerBatch", "confirm", "dispute", "cancel", "split", "transferFrom"]
    assert listed(clerk, status=InvoiceStatus.PENDING) == [child.id for child in parent.children]
    assert listed(actor_of(sub_supplier), perspective=Perspective.HOLDER) == [parent.children[0].id]


# ---------------------------------------------------------------- the timeline


def csv_upload(supplier: Organisation, buyer: Organisation, numbers: list[str]) -> list[Invoice]:
    due = date.today() + timedelta(days=30)
    rows = "".join(f"{number},{buyer.legal_identifier},10.00,CNY,{date.today()},{due}\n" for number in numbers)
    return invoice_intake.register_csv_invoices(
        actor_of(supplier), ("invoice_number,buyer,amount,currency,issue_date,due_date\n" + rows).encode(),
        mode=invoice_intake.CsvMode.ALL_OR_NOTHING).invoices


def test_a_csv_invoices_timeline_starts_with_its_uploads_batch(supplier, buyer):
    first_upload = csv_upload(supplier, buyer, ["A-1", "A-2"])
    csv_upload(committed_organisation(Role.SUPPLIER), buyer, ["A-2"])  # another supplier's A-2
    second_upload = csv_upload(supplier, buyer, ["B-1", "B-2"])
    first_batch, others_batch, second_batch = factories.outbox_rows()
    mined(first_batch)
    invoice = first_upload[1]
    invoice.status = InvoiceStatus.REGISTERED
    db.session.commit()
    invoices.confirm_invoice(actor_of(buyer), invoice.id)
    confirmation = factories.outbox_rows()[-1]

    steps = invoices.ledger_history(actor_of(buyer), invoice.id)

    assert [(step.function, step.transaction, step.batched) for step in steps] == [
        ("register", first_batch, True), ("confirm", confirmation, False)]
    registration = steps[0].transaction
    assert (steps[0].signer, registration.status, registration.tx_hash, registration.block_number) == (
        supplier, ChainTransactionStatus.MINED, "0x%064x" % first_batch.id, 7)
    assert [step.transaction for step in invoices.ledger_history(actor_of(supplier), second_upload[0].id)] == [
        second_batch]
    assert others_batch not in {step.transaction for step in steps}


def test_a_registration_the_outbox_worker_batched_shows_the_batchs_transaction(supplier, buyer):
    invoice = invoice_of(supplier, buyer, status=InvoiceStatus.REGISTERED)
    carrier = ChainTransaction(intent_key=f"carrier:register:{invoice.id}", signer=supplier,
                               contract=ContractName.RECEIVABLE_REGISTRY, function="registerBatch", args=[[]],
                               subject_type=invoices.BATCH_SUBJECT, subject_id=invoice.id)
    db.session.add(carrier)
    db.session.flush()
    member = ChainTransaction(intent_key=f"invoice:{invoice.id}:register", signer=supplier, invoice=invoice,
                              contract=ContractName.RECEIVABLE_REGISTRY, function="register", args=[[]],
                              status=ChainTransactionStatus.BATCHED, carried_by=carrier)
    db.session.add(member)
    mined(carrier)

    (step,) = invoices.ledger_history(actor_of(buyer), invoice.id)

    assert (step.function, step.transaction, step.batched, step.requested_at) == (
        "register", carrier, True, member.created_at)
    assert (step.transaction.tx_hash, step.transaction.block_number) == ("0x%064x" % carrier.id, 7)
