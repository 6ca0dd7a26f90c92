"""Registering invoices from a form, a PDF, a UBL 2.1 e-invoice and a bulk CSV
(backend/services/invoice_intake.py): the business rules, the pending invoice and its
document, the queued registration and the audit entry, and that a refusal writes nothing."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from flask import current_app
from pypdf import PdfWriter

from backend.chain.client import invoice_number_hash, receivable_id
from backend.extensions import db
from backend.models import (
    AuditLog,
    ChainTransaction,
    ContractName,
    Document,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    KycStatus,
    Organisation,
    Role,
)
from backend.services import invoice_intake, invoices
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, OrganisationInactive, PermissionDenied
from backend.services.invoice_intake import CsvMode
from tests import domain_factories as factories
from tests.domain_factories import audit_entries, committed_organisation, outbox_rows, count

UBL_DIR = Path(__file__).parent / "data" / "intake" / "ubl"
TODAY = date(2024, 3, 10)
ISSUED = TODAY - timedelta(days=3)
DUE = TODAY + timedelta(days=60)


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """The services' today: a date in 2024, so the UBL test invoices are not yet due."""
    monkeypatch.setattr(invoice_intake, "utc_today", lambda: TODAY)


@pytest.fixture
def supplier(db_session) -> Organisation:
    org = factories.organisation(Role.SUPPLIER, name="Rheinkraft Armaturen")
    org.legal_identifier = "0088:4000001123452"  # the supplier of invoice-base.xml
    db.session.commit()
    return org


@pytest.fixture
def buyer(db_session) -> Organisation:
    org = factories.organisation(Role.BUYER, name="Fjordlys Energi")
    org.legal_identifier = "0192:987654325"  # the buyer of invoice-base.xml
    db.session.commit()
    return org


@pytest.fixture
def seller(supplier) -> Actor:
    """A portal user of the supplier."""
    actor = factories.actor(supplier)
    db.session.commit()
    return actor


def writes() -> tuple[int, ...]:
    """Rows a registration may write, and the files of the document store."""
    stored = sum(1 for path in Path(current_app.config["DOCUMENTS_DIR"]).rglob("*") if path.is_file())
    return count(Invoice), count(ChainTransaction), count(AuditLog), count(Document), stored


def register(actor: Actor, buyer: Organisation | int | str, **terms) -> Invoice:
    reference = buyer.id if isinstance(buyer, Organisation) else buyer
    terms = {"invoice_number": "INV-0001", "amount": "1250.50", "currency": "EUR", "issue_date": ISSUED,
             "due_date": DUE} | terms
    return invoice_intake.register_invoice(actor, buyer=reference, **terms)


