"""The ledger explorer's services (backend/services/explorer.py) and the audit log's search
filters (backend/services/audit_reads.py): the receivables search, a receivable's history in
chain order, its split lineage, the document check against the ledger (eth-tester) or the
indexed registration, and the CSV exports."""
from __future__ import annotations

import csv
import hashlib
import io
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import requests
from flask import Flask
from sqlalchemy import update

from backend.chain.client import child_receivable_id
from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ContractName,
    Document,
    Invoice,
    InvoiceStatus,
    Role,
)
from backend.services import audit, explorer, invoices
from backend.services.audit_reads import audit_entries
from backend.services.errors import InvalidInput, PermissionDenied
from backend.services.explorer import DocumentVerdict, HashSource
from tests import domain_factories as factories

PDF = b"%PDF-1.7 the invoice as the supplier uploaded it"


def event_key(invoice: Invoice) -> str:
    """The invoice's receivable id as an indexed event's argument holds it."""
    return str(int(invoice.receivable_id, 16))


@pytest.fixture
def auditor(db_session):
    return factories.actor(factories.organisation(Role.AUDITOR, onboarded=False))


@pytest.fixture
def parties(db_session):
    return {"supplier": factories.organisation(Role.SUPPLIER, name="Harbour Textiles"),
            "buyer": factories.organisation(Role.BUYER, name="Keel Motors"),
            "sub_supplier": factories.organisation(Role.SUPPLIER, name="Loom & Thread"),
            "financier": factories.organisation(Role.FINANCIER, name="Tidewater Capital")}


def listed(actor, **filters) -> list[int]:
    return [invoice.id for invoice in db.session.scalars(explorer.receivable_query(actor, **filters))]


# ---------------------------------------------------------------- the search


def test_the_search_finds_receivables_by_each_filter(auditor, parties):
    first = factories.invoice(parties["supplier"], parties["buyer"], status=InvoiceStatus.REGISTERED)
    second = factories.invoice(parties["sub_supplier"], parties["buyer"])

    assert listed(auditor) == [second.id, first.id]  # newest first
    assert listed(auditor, invoice_number=first.invoice_number.lower()) == [first.id]
    assert listed(auditor, receivable_id=first.receivable_id.upper().replace("0X", "0x")) == [first.id]
    assert listed(auditor, receivable_id=event_key(first)) == [first.id]  # as the events show it
    assert listed(auditor, supplier="loom &") == [second.id]
    assert listed(auditor, supplier=parties["supplier"].legal_identifier) == [first.id]
    assert listed(auditor, supplier=parties["supplier"].chain_address.lower()) == [first.id]
    assert listed(auditor, buyer="keel", status=InvoiceStatus.CONFIRMED) == [second.id]
    assert listed(auditor, supplier="%") == []  # the wildcard is a character like any other


def test_a_malformed_receivable_id_is_refused_on_its_field(auditor):
    with pytest.raises(InvalidInput) as refusal:
        explorer.receivable_query(auditor, receivable_id="0xnot-hex")

    assert "receivable_id" in refusal.value.errors


def test_only_the_readers_of_everything_explore_the_ledger(db_session, parties):
    invoice = factories.invoice(parties["supplier"], parties["buyer"])
    # Its supplier and its buyer see the invoice itself; a financier does not.
    for organisation in (parties["supplier"], parties["buyer"], parties["financier"]):
        participant = factories.actor(organisation)
        for call, args in ((explorer.receivable_query, ()), (explorer.receivable_history, (invoice.id,)),
                           (explorer.split_lineage, (invoice.id,)), (explorer.check_document, (invoice.id,)),
                           (explorer.receivables_csv, ()), (explorer.audit_csv, ())):
            with pytest.raises(PermissionDenied):
                call(participant, *args)


# ---------------------------------------------------------------- history


