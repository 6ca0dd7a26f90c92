"""Bulk CSV uploads: header checks, every row's every problem with its row number, drafts otherwise."""
from __future__ import annotations

import pickle
from datetime import date
from pathlib import Path

import pytest

from backend.intake import CsvIntakeError, CsvResult, IntakeError, InvoiceDraft, PartyRef, RowError, parse_invoice_csv

DATA = Path(__file__).parent / "data" / "intake"
HEADER = "invoice_number,buyer,amount,currency,issue_date,due_date"
BUYER_ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example


def csv_file(*rows: str, header: str = HEADER) -> bytes:
    return "\r\n".join((header, *rows)).encode() + b"\r\n"


def row_errors(*rows: str, header: str = HEADER) -> list[RowError]:
    return parse_invoice_csv(csv_file(*rows, header=header)).errors


def refusal(data: bytes, **options) -> CsvIntakeError:
    with pytest.raises(CsvIntakeError) as caught:
        parse_invoice_csv(data, **options)
    return caught.value


def test_a_spreadsheet_export_reads_row_by_row():
    result = parse_invoice_csv((DATA / "invoices-excel-export.csv").read_bytes())
    assert result.drafts == [
        (2, InvoiceDraft(
            invoice_number="INV-1001",
            currency="EUR",
            amount_minor=125050,
            issue_date=date(2024, 3, 1),
            due_date=date(2024, 4, 30),
            buyer=PartyRef(name="Hafenwerk Logistik, Hamburg", address=BUYER_ADDRESS),
            supplier=None,
            document_sha256="754b687d2c6585e78213e440a9dc04a9e9eb7bbd98dad9e56b6f7a7d676e443b",
        )),
        # row 3 is blank
        (4, InvoiceDraft(
            invoice_number="INV-1002",
            currency="JPY",
            amount_minor=98000,
            issue_date=date(2024, 3, 2),
            due_date=date(2024, 3, 2),
            buyer=PartyRef(identifier="0088:7300010000001"),
            supplier=None,
            document_sha256=None,
        )),
        (5, InvoiceDraft(
            invoice_number="INV-1003",
            currency="KWD",
            amount_minor=15125,
            issue_date=date(2024, 3, 5),
            due_date=date(2024, 6, 3),
            buyer=PartyRef(name="Al Noor Trading\nBuilding 4", address="0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"),
            supplier=None,
            document_sha256=None,
        )),
    ]
    # Row 6 starts on the file's seventh line: rows count CSV records, not lines.
    assert result.errors == [RowError(6, "amount", "EUR amounts have 2 decimals; 12.345 has 3 (amounts are never rounded)")]


def test_header_names_ignore_case_spaces_and_order():
    data = csv_file("INV-1,EUR,9.99,2024-01-31,0088:7300010000001,2024-01-01",
                    header=" Invoice Number ,CURRENCY,Amount,due_date,BUYER,Issue  Date")
    ((row, draft),) = parse_invoice_csv(data).drafts
    assert (row, draft.invoice_number, draft.amount_minor, draft.issue_date, draft.due_date) == (
        2, "INV-1", 999, date(2024, 1, 1), date(2024, 1, 31))


def test_a_byte_order_mark_is_tolerated():
    result = parse_invoice_csv(b"\xef\xbb\xbf" + csv_file("INV-1,0088:1,5,EUR,2024-01-01,2024-02-01"))
    assert [draft.invoice_number for _, draft in result.drafts] == ["INV-1"]


def test_cells_and_currency_codes_are_normalised():
    ((_, draft),) = parse_invoice_csv(csv_file("  INV-7 , 0088:1 , 5.5 , eur ,2024-01-01 , 2024-02-01")).drafts
    assert (draft.invoice_number, draft.buyer, draft.currency, draft.amount_minor) == ("INV-7", PartyRef(identifier="0088:1"), "EUR", 550)


def test_a_header_only_file_has_no_drafts_and_no_errors():
    assert parse_invoice_csv(csv_file()) == parse_invoice_csv(csv_file("", ",,,,,")) == CsvResult(drafts=[], errors=[])


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_bytes_that_are_not_utf8_are_one_error_naming_the_line(bom):
    latin1 = csv_file("INV-1,0088:1,5,EUR,2024-01-01,2024-02-01", "INV-2,0088:1,5,EUR,2024-01-01,2024-02-01").replace(b"INV-2", b"INV\xe9-2")
    error = refusal(bom + latin1)
    assert error.code == "not-utf8"
    assert "byte 0xe9 on line 3" in error.detail


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf"])
def test_an_empty_file_is_refused(data):
    assert refusal(data).code == "empty-file"