def pdf_bytes(title: str = "Invoice INV-0001", *, password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": title})
    if password is not None:
        writer.encrypt(password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def ledger_date(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def expected_receivable(supplier: Organisation, buyer: Organisation, number: str) -> str:
    return "0x%064x" % receivable_id(supplier.chain_address, buyer.chain_address, invoice_number_hash(number))


# ---------------------------------------------------------------- a form (JSON)


def test_a_form_registration_queues_the_registration_and_audits_it(seller, supplier, buyer):
    invoice = register(seller, buyer)

    assert (invoice.status, invoice.source, invoice.amount_minor, invoice.currency) == (
        InvoiceStatus.PENDING, InvoiceSource.API, 125050, "EUR")
    assert (invoice.supplier_id, invoice.buyer_id, invoice.holder_id) == (supplier.id, buyer.id, supplier.id)
    assert invoice.invoice_number_hash == "0x" + hashlib.sha256(b"INV-0001").hexdigest()
    assert invoice.receivable_id == expected_receivable(supplier, buyer, "INV-0001")

    (row,) = outbox_rows()
    assert (row.intent_key, row.contract, row.function, row.signer_id, row.invoice_id) == (
        f"invoice:{invoice.id}:register", ContractName.RECEIVABLE_REGISTRY, "register", supplier.id, invoice.id)
    assert row.args == [[buyer.chain_address, 125050, "0x455552", ledger_date(ISSUED), ledger_date(DUE),
                         invoice.invoice_number_hash, "0x" + invoice.document_sha256]]
    (entry,) = audit_entries()
    assert (entry.action, entry.subject_type, entry.subject_id, entry.actor_user_id) == (
        "invoice.register", "invoice", str(invoice.id), seller.user.id)
    assert entry.after["status"] == "pending" and entry.after["receivable_id"] == invoice.receivable_id
    assert invoices.pending_actions(invoice) == [row]


def test_an_invoice_registered_without_a_document_anchors_its_statement(seller, supplier, buyer):
    invoice = register(seller, buyer)

    document = invoice.document
    assert (document.media_type, document.uploaded_by_id) == ("application/json", supplier.id)
    stored = invoices.document_store().read(document.sha256)
    assert hashlib.sha256(stored).hexdigest() == document.sha256 == invoice.document_sha256
    assert json.loads(stored) == {
        "format": "anchorline-invoice-statement/1", "supplier": supplier.legal_identifier,
        "buyer": buyer.legal_identifier, "invoice_number": "INV-0001", "amount": "1250.50", "currency": "EUR",
        "issue_date": ISSUED.isoformat(), "due_date": DUE.isoformat(),
    }


@pytest.mark.parametrize("reference", ["id", "digits", "address", "lowercase address", "legal identifier"])
def test_the_buyer_is_named_by_id_address_or_legal_identifier(seller, buyer, reference):
    named = {"id": buyer.id, "digits": str(buyer.id), "address": buyer.chain_address,
             "lowercase address": buyer.chain_address.lower(), "legal identifier": buyer.legal_identifier}[reference]
    assert register(seller, named).buyer_id == buyer.id


def test_an_api_key_with_write_scope_registers(supplier, buyer):
    machine = factories.actor(supplier, scopes=("read", "write"))
    db.session.commit()
    invoice = register(machine, buyer)
    assert audit_entries()[0].api_key_id == machine.api_key.id and invoice.status == InvoiceStatus.PENDING


def test_a_document_the_supplier_uploaded_before_is_anchored_again(seller, supplier, buyer):
    first = invoice_intake.register_pdf_invoice(seller, pdf_bytes(), filename="inv.pdf", invoice_number="INV-A",
                                                buyer=buyer.id, amount="10", currency="EUR", issue_date=ISSUED,
                                                due_date=DUE)
    second = register(seller, buyer, invoice_number="INV-B", document_sha256=first.document_sha256.upper())

    assert second.document_sha256 == first.document_sha256
    assert outbox_rows()[-1].args[0][6] == "0x" + first.document_sha256
    assert count(Document) == 1


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"amount": "12.345"}, "amount"),  # EUR has two decimals: never rounded
        ({"amount": "0"}, "amount"),
        ({"amount": "1,250.50"}, "amount"),
        ({"currency": "EURO"}, "currency"),
        ({"invoice_number": "  "}, "invoice_number"),
        ({"invoice_number": "x" * 101}, "invoice_number"),
        ({"due_date": ISSUED - timedelta(days=1)}, "due_date"),
        ({"due_date": ISSUED}, "due_date"),  # the ledger wants the due date after the issue date
        ({"issue_date": TODAY - timedelta(days=40), "due_date": TODAY}, "due_date"),  # due today: too late
        ({"issue_date": date(2024, 1, 1), "due_date": date(2024, 2, 1)}, "due_date"),
        ({"issue_date": date(1969, 12, 31)}, "issue_date"),  # the ledger's dates are unsigned seconds
        ({"document_sha256": "not-a-digest"}, "document_sha256"),
        ({"document_sha256": "ab" * 32}, "document_sha256"),  # no such upload
    ],
)
def test_invalid_terms_are_refused_and_nothing_is_written(seller, buyer, terms, field):
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        register(seller, buyer, **terms)
    assert list(refused.value.errors) == [field]
    assert writes() == before


def test_every_wrong_field_is_named_at_once(seller, buyer):
    with pytest.raises(InvalidInput) as refused:
        register(seller, buyer, invoice_number="", amount="1.001", currency="EUR",
                 due_date=ISSUED - timedelta(days=1), document_sha256="xyz")
    assert set(refused.value.errors) == {"invoice_number", "amount", "due_date", "document_sha256"}


def test_a_document_uploaded_by_another_supplier_cannot_be_anchored(seller, buyer):
    rival = factories.actor(committed_organisation(Role.SUPPLIER))
    db.session.commit()
    theirs = invoice_intake.register_pdf_invoice(rival, pdf_bytes("theirs"), filename=None, invoice_number="R-1",
                                                 buyer=buyer.id, amount="10", currency="EUR", issue_date=ISSUED,
                                                 due_date=DUE)
    with pytest.raises(InvalidInput) as refused:
        register(seller, buyer, document_sha256=theirs.document_sha256)
    assert list(refused.value.errors) == ["document_sha256"]