def test_the_history_lists_every_event_about_the_receivable_in_chain_order(auditor, parties):
    invoice = factories.invoice(parties["supplier"], parties["buyer"])
    other = factories.invoice(parties["supplier"], parties["buyer"])
    key = event_key(invoice)
    # Stored out of order, as a reindex or two indexers' ranges could leave them.
    confirmed = factories.chain_event("ReceivableConfirmed", {"id": key}, block_number=12)
    registered = factories.chain_event("ReceivableRegistered", {
        "id": key, "supplier": parties["supplier"].chain_address, "buyer": parties["buyer"].chain_address,
        "amount": 1_000_000, "currency": "0x434e59", "issueDate": 0, "dueDate": 86_400,
        "invoiceNumberHash": "0x" + "11" * 32, "documentHash": "0x" + "22" * 32}, block_number=10)
    minted = factories.chain_event("Transfer", {"from": "0x" + "00" * 20, "to": parties["supplier"].chain_address,
                                                "tokenId": key}, block_number=10, tx_hash=registered.tx_hash)
    financed = factories.chain_event("FinancingSettled", {
        "id": key, "seller": parties["supplier"].chain_address, "financier": parties["financier"].chain_address,
        "round": 1, "advance": 900_000, "viaOffer": True}, block_number=15, contract="Financing")
    factories.chain_event("ReceivableConfirmed", {"id": event_key(other)}, block_number=11)
    factories.chain_event("ParticipantOnboarded", {"account": parties["buyer"].chain_address, "id": key,
                                                   "roles": 2, "organisationRef": "0x" + "00" * 32},
                          block_number=9, contract="Financing")
    queued = ChainTransaction(intent_key=f"invoice:{invoice.id}:repay:1", signer=parties["buyer"], invoice=invoice,
                              contract=ContractName.FINANCING, function="repay", args=[])
    db.session.add(queued)
    db.session.flush()

    history = explorer.receivable_history(auditor, invoice.id)

    assert [event.id for event in history.events] == [registered.id, minted.id, confirmed.id, financed.id]
    assert history.in_flight == [queued]
    assert history.organisations[parties["financier"].chain_address] == parties["financier"]


def test_a_split_part_s_history_starts_with_the_split_that_created_it(auditor, parties):
    parent = factories.invoice(parties["supplier"], parties["buyer"])
    part = factories.split_part(parent, 1, amount_minor=400_000, holder=parties["sub_supplier"])
    sibling = factories.split_part(parent, 0, amount_minor=600_000)
    factories.chain_event("ReceivableConfirmed", {"id": event_key(parent)}, block_number=3)
    split = factories.chain_event("ReceivableSplit", {
        "parentId": event_key(parent), "childIds": [event_key(sibling), event_key(part)],
        "amounts": [600_000, 400_000]}, block_number=5)
    factories.chain_event("Transfer", {"from": "0x" + "00" * 20, "to": parties["supplier"].chain_address,
                                       "tokenId": event_key(sibling)}, block_number=5, tx_hash=split.tx_hash)
    mint = factories.chain_event("Transfer", {"from": "0x" + "00" * 20, "to": parties["sub_supplier"].chain_address,
                                              "tokenId": event_key(part)}, block_number=5, tx_hash=split.tx_hash)

    assert [event.id for event in explorer.receivable_history(auditor, part.id).events] == [split.id, mint.id]


# ---------------------------------------------------------------- lineage


def test_the_lineage_of_a_split_of_a_split(auditor, parties):
    origin = factories.invoice(parties["supplier"], parties["buyer"], status=InvoiceStatus.SPLIT)
    first = factories.split_part(origin, 0, amount_minor=700_000, status=InvoiceStatus.SPLIT)
    second = factories.split_part(origin, 1, amount_minor=300_000, holder=parties["financier"])
    grandchildren = [factories.split_part(first, index, amount_minor=amount, holder=parties["sub_supplier"])
                     for index, amount in enumerate((500_000, 200_000))]

    from_origin = explorer.split_lineage(auditor, origin.id)
    from_grandchild = explorer.split_lineage(auditor, grandchildren[1].id)

    assert from_origin.ancestors == []
    assert [(node.invoice, [child.invoice for child in node.children]) for node in from_origin.descendants] == [
        (first, grandchildren), (second, [])]
    assert from_grandchild.ancestors == [origin, first] and from_grandchild.descendants == []
    assert explorer.origin_of(grandchildren[1]) == origin


def test_a_lineage_that_loops_in_a_damaged_database_is_walked_once(auditor, parties):
    origin = factories.invoice(parties["supplier"], parties["buyer"], status=InvoiceStatus.SPLIT)
    part = factories.split_part(origin, 0, amount_minor=1, status=InvoiceStatus.SPLIT)
    # No service does this: a row changed behind the platform's back.
    db.session.execute(update(Invoice).where(Invoice.id == origin.id).values(parent_id=part.id, split_index=0))
    db.session.expire_all()

    with failing_after(seconds=5):
        lineage = explorer.split_lineage(auditor, part.id)
        origin_of_part = explorer.origin_of(part)

    assert lineage.ancestors == [origin]
    assert [(node.invoice, node.children) for node in lineage.descendants] == [(origin, [])]
    assert origin_of_part == origin