def test_header_problems_are_all_named():
    error = refusal(csv_file(header="invoice_number,Buyer,amount,AMOUNT,currency,issue_date,total,"))
    assert error.code == "bad-header"
    assert error.errors == [
        RowError(1, "total", "unknown column (known: invoice_number, buyer, amount, currency, issue_date, due_date, document_sha256, buyer_name)"),
        RowError(1, None, "column 8 has no name"),
        RowError(1, "amount", "column appears more than once"),
        RowError(1, "due_date", "required column is missing"),
    ]
    assert "total" in error.detail and "due_date" in error.detail


def test_a_semicolon_separated_file_gets_a_hint():
    error = refusal(csv_file(header=HEADER.replace(",", ";")))
    assert error.code == "bad-header"
    assert "separated by commas" in error.errors[0].reason


def test_every_problem_of_a_row_is_reported():
    errors = row_errors("INV-1,0xnothex,10.005,EUR,2024-02-30,2024-01-01")
    assert errors == [
        RowError(2, "buyer", "'0xnothex' is not an address (0x and 40 hex digits)"),
        RowError(2, "amount", "EUR amounts have 2 decimals; 10.005 has 3 (amounts are never rounded)"),
        RowError(2, "issue_date", "2024-02-30 is not a calendar date"),
    ]


def test_missing_values_are_reported_per_column():
    errors = row_errors(",,,,,2024-01-01")
    assert [(error.row, error.column, error.reason) for error in errors] == [
        (2, column, "missing value") for column in ("invoice_number", "buyer", "currency", "amount", "issue_date")
    ]


def test_an_unknown_currency_still_reports_a_malformed_amount():
    errors = row_errors("INV-1,0088:1,12 500,XYZ,2024-01-01,2024-02-01")
    assert [(error.column, error.reason.split(" (")[0]) for error in errors] == [
        ("currency", "unknown currency code 'XYZ'"),
        ("amount", "'12 500' is not a decimal number"),
    ]


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        ("0", "EUR", "amount must be a number greater than zero, not 0"),
        ("-12.00", "EUR", "amount must be a number greater than zero, not -12.00"),
        ("1500.5", "JPY", "JPY amounts have no decimals; 1500.5 has 1 (amounts are never rounded)"),
        ("1.500", "EUR", "EUR amounts have 2 decimals; 1.500 has 3 (amounts are never rounded)"),
        ("1.0001", "BHD", "BHD amounts have 3 decimals; 1.0001 has 4 (amounts are never rounded)"),
        ("92233720368547758.08", "USD", "92233720368547758.08 USD is more than the ledger can hold (9223372036854775807 minor units)"),
    ],
)
def test_amounts_must_be_exact_positive_ledger_amounts(amount, currency, reason):
    assert row_errors(f"INV-1,0088:1,{amount},{currency},2024-01-01,2024-02-01") == [RowError(2, "amount", reason)]


@pytest.mark.parametrize("written", ["01/02/2024", "2024-1-5", "20240105", "2024-W05-3", "2024-01-05T00:00"])
def test_dates_are_iso_calendar_dates(written):
    (error,) = row_errors(f"INV-1,0088:1,5,EUR,{written},2024-12-31")
    assert (error.column, error.reason) == ("issue_date", f"{written!r} is not a date written YYYY-MM-DD")


def test_a_due_date_before_the_issue_date_is_a_due_date_error():
    assert row_errors("INV-1,0088:1,5,EUR,2024-03-01,2024-02-29") == [
        RowError(2, "due_date", "the due date 2024-02-29 is before the issue date 2024-03-01")
    ]


@pytest.mark.parametrize(
    ("buyer", "party"),
    [
        (BUYER_ADDRESS, PartyRef(address=BUYER_ADDRESS)),
        (BUYER_ADDRESS.lower(), PartyRef(address=BUYER_ADDRESS)),
        ("0x" + BUYER_ADDRESS[2:].upper(), PartyRef(address=BUYER_ADDRESS)),
        ("0088:7300010000001", PartyRef(identifier="0088:7300010000001")),
        ("VAT:DE298765431", PartyRef(identifier="VAT:DE298765431")),
    ],
)
def test_buyers_are_addresses_or_scheme_value_identifiers(buyer, party):
    ((_, draft),) = parse_invoice_csv(csv_file(f"INV-1,{buyer},5,EUR,2024-01-01,2024-02-01")).drafts
    assert draft.buyer == party