@pytest.mark.parametrize(
    ("roles", "options", "problem"),
    [
        (Role.SUPPLIER, {}, "is not a buyer"),
        (Role.FINANCIER, {}, "is not a buyer"),
        (Role.BUYER, {"suspended": True}, "not an active participant"),
        (Role.BUYER, {"kyc": KycStatus.PENDING}, "not an active participant"),
        (Role.BUYER, {"onboarded": False}, "not onboarded"),
    ],
)
def test_the_buyer_must_be_an_active_onboarded_buyer(seller, roles, options, problem):
    wrong_buyer = committed_organisation(roles, **options)
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        register(seller, wrong_buyer)
    assert problem in refused.value.errors["buyer"][0]
    assert writes() == before


@pytest.mark.parametrize("reference", [10**6, 2**40, "0088:0000000000000", "0x" + "00" * 20])
def test_an_unknown_buyer_is_refused(seller, reference):
    with pytest.raises(InvalidInput) as refused:
        register(seller, reference)
    assert "no organisation" in refused.value.errors["buyer"][0]


def test_a_supplier_cannot_invoice_itself(db_session):
    both = committed_organisation(Role.SUPPLIER | Role.BUYER)
    actor = factories.actor(both)
    db.session.commit()
    with pytest.raises(InvalidInput) as refused:
        register(actor, both)
    assert refused.value.errors["buyer"] == ["an organisation cannot invoice itself"]


def test_the_same_invoice_number_to_the_same_buyer_is_a_duplicate(seller, buyer):
    register(seller, buyer)
    before = writes()
    with pytest.raises(Duplicate):
        register(seller, buyer, amount="99.00", invoice_number=" INV-0001 ")  # stripped, as the ledger hashes it
    assert writes() == before


def test_the_same_invoice_number_to_another_buyer_is_another_invoice(seller, buyer):
    other_buyer = committed_organisation(Role.BUYER)
    first, second = register(seller, buyer), register(seller, other_buyer)
    assert first.receivable_id != second.receivable_id


@pytest.mark.parametrize(
    ("make_actor", "refusal"),
    [
        (lambda: factories.actor(factories.organisation(Role.BUYER)), PermissionDenied),
        (lambda: factories.actor(factories.organisation(Role.FINANCIER)), PermissionDenied),
        (lambda: factories.actor(factories.organisation(Role.SUPPLIER), scopes=("read",)), PermissionDenied),
        (lambda: factories.actor(factories.organisation(Role.SUPPLIER, suspended=True)), OrganisationInactive),
        (lambda: factories.actor(factories.organisation(Role.SUPPLIER, kyc=KycStatus.PENDING)), OrganisationInactive),
        (lambda: factories.actor(factories.organisation(Role.SUPPLIER, onboarded=False)), InvalidState),
    ],
)
def test_only_an_active_onboarded_supplier_registers(buyer, make_actor, refusal):
    actor = make_actor()
    db.session.commit()
    before = writes()
    with pytest.raises(refusal):
        register(actor, buyer)
    assert writes() == before


# ---------------------------------------------------------------- a PDF


def register_pdf(actor: Actor, buyer: Organisation, pdf: bytes, **terms) -> Invoice:
    terms = {"invoice_number": "INV-0001", "amount": "1250.50", "currency": "EUR", "issue_date": ISSUED,
             "due_date": DUE, "filename": "INV-0001.pdf"} | terms
    return invoice_intake.register_pdf_invoice(actor, pdf, buyer=buyer.id, **terms)


def test_a_pdf_registration_stores_the_pdf_as_the_anchored_document(seller, supplier, buyer):
    pdf = pdf_bytes()
    invoice = register_pdf(seller, buyer, pdf)

    digest = hashlib.sha256(pdf).hexdigest()
    assert (invoice.source, invoice.document_sha256) == (InvoiceSource.PDF, digest)
    document = invoice.document
    assert (document.media_type, document.size_bytes, document.original_filename, document.uploaded_by_id) == (
        "application/pdf", len(pdf), "INV-0001.pdf", supplier.id)
    assert invoices.document_store().read(digest) == pdf
    (row,) = outbox_rows()
    assert (row.function, row.args[0][6]) == ("register", "0x" + digest)
    assert audit_entries()[0].after["document_sha256"] == digest