@contextmanager
def failing_after(*, seconds: int) -> Iterator[None]:
    """TimeoutError if the block runs longer than `seconds` (a loop that never ends fails)."""
    def give_up(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} seconds")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- the document check


@pytest.fixture(scope="module")
def anchored(module_ledger, module_actors) -> dict[str, object]:
    """A receivable registered on eth-tester, its registration anchoring PDF's SHA-256."""
    number = "INV-EXPLORER-1"
    receivable = module_ledger.register(module_actors.supplier, module_actors.buyer, number=number, document=PDF)
    return {"receivable_id": invoices.receivable_hex(receivable), "number": number, "ledger": module_ledger}


def stored_invoice(parties, receivable_id: str, document: bytes | None = PDF) -> Invoice:
    """An invoice with that receivable id whose document (if any) is stored."""
    invoice = factories.invoice(parties["supplier"], parties["buyer"])
    invoice.receivable_id = receivable_id
    if document is not None:
        digest = invoices.document_store().put(document)
        db.session.add(Document(sha256=digest, media_type="application/pdf", size_bytes=len(document),
                                uploaded_by_id=parties["supplier"].id))
        invoice.document_sha256 = digest
    db.session.flush()
    return invoice


def test_the_stored_document_matches_the_hash_on_the_ledger(auditor, parties, anchored):
    invoice = stored_invoice(parties, anchored["receivable_id"])

    check = explorer.check_document(auditor, invoice.id, ledger=anchored["ledger"])

    assert check.verdict == DocumentVerdict.MATCH and check.source == HashSource.LEDGER
    assert check.stored_sha256 == check.anchored_sha256 == hashlib.sha256(PDF).hexdigest()


def test_a_tampered_file_is_a_mismatch(auditor, parties, anchored):
    invoice = stored_invoice(parties, anchored["receivable_id"])
    invoices.document_store().path_for(invoice.document_sha256).write_bytes(b"%PDF-1.7 a quietly changed invoice")

    check = explorer.check_document(auditor, invoice.id, ledger=anchored["ledger"])

    assert check.verdict == DocumentVerdict.MISMATCH
    assert check.anchored_sha256 == check.recorded_sha256 == hashlib.sha256(PDF).hexdigest()
    assert check.stored_sha256 == hashlib.sha256(b"%PDF-1.7 a quietly changed invoice").hexdigest()


def test_a_missing_document_is_reported_with_the_ledger_s_hash(auditor, parties, anchored):
    invoice = stored_invoice(parties, anchored["receivable_id"])
    invoices.document_store().path_for(invoice.document_sha256).unlink()

    check = explorer.check_document(auditor, invoice.id, ledger=anchored["ledger"])

    assert check.verdict == DocumentVerdict.MISSING and check.stored_sha256 is None
    assert check.anchored_sha256 == hashlib.sha256(PDF).hexdigest()


def test_a_split_part_is_checked_against_its_origin_s_registration(auditor, parties, anchored):
    part = factories.split_part(stored_invoice(parties, anchored["receivable_id"]), 0, amount_minor=1)

    check = explorer.check_document(auditor, part.id, ledger=anchored["ledger"])

    assert check.verdict == DocumentVerdict.MATCH and check.origin == part.parent


def test_a_receivable_the_ledger_does_not_know_is_not_anchored(auditor, parties, anchored):
    invoice = stored_invoice(parties, invoices.receivable_hex(child_receivable_id(1, 2)))

    assert explorer.check_document(auditor, invoice.id, ledger=anchored["ledger"]).verdict == DocumentVerdict.NOT_ANCHORED


def test_without_a_node_the_indexed_registration_is_compared(app: Flask, auditor, parties, unused_port):
    app.config["ETH_RPC_URL"] = f"http://127.0.0.1:{unused_port()}"
    invoice = stored_invoice(parties, invoices.receivable_hex(child_receivable_id(3, 4)))
    factories.chain_event("ReceivableRegistered", {"id": event_key(invoice),
                                                   "documentHash": "0x" + hashlib.sha256(PDF).hexdigest()},
                          block_number=7)

    check = explorer.check_document(auditor, invoice.id)

    assert check.verdict == DocumentVerdict.MATCH and check.source == HashSource.INDEXED_EVENT
    assert "no Ethereum JSON-RPC node answers" in check.ledger_error