def test_a_mixed_case_address_with_a_wrong_checksum_is_refused():
    mistyped = BUYER_ADDRESS.replace("aA", "Aa", 1)
    (error,) = row_errors(f"INV-1,{mistyped},5,EUR,2024-01-01,2024-02-01")
    assert (error.column, error.reason) == ("buyer", f"{mistyped} fails its EIP-55 checksum: a mistyped address?")


@pytest.mark.parametrize("buyer", ["Hafenwerk GmbH", "0088:", ":7300010000001", "0088 :7300010000001", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"])
def test_other_buyers_are_refused(buyer):
    (error,) = row_errors(f'INV-1,"{buyer}",5,EUR,2024-01-01,2024-02-01')
    assert error.column == "buyer"


def test_document_digests_are_checked_and_lowercased():
    header = HEADER + ",document_sha256"
    result = parse_invoice_csv(csv_file(
        "INV-1,0088:1,5,EUR,2024-01-01,2024-02-01," + "AB" * 32,
        "INV-2,0088:1,5,EUR,2024-01-01,2024-02-01,abc123",
        "INV-3,0088:1,5,EUR,2024-01-01,2024-02-01,",
        header=header,
    ))
    assert [(row, draft.document_sha256) for row, draft in result.drafts] == [(2, "ab" * 32), (4, None)]
    assert result.errors == [RowError(3, "document_sha256", "'abc123' is not a SHA-256 digest (64 hex digits)")]


def test_a_repeated_invoice_number_is_an_error_on_its_second_row():
    result = parse_invoice_csv(csv_file(
        "INV-1,0088:1,5,EUR,2024-01-01,2024-02-01",
        "INV-2,0088:1,5,EUR,2024-01-01,2024-02-01",
        " INV-1 ,0088:2,7,EUR,2024-01-01,2024-02-01",
    ))
    assert [row for row, _ in result.drafts] == [2, 3]
    assert result.errors == [RowError(4, "invoice_number", "invoice number 'INV-1' is already on row 2")]


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ('"INV\t1"', "the invoice number 'INV\\t1' contains control characters"),
        ("N" * 101, "the invoice number has 101 characters; at most 100 are allowed"),
    ],
)
def test_invoice_numbers_are_printable_and_at_most_100_characters(number, reason):
    (error,) = row_errors(f"{number},0088:1,5,EUR,2024-01-01,2024-02-01")
    assert (error.column, error.reason) == ("invoice_number", reason)
    ((_, draft),) = parse_invoice_csv(csv_file(f"{'N' * 100},0088:1,5,EUR,2024-01-01,2024-02-01")).drafts
    assert draft.invoice_number == "N" * 100


@pytest.mark.parametrize("row", ["INV-1,0088:1,5,EUR,2024-01-01", "INV-1,0088:1,5,EUR,2024-01-01,2024-02-01,extra"])
def test_a_row_with_the_wrong_number_of_cells_is_one_error(row):
    cells = row.count(",") + 1
    assert row_errors(row) == [RowError(2, None, f"{cells} cells where the header has 6")]


def test_blank_rows_are_skipped_but_counted():
    result = parse_invoice_csv(csv_file("", ",,,,,", "INV-1,0088:1,5,EUR,2024-01-01,2024-02-01", "  ,  , , , ,", "INV-2,0088:1,x,EUR,2024-01-01,2024-02-01"))
    assert [row for row, _ in result.drafts] == [4]
    assert [error.row for error in result.errors] == [6]


def test_too_many_rows_is_one_error():
    rows = [f"INV-{n},0088:1,5,EUR,2024-01-01,2024-02-01" for n in range(3)]
    assert len(parse_invoice_csv(csv_file(*rows[:2], ""), max_rows=2).drafts) == 2
    error = refusal(csv_file(*rows), max_rows=2)
    assert error.code == "too-many-rows"
    assert "more than 2" in error.detail


def test_broken_quoting_is_refused_with_its_row():
    error = refusal(csv_file("INV-1,0088:1,5,EUR,2024-01-01,2024-02-01", '"INV-2,0088:1,5,EUR,2024-01-01,2024-02-01'))
    assert error.code == "bad-csv"
    assert [error.row for error in error.errors] == [3]


def test_intake_errors_survive_pickling_as_celery_sends_them():
    error = CsvIntakeError("invalid-rows", "2 rows are wrong", [RowError(2, "amount", "missing value"), RowError(5, None, "3 cells")])
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, copy.detail, copy.errors) == (CsvIntakeError, error.code, error.detail, error.errors)
    plain = pickle.loads(pickle.dumps(IntakeError("too-large", "the XML is 9 bytes")))
    assert (plain.code, str(plain)) == ("too-large", "the XML is 9 bytes")
