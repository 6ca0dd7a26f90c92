"""UBL 2.1 e-invoices: the fields read from real-shaped invoices, and everything else refused."""
from __future__ import annotations

import hashlib
import re
import socket
from datetime import date
from pathlib import Path

import pytest

from backend.intake import IntakeError, InvoiceDraft, PartyRef, parse_ubl_invoice

UBL = Path(__file__).parent / "data" / "intake" / "ubl"
LIMIT = 1024 * 1024
BASE = (UBL / "invoice-base.xml").read_bytes()


def parse(data: bytes) -> InvoiceDraft:
    return parse_ubl_invoice(data, max_bytes=LIMIT)


def refusal(data: bytes, max_bytes: int = LIMIT) -> IntakeError:
    with pytest.raises(IntakeError) as caught:
        parse_ubl_invoice(data, max_bytes=max_bytes)
    return caught.value


def edited(old: str, new: str, document: bytes = BASE) -> bytes:
    assert document.count(old.encode()) == 1, f"{old!r} is not in the document exactly once"
    return document.replace(old.encode(), new.encode())


def without(element: str, document: bytes = BASE) -> bytes:
    """The document without the (only) element with this prefixed name and all it contains."""
    pattern = rf"\s*<{element}>.*?</{element}>".encode()
    assert len(re.findall(pattern, document, re.DOTALL)) == 1
    return re.sub(pattern, b"", document, flags=re.DOTALL)


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("invoice-base.xml", dict(
            invoice_number="AL-2024-0117", currency="EUR", amount_minor=1525000,
            issue_date=date(2024, 3, 4), due_date=date(2024, 4, 3),
            buyer=PartyRef(name="Fjordlys Energi AS", identifier="0192:987654325"),
            supplier=PartyRef(name="Rheinkraft Armaturen GmbH", identifier="0088:4000001123452"),
        )),
        ("invoice-due-date-in-payment-means.xml", dict(
            invoice_number="INV/2024/00042", currency="GBP", amount_minor=420000,
            issue_date=date(2024, 5, 31), due_date=date(2024, 6, 30),
            buyer=PartyRef(name="Pennine Rail Maintenance Ltd", identifier="0088:5012345678900"),
            supplier=PartyRef(name="Thameside Fasteners Ltd", identifier="9932:GB318845120"),
        )),
        ("invoice-allowances.xml", dict(  # allowances, a charge and a prepayment: payable is what is left
            invoice_number="2024-SE-5531", currency="EUR", amount_minor=623750,
            issue_date=date(2024, 2, 15), due_date=date(2024, 3, 16),
            buyer=PartyRef(name="Kattegat Shipping A/S", identifier="0088:7365432100004"),
            supplier=PartyRef(name="Vänerns Verkstad AB", identifier="0007:5567321707"),
        )),
        ("invoice-reverse-charge.xml", dict(  # buyer: trading name and company id, no endpoint
            invoice_number="RC-88172", currency="EUR", amount_minor=4800000,
            issue_date=date(2024, 7, 1), due_date=date(2024, 7, 31),
            buyer=PartyRef(name="Polder Techniek", identifier="0106:56781234"),
            supplier=PartyRef(name="Schwarzwald Präzision GmbH", identifier="9930:DE812345678"),
        )),
        ("invoice-kwd.xml", dict(  # three decimals; supplier identified by a company id without scheme
            invoice_number="KW-0009", currency="KWD", amount_minor=1250375,
            issue_date=date(2024, 9, 10), due_date=date(2024, 10, 10),
            buyer=PartyRef(name="Al Salmiya Desalination Co.", identifier="0088:6291234500005"),
            supplier=PartyRef(name="Gulf Pipe Fittings Co. W.L.L.", identifier="CR-401233"),
        )),
    ],
)
def test_invoices_read_into_drafts(file, expected):
    data = (UBL / file).read_bytes()
    assert parse(data) == InvoiceDraft(**expected, document_sha256=hashlib.sha256(data).hexdigest())


def test_the_digest_is_of_the_bytes_as_uploaded():
    reformatted = BASE.replace(b"\n", b"\r\n")
    assert parse(reformatted).document_sha256 == hashlib.sha256(reformatted).hexdigest() != parse(BASE).document_sha256


def test_a_credit_note_is_refused():
    error = refusal((UBL / "creditnote.xml").read_bytes())
    assert error.code == "not-an-invoice"
    assert "CreditNote" in error.detail


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"<Invoice><ID>1</ID></Invoice>", id="no-namespace"),
        pytest.param(b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"/>', id="cii"),
        pytest.param(b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>', id="ubl-order"),
    ],
)
def test_other_xml_is_not_an_invoice(data):
    assert refusal(data).code == "not-an-invoice"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"%PDF-1.7", id="not-xml"),
        pytest.param(BASE[:-30], id="truncated"),
        pytest.param(b'<?xml version="1.0" encoding="x-no-such-encoding"?><Invoice/>', id="unknown-encoding"),
    ],
)
def test_malformed_xml_is_refused(data):
    assert refusal(data).code == "malformed-xml"