@pytest.mark.parametrize(
    ("filename", "kept"),
    [("C:\\Users\\me\\INV 7.pdf", "INV 7.pdf"), ("../../etc/INV\r\n7.pdf", "INV7.pdf"), ("", None),
     ("x" * 300 + ".pdf", "x" * 251 + ".pdf")],
)
def test_an_uploaded_files_name_is_kept_without_folders_or_control_characters(seller, buyer, filename, kept):
    assert register_pdf(seller, buyer, pdf_bytes(), filename=filename).document.original_filename == kept


@pytest.mark.parametrize(
    "pdf",
    [b"%PDF-1.7 but nothing else", b"plain text, not a PDF\n%%EOF", pdf_bytes(password="secret")],
    ids=["truncated", "not-a-pdf", "encrypted"],
)
def test_a_file_that_is_not_a_readable_pdf_is_refused(seller, buyer, pdf):
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        register_pdf(seller, buyer, pdf)
    assert list(refused.value.errors) == ["file"]
    assert writes() == before


def test_a_pdf_over_the_size_limit_is_refused(seller, buyer):
    current_app.config["MAX_CONTENT_LENGTH"] = 100
    with pytest.raises(InvalidInput) as refused:
        register_pdf(seller, buyer, pdf_bytes())
    assert "limit is 100" in refused.value.errors["file"][0]


def test_a_pdf_registration_refused_by_a_business_rule_stores_no_file(seller, buyer):
    before = writes()
    with pytest.raises(InvalidInput):
        register_pdf(seller, buyer, pdf_bytes(), due_date=TODAY)
    assert writes() == before


# ---------------------------------------------------------------- a UBL 2.1 e-invoice


def ubl(name: str) -> bytes:
    return (UBL_DIR / name).read_bytes()


def test_a_ubl_invoice_is_registered_with_the_xml_as_its_document(seller, supplier, buyer):
    xml = ubl("invoice-base.xml")
    invoice = invoice_intake.register_ubl_invoice(seller, xml, filename="invoice-base.xml")

    assert (invoice.source, invoice.invoice_number, invoice.amount_minor, invoice.currency) == (
        InvoiceSource.UBL, "AL-2024-0117", 1525000, "EUR")
    assert (invoice.issue_date, invoice.due_date, invoice.buyer_id) == (date(2024, 3, 4), date(2024, 4, 3), buyer.id)
    assert invoice.receivable_id == expected_receivable(supplier, buyer, "AL-2024-0117")
    assert invoice.document.media_type == "application/xml"
    assert invoice.document_sha256 == hashlib.sha256(xml).hexdigest()
    assert invoices.document_store().read(invoice.document_sha256) == xml
    (row,) = outbox_rows()
    assert row.args == [[buyer.chain_address, 1525000, "0x455552", ledger_date(date(2024, 3, 4)),
                         ledger_date(date(2024, 4, 3)), "0x" + hashlib.sha256(b"AL-2024-0117").hexdigest(),
                         "0x" + invoice.document_sha256]]


@pytest.mark.parametrize(
    ("name", "supplier_id", "buyer_id", "currency_hex", "amount_minor", "today"),
    [
        ("invoice-due-date-in-payment-means.xml", "9932:GB318845120", "0088:5012345678900", "0x474250", 420000,
         date(2024, 6, 1)),
        ("invoice-allowances.xml", "0007:5567321707", "0088:7365432100004", "0x455552", 623750, date(2024, 2, 15)),
        ("invoice-reverse-charge.xml", "9930:DE812345678", "0106:56781234", "0x455552", 4800000, date(2024, 7, 1)),
    ],
)
def test_each_test_e_invoice_registers_for_its_parties(monkeypatch, name, supplier_id, buyer_id, currency_hex,
                                                       amount_minor, today, db_session):
    monkeypatch.setattr(invoice_intake, "utc_today", lambda: today)
    issuer, payer = committed_organisation(Role.SUPPLIER), committed_organisation(Role.BUYER)
    issuer.legal_identifier, payer.legal_identifier = supplier_id, buyer_id
    actor = factories.actor(issuer)
    db.session.commit()

    invoice = invoice_intake.register_ubl_invoice(actor, ubl(name))

    assert (invoice.supplier_id, invoice.buyer_id, invoice.amount_minor) == (issuer.id, payer.id, amount_minor)
    assert outbox_rows()[0].args[0][2] == currency_hex