def test_the_ledger_s_error_never_quotes_the_node_s_url(auditor, parties):
    class NodeAway:
        def get_logs(self, **_filters: object) -> None:
            raise requests.ConnectionError("HTTPSConnectionPool(host='rpc.example', port=443): Max retries exceeded "
                                           "with url: /v3/secret-api-key?token=s3cret")

    ledger = SimpleNamespace(deployment=SimpleNamespace(deploy_block=0),
                             registry=SimpleNamespace(events=SimpleNamespace(ReceivableRegistered=NodeAway())))
    invoice = stored_invoice(parties, invoices.receivable_hex(child_receivable_id(5, 6)))

    check = explorer.check_document(auditor, invoice.id, ledger=ledger)

    assert check.source == HashSource.INDEXED_EVENT
    assert check.ledger_error == "unreachable: ConnectionError"


# ---------------------------------------------------------------- CSV


def read_csv(lines) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"), ("+1", "'+1"), ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("Harbour = Textiles", "Harbour = Textiles"), (None, ""),
    (date(2026, 1, 31), "2026-01-31"), (datetime(2026, 1, 31, 8, 5, tzinfo=UTC), "2026-01-31T08:05:00+00:00"),
])
def test_a_csv_cell_cannot_be_a_formula(value, cell):
    assert explorer.csv_cell(value) == cell


def test_the_receivables_export_has_a_header_and_each_receivable_s_state(auditor, parties):
    parties["supplier"].name = "=cmd|' /C calc'!A0"
    invoice = factories.invoice(parties["supplier"], parties["buyer"], amount_minor=1_234_567)
    invoice.repaid_minor = 34_567
    part = factories.split_part(factories.invoice(parties["sub_supplier"], parties["buyer"]), 0, amount_minor=5)

    header, *rows = read_csv(explorer.receivables_csv(auditor, buyer="keel"))

    assert header == list(explorer.RECEIVABLE_COLUMNS)
    by_id = {row[0]: dict(zip(header, row)) for row in rows}
    assert set(by_id) == {str(invoice.id), str(part.id), str(part.parent_id)}
    row = by_id[str(invoice.id)]
    assert (row["currency"], row["amount"], row["repaid"], row["outstanding"]) == ("CNY", "12345.67", "345.67", "12000.00")
    assert row["supplier"] == "'=cmd|' /C calc'!A0"
    assert row["due_date"] == invoice.due_date.isoformat() and row["created_at"].startswith(str(date.today().year))
    assert by_id[str(part.id)]["parent_receivable_id"] == part.parent.receivable_id


def test_the_audit_export_is_filtered_newest_first(auditor, parties):
    actor = factories.actor(parties["supplier"])
    for hour, action in enumerate(("invoice.register", "invoice.cancel", "invoice.register")):
        audit.record(actor, action, "invoice", 7, after={"note": "-1 for the bank"}).occurred_at = (
            datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=hour))
    db.session.flush()

    header, *rows = read_csv(explorer.audit_csv(auditor, action="invoice.register"))

    assert header == list(explorer.AUDIT_COLUMNS)
    assert [row[1] for row in rows] == ["2026-03-01T02:00:00+00:00", "2026-03-01T00:00:00+00:00"]
    assert rows[0][6] == "Harbour Textiles" and rows[0][8] == actor.user.email
    assert rows[0][12] == '{"note": "-1 for the bank"}'


# ---------------------------------------------------------------- the audit log's search filters


def test_the_audit_log_is_searched_by_user_and_text(auditor, parties):
    alice, bob = factories.actor(parties["supplier"]), factories.actor(parties["supplier"])
    audit.record(alice, "invoice.register", "invoice", 1, after={"invoice_number": "INV-2026-0042"})
    audit.record(bob, "invoice.register", "invoice", 2, after={"invoice_number": "INV-2026-0043"})
    audit.record(None, "invoice.confirm", "invoice", 1)
    db.session.flush()

    def subjects(**filters) -> list[str]:
        return sorted(entry.subject_id for entry in db.session.scalars(audit_entries(auditor, **filters)))

    assert subjects(actor_email=alice.user.email.upper()) == ["1"]
    assert subjects(actor_user_id=bob.user.id) == ["2"]
    assert subjects(text="inv-2026-0042") == ["1"]
    assert subjects(text="CONFIRM") == ["1"]
    assert subjects(text="%") == []