def test_the_size_limit_is_inclusive():
    assert parse_ubl_invoice(BASE, max_bytes=len(BASE)).invoice_number == "AL-2024-0117"
    assert refusal(BASE, max_bytes=len(BASE) - 1).code == "too-large"


def test_due_date_prefers_cbc_due_date_over_payment_means():
    data = edited("<cbc:PaymentMeansCode name=\"Credit transfer\">30</cbc:PaymentMeansCode>",
                  "<cbc:PaymentMeansCode name=\"Credit transfer\">30</cbc:PaymentMeansCode><cbc:PaymentDueDate>2024-05-01</cbc:PaymentDueDate>")
    assert parse(data).due_date == date(2024, 4, 3)


def test_payment_means_due_dates_must_agree():
    document = (UBL / "invoice-due-date-in-payment-means.xml").read_bytes()
    second_means = "</cac:PaymentMeans><cac:PaymentMeans><cbc:PaymentMeansCode>49</cbc:PaymentMeansCode><cbc:PaymentDueDate>{}</cbc:PaymentDueDate></cac:PaymentMeans>"
    agreeing = edited("</cac:PaymentMeans>", second_means.format("2024-06-30"), document)
    assert parse(agreeing).due_date == date(2024, 6, 30)
    error = refusal(edited("</cac:PaymentMeans>", second_means.format("2024-07-15"), document))
    assert (error.code, error.detail) == ("conflicting-due-dates", "the payment means give different due dates (2024-06-30, 2024-07-15)")
    error = refusal(edited("</cac:PaymentMeans>", second_means.format("15/07/2024"), document))
    assert (error.code, error.detail) == ("bad-date", "cac:PaymentMeans/cbc:PaymentDueDate: '15/07/2024' is not a date written YYYY-MM-DD")


@pytest.mark.parametrize(
    ("data", "code", "detail"),
    [
        pytest.param(edited("<cbc:DueDate>2024-04-03</cbc:DueDate>", ""), "missing-field",
                     "no due date: neither cbc:DueDate nor cac:PaymentMeans/cbc:PaymentDueDate", id="no-due-date"),
        pytest.param(edited("<cbc:ID>AL-2024-0117</cbc:ID>", ""), "missing-field", "cbc:ID is missing or empty", id="no-id"),
        pytest.param(edited("<cbc:ID>AL-2024-0117</cbc:ID>", "<cbc:ID> </cbc:ID>"), "missing-field", "cbc:ID is missing or empty", id="blank-id"),
        pytest.param(edited("<cbc:IssueDate>2024-03-04</cbc:IssueDate>", ""), "missing-field", "cbc:IssueDate is missing or empty", id="no-issue-date"),
        pytest.param(edited("2024-03-04</cbc:IssueDate>", "04.03.2024</cbc:IssueDate>"), "bad-date",
                     "cbc:IssueDate: '04.03.2024' is not a date written YYYY-MM-DD", id="local-date-format"),
        pytest.param(edited("2024-04-03</cbc:DueDate>", "2024-02-31</cbc:DueDate>"), "bad-date",
                     "cbc:DueDate: 2024-02-31 is not a calendar date", id="no-such-day"),
        pytest.param(edited("2024-04-03</cbc:DueDate>", "2024-03-03</cbc:DueDate>"), "due-before-issue",
                     "the due date 2024-03-03 is before the issue date 2024-03-04", id="due-before-issue"),
        pytest.param(edited(">EUR</cbc:DocumentCurrencyCode>", ">XEU</cbc:DocumentCurrencyCode>"), "bad-currency",
                     "cbc:DocumentCurrencyCode: unknown currency code 'XEU' (an upper-case ISO 4217 code such as EUR)", id="unknown-currency"),
        pytest.param(edited('<cbc:PayableAmount currencyID="EUR">', '<cbc:PayableAmount currencyID="USD">'), "currency-mismatch",
                     "cac:LegalMonetaryTotal/cbc:PayableAmount is in USD, the document in EUR", id="payable-in-other-currency"),
        pytest.param(edited('<cbc:PayableAmount currencyID="EUR">', "<cbc:PayableAmount>"), "currency-mismatch",
                     "cac:LegalMonetaryTotal/cbc:PayableAmount is in no currency, the document in EUR", id="payable-without-currency"),
        pytest.param(without("cac:LegalMonetaryTotal"), "missing-field",
                     "cac:LegalMonetaryTotal/cbc:PayableAmount is missing or empty", id="no-monetary-total"),
        pytest.param(edited(">15250.00</cbc:PayableAmount>", ">0.00</cbc:PayableAmount>"), "bad-amount",
                     "cac:LegalMonetaryTotal/cbc:PayableAmount: amount must be a number greater than zero, not 0.00", id="zero"),
        pytest.param(edited(">15250.00</cbc:PayableAmount>", ">-15250.00</cbc:PayableAmount>"), "bad-amount",
                     "cac:LegalMonetaryTotal/cbc:PayableAmount: amount must be a number greater than zero, not -15250.00", id="negative"),
        pytest.param(edited(">15250.00</cbc:PayableAmount>", ">15250.005</cbc:PayableAmount>"), "bad-amount",
                     "cac:LegalMonetaryTotal/cbc:PayableAmount: EUR amounts have 2 decimals; 15250.005 has 3 (amounts are never rounded)",
                     id="sub-cent"),
        pytest.param(edited('<cbc:PayableAmount currencyID="EUR">15250.00', '<cbc:PayableAmount currencyID="KWD">15250.005'),
                     "currency-mismatch", "cac:LegalMonetaryTotal/cbc:PayableAmount is in KWD, the document in EUR",
                     id="mismatch-judged-before-decimals"),
        pytest.param(without("cac:AccountingCustomerParty"), "missing-field",
                     "cac:AccountingCustomerParty/cac:Party is missing", id="no-buyer"),
        pytest.param(without("cac:AccountingSupplierParty"), "missing-field",
                     "cac:AccountingSupplierParty/cac:Party is missing", id="no-supplier"),
    ],
)
def test_invalid_invoices_are_refused_naming_the_element(data, code, detail):
    error = refusal(data)
    assert (error.code, error.detail) == (code, detail)