def test_a_ubl_invoice_of_another_supplier_is_refused(buyer, db_session):
    stranger = factories.actor(committed_organisation(Role.SUPPLIER))
    db.session.commit()
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_ubl_invoice(stranger, ubl("invoice-base.xml"))
    assert "0088:4000001123452" in refused.value.errors["supplier"][0]
    assert writes() == before


def test_a_ubl_supplier_named_without_a_scheme_matches_no_legal_identifier(seller):
    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_ubl_invoice(seller, ubl("invoice-kwd.xml"))
    assert "CR-401233" in refused.value.errors["supplier"][0]


def test_a_ubl_invoice_to_a_buyer_not_on_the_platform_is_refused(seller):
    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_ubl_invoice(seller, ubl("invoice-base.xml"))
    assert refused.value.errors["buyer"] == ["no organisation 0192:987654325 on the platform"]


def test_a_ubl_invoice_already_due_is_refused(monkeypatch, seller, buyer):
    monkeypatch.setattr(invoice_intake, "utc_today", lambda: date(2024, 4, 3))
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_ubl_invoice(seller, ubl("invoice-base.xml"))
    assert list(refused.value.errors) == ["due_date"]
    assert writes() == before


def test_a_ubl_invoice_registered_twice_is_a_duplicate(seller, buyer):
    invoice_intake.register_ubl_invoice(seller, ubl("invoice-base.xml"))
    with pytest.raises(Duplicate):
        invoice_intake.register_ubl_invoice(seller, ubl("invoice-base.xml"))
    assert count(Invoice) == 1


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        (ubl("creditnote.xml"), "CreditNote"),
        (b"<Invoice>", "not well-formed"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "DTD"),
    ],
)
def test_xml_that_is_not_a_readable_ubl_invoice_is_refused(seller, buyer, xml, reason):
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_ubl_invoice(seller, xml)
    assert reason in refused.value.errors["file"][0]
    assert writes() == before


# ---------------------------------------------------------------- a bulk CSV


HEADER = "invoice_number,buyer,amount,currency,issue_date,due_date,document_sha256\n"


def csv_file(*rows: str) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


def row(number: str, buyer: str, amount: str = "100.00", *, due: date = DUE, digest: str = "") -> str:
    return f"{number},{buyer},{amount},EUR,{ISSUED.isoformat()},{due.isoformat()},{digest}"


def test_a_csv_file_registers_its_invoices_in_one_batch(seller, supplier, buyer):
    other_buyer = committed_organisation(Role.BUYER)
    data = csv_file(row("C-1", buyer.legal_identifier), row("C-2", other_buyer.chain_address, "7.5"),
                    row("C-3", buyer.chain_address.lower()))

    result = invoice_intake.register_csv_invoices(seller, data, mode=CsvMode.ALL_OR_NOTHING)

    assert result.errors == []
    first, second, third = result.invoices
    assert [invoice.buyer_id for invoice in result.invoices] == [buyer.id, other_buyer.id, buyer.id]
    assert {invoice.source for invoice in result.invoices} == {InvoiceSource.CSV}
    assert second.receivable_id == expected_receivable(supplier, other_buyer, "C-2")
    (batch,) = outbox_rows()
    assert (batch.intent_key, batch.function, batch.signer_id, batch.invoice_id, batch.subject_type,
            batch.subject_id) == (f"invoice-batch:{first.id}-{third.id}:register", "registerBatch", supplier.id,
                                  None, "invoice-batch", first.id)
    assert batch.args[0][1] == [other_buyer.chain_address, 750, "0x455552", ledger_date(ISSUED), ledger_date(DUE),
                                second.invoice_number_hash, "0x" + second.document_sha256]
    assert [entry.subject_id for entry in audit_entries()] == [str(invoice.id) for invoice in result.invoices]
    assert all(invoices.pending_actions(invoice) == [batch] for invoice in result.invoices)


def test_a_large_csv_file_is_registered_in_batches_of_100(seller, buyer):
    data = csv_file(*(row(f"C-{n}", buyer.legal_identifier) for n in range(1, 151)))

    result = invoice_intake.register_csv_invoices(seller, data, mode=CsvMode.ALL_OR_NOTHING)

    first, second = outbox_rows()
    assert [len(first.args[0]), len(second.args[0])] == [100, 50]
    ids = [invoice.id for invoice in result.invoices]
    assert second.intent_key == f"invoice-batch:{ids[100]}-{ids[149]}:register"
    assert invoices.pending_actions(result.invoices[120]) == [second]