def test_a_party_needs_a_name_or_an_identifier():
    document = (UBL / "invoice-kwd.xml").read_bytes()
    data = edited("<cbc:RegistrationName>Gulf Pipe Fittings Co. W.L.L.</cbc:RegistrationName>", "",
                  edited("<cbc:CompanyID>CR-401233</cbc:CompanyID>", "", document))
    error = refusal(data)
    assert (error.code, error.detail) == ("missing-field", "cac:AccountingSupplierParty/cac:Party has neither a name nor an identifier")


# ---------------------------------------------------------------------- hostile XML


@pytest.fixture
def listener():
    """A TCP port on 127.0.0.1 that records whether anything connected to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield server


def assert_never_contacted(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


INVOICE_OPEN = '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'


def test_billion_laughs_is_refused_unexpanded():
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">' for level in range(1, 10)
    )
    data = f'<?xml version="1.0"?><!DOCTYPE Invoice [{entities}]>{INVOICE_OPEN}<cbc:ID>&lol9;</cbc:ID></Invoice>'.encode()
    error = refusal(data)
    assert error.code == "xml-unsafe"
    assert "lollol" not in error.detail  # nothing was expanded


def test_an_external_file_entity_is_refused_unread(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the contents of a server file")
    data = (f'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY leak SYSTEM "{secret.as_uri()}">]>'
            f"{INVOICE_OPEN}<cbc:ID>&leak;</cbc:ID></Invoice>").encode()
    error = refusal(data)
    assert error.code == "xml-unsafe"
    assert "contents of a server file" not in error.detail


def test_an_external_url_entity_is_refused_unfetched(listener):
    port = listener.getsockname()[1]
    data = (f'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY remote SYSTEM "http://127.0.0.1:{port}/x">]>'
            f"{INVOICE_OPEN}<cbc:ID>&remote;</cbc:ID></Invoice>").encode()
    assert refusal(data).code == "xml-unsafe"
    assert_never_contacted(listener)


def test_an_external_dtd_subset_is_refused_unfetched(listener):
    port = listener.getsockname()[1]
    data = BASE.replace(b"<Invoice ", f'<!DOCTYPE Invoice SYSTEM "http://127.0.0.1:{port}/invoice.dtd">\n<Invoice '.encode(), 1)
    assert refusal(data).code == "xml-unsafe"
    assert_never_contacted(listener)


def test_an_external_parameter_entity_is_refused_unfetched(listener):
    port = listener.getsockname()[1]
    data = (f'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/evil.dtd"> %remote;]>'
            f"{INVOICE_OPEN}<cbc:ID>1</cbc:ID></Invoice>").encode()
    assert refusal(data).code == "xml-unsafe"
    assert_never_contacted(listener)


def test_any_doctype_is_refused_even_a_harmless_one():
    assert refusal(BASE.replace(b"<Invoice ", b"<!DOCTYPE Invoice>\n<Invoice ", 1)).code == "xml-unsafe"