def test_a_csv_row_may_name_a_document_the_supplier_uploaded(seller, buyer):
    uploaded = register_pdf(seller, buyer, pdf_bytes(), invoice_number="PDF-1")
    data = csv_file(row("C-1", buyer.legal_identifier, digest=uploaded.document_sha256.upper()))

    (invoice,) = invoice_intake.register_csv_invoices(seller, data, mode=CsvMode.ALL_OR_NOTHING).invoices

    assert invoice.document_sha256 == uploaded.document_sha256


def bad_file(buyer: Organisation, existing_number: str) -> bytes:
    """Two good rows and one of each kind of bad row (a spreadsheet's row numbers: the header is 1)."""
    return csv_file(
        row("C-1", buyer.legal_identifier),  # row 2
        row("C-2", buyer.legal_identifier, "12.345"),  # row 3: form
        row("C-3", "0088:0000000000000"),  # row 4: no such buyer
        row(existing_number, buyer.legal_identifier),  # row 5: registered before
        row("C-5", buyer.legal_identifier, due=TODAY),  # row 6: due today
        row("C-6", buyer.legal_identifier, digest="cd" * 32),  # row 7: no such upload
        row("C-1", buyer.legal_identifier),  # row 8: the same number twice in the file
        row("C-8", buyer.legal_identifier),  # row 9
    )


def test_all_or_nothing_refuses_a_file_with_any_bad_row_naming_every_one(seller, buyer):
    existing = register(seller, buyer, invoice_number="OLD-1")
    before = writes()

    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_csv_invoices(seller, bad_file(buyer, existing.invoice_number),
                                             mode=CsvMode.ALL_OR_NOTHING)

    errors = refused.value.errors
    assert set(errors) == {"rows.3.amount", "rows.4.buyer", "rows.5.invoice_number", "rows.6.due_date",
                           "rows.7.document_sha256", "rows.8.invoice_number"}
    assert "already on row 2" in errors["rows.8.invoice_number"][0]
    assert "registered already" in errors["rows.5.invoice_number"][0]
    assert "6 row(s) have errors" in refused.value.detail
    assert writes() == before


def test_valid_rows_only_registers_the_good_rows_and_reports_the_bad(seller, buyer):
    existing = register(seller, buyer, invoice_number="OLD-1")

    result = invoice_intake.register_csv_invoices(seller, bad_file(buyer, existing.invoice_number),
                                                  mode=CsvMode.VALID_ROWS_ONLY)

    assert [invoice.invoice_number for invoice in result.invoices] == ["C-1", "C-8"]
    assert [(error.row, error.column) for error in result.errors] == [
        (3, "amount"), (4, "buyer"), (5, "invoice_number"), (6, "due_date"), (7, "document_sha256"),
        (8, "invoice_number")]
    (batch,) = outbox_rows()[1:]
    assert [entry[5] for entry in batch.args[0]] == [invoice.invoice_number_hash for invoice in result.invoices]


@pytest.mark.parametrize("mode", list(CsvMode))
def test_a_file_without_a_good_row_is_refused_in_either_mode(seller, buyer, mode):
    before = writes()
    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_csv_invoices(seller, csv_file(row("C-1", "0088:0000000000000")), mode=mode)
    assert list(refused.value.errors) == ["rows.2.buyer"]
    with pytest.raises(InvalidInput) as empty:
        invoice_intake.register_csv_invoices(seller, csv_file(), mode=mode)
    assert empty.value.errors == {"file": ["the file has no invoice rows"]}
    assert writes() == before


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"invoice_number,buyer\nC-1,0088:1\n", "rows.1.amount"),
        (b"\xff\xfe not utf-8", "file"),
        (b"", "file"),
    ],
)
def test_a_csv_file_that_cannot_be_read_as_a_whole_is_refused(seller, data, field):
    with pytest.raises(InvalidInput) as refused:
        invoice_intake.register_csv_invoices(seller, data, mode=CsvMode.VALID_ROWS_ONLY)
    assert field in refused.value.errors


def test_a_csv_upload_needs_an_active_onboarded_supplier(buyer, db_session):
    actor = factories.actor(committed_organisation(Role.BUYER))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        invoice_intake.register_csv_invoices(actor, csv_file(row("C-1", buyer.legal_identifier)),
                                             mode=CsvMode.ALL_OR_NOTHING)
    assert count(Invoice) == 0
