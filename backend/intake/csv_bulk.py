"""Bulk invoice upload as CSV: one invoice per row, for suppliers without an e-invoicing system.

The file: UTF-8 (a byte-order mark is fine), comma-separated, quoted as spreadsheets export it.
Row 1 is the header; rows are counted as a spreadsheet shows them, one per CSV record (a quoted
cell may span lines), blank ones included, so the first data row is row 2. Blank rows (empty,
or only empty cells) are skipped.

Columns, in any order, their names matched ignoring case, surrounding spaces, and with inner
spaces read as underscores ("Invoice Number" is `invoice_number`):

| column | required | value |
|---|---|---|
| `invoice_number` | yes | unique within the file, at most 100 characters |
| `buyer` | yes | the buyer's on-chain address (0x…, EIP-55 checksum checked when mixed case) or a `scheme:value` identifier (`0088:7300010000001`) |
| `amount` | yes | plain decimal, at most the currency's decimals (`1250.50`) |
| `currency` | yes | ISO 4217 code, any case |
| `issue_date`, `due_date` | yes | YYYY-MM-DD, due not before issue |
| `document_sha256` | no | hex SHA-256 of the invoice document uploaded separately |
| `buyer_name` | no | the buyer's name as the supplier knows it |

A file that cannot be read as a whole (not UTF-8, empty, broken quoting, a bad header, more
rows than `max_rows`) raises `CsvIntakeError`. Otherwise every row is either a draft or one or
more `RowError`s, all of a row's problems reported together, and the caller chooses the mode:

- all or nothing: if `result.errors` is not empty, refuse the file, for instance by raising
  `CsvIntakeError("invalid-rows", ..., result.errors)`, and register nothing;
- valid rows only: register `result.drafts` and report `result.errors` back to the uploader.

Only form is checked here. Business rules, such as whether the buyer is a participant, whether
an invoice number was registered before, or whether a due date is already past, are the
services' to apply.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re
from typing import Callable, Iterator, TypeVar

from eth_utils import is_checksum_address, to_checksum_address

from backend import money
from backend.intake.drafts import (
    InvoiceDraft,
    PartyRef,
    amount_in_minor_units,
    check_currency,
    check_due_date,
    check_invoice_number,
    parse_iso_date,
)
from backend.intake.errors import CsvIntakeError, IntakeError, RowError

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "CsvResult", "csv_records", "decode_csv", "parse_invoice_csv"]

REQUIRED_COLUMNS = ("invoice_number", "buyer", "amount", "currency", "issue_date", "due_date")
OPTIONAL_COLUMNS = ("document_sha256", "buyer_name")

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_IDENTIFIER = re.compile(r"[0-9A-Za-z]+:\S+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

_Value = TypeVar("_Value")


@dataclasses.dataclass(frozen=True)
class CsvResult:
    drafts: list[tuple[int, InvoiceDraft]]  # (row number, draft)
    errors: list[RowError]


# A file may carry a day's invoices of a large supplier (10,000 rows is about 1 MB, well inside
# the request size limit); beyond that, split it.
MAX_ROWS = 10_000


def parse_invoice_csv(data: bytes, *, max_rows: int = MAX_ROWS) -> CsvResult:
    """The drafts and row errors of a CSV upload of at most `max_rows` invoice rows."""
    records = csv_records(decode_csv(data))
    header = next(records, None)
    if header is None:
        raise CsvIntakeError("empty-file", "the file is empty; row 1 must be the header")
    columns = _check_header(header[1])
    drafts: list[tuple[int, InvoiceDraft]] = []
    errors: list[RowError] = []
    first_row_of: dict[str, int] = {}  # invoice number -> the row it first appeared on
    invoice_rows = 0
    for row, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        invoice_rows += 1
        if invoice_rows > max_rows:
            raise CsvIntakeError("too-many-rows", f"the file has more than {max_rows} invoice rows; split it")
        if len(cells) != len(columns):
            errors.append(RowError(row, None, f"{len(cells)} cells where the header has {len(columns)}"))
            continue
        values = {column: cell.strip() for column, cell in zip(columns, cells)}
        draft, row_errors = _parse_row(row, values, first_row_of)
        if draft is None:
            errors.extend(row_errors)
        else:
            drafts.append((row, draft))
    return CsvResult(drafts=drafts, errors=errors)


def decode_csv(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        undecoded = exc.object  # without the byte-order mark, which exc.start does not count
        line = undecoded.count(b"\n", 0, exc.start) + 1
        raise CsvIntakeError(
            "not-utf8",
            f"the file is not UTF-8 text: byte 0x{undecoded[exc.start]:02x} on line {line} cannot be decoded "
            "(save it as 'CSV UTF-8')",
        ) from None


def csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for each CSV record, the header being row 1."""
    # strict: an unbalanced quote is an error, not a cell that silently swallows the rows after it.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    while True:
        row += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = RowError(row, None, str(exc))
            raise CsvIntakeError("bad-csv", f"row {row} cannot be read as CSV: {exc}", [problem]) from None
        yield row, cells


def _check_header(cells: list[str]) -> list[str]:
    """The canonical column names in file order, or CsvIntakeError naming every problem."""
    columns = [re.sub(r"\s+", "_", cell.strip().lower()) for cell in cells]
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    problems: list[RowError] = []
    for position, (cell, column) in enumerate(zip(cells, columns), start=1):
        if not column:
            problems.append(RowError(1, None, f"column {position} has no name"))
        elif column not in known:
            hint = "; the columns must be separated by commas" if re.search(r"[;\t]", cell) else ""
            problems.append(RowError(1, cell.strip(), f"unknown column (known: {', '.join(known)}){hint}"))
    for column in dict.fromkeys(column for column in columns if column and columns.count(column) > 1):
        problems.append(RowError(1, column, "column appears more than once"))
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            problems.append(RowError(1, column, "required column is missing"))
    if problems:
        raise CsvIntakeError("bad-header", "the header row is wrong: " + "; ".join(map(str, problems)), problems)
    return columns


def _parse_row(
    row: int, values: dict[str, str], first_row_of: dict[str, int]
) -> tuple[InvoiceDraft | None, list[RowError]]:
    errors: list[RowError] = []

    def read(column: str, parse: Callable[[str], _Value]) -> _Value | None:
        """The parsed value of a column, or None with its problem recorded."""
        text = values[column]
        if not text:
            errors.append(RowError(row, column, "missing value"))
            return None
        try:
            return parse(text)
        except IntakeError as exc:
            errors.append(RowError(row, column, exc.detail))
            return None

    invoice_number = read("invoice_number", check_invoice_number)
    buyer = read("buyer", _parse_buyer)
    currency = read("currency", lambda text: check_currency(text.upper()))
    amount_minor = read("amount", lambda text: _amount_minor(text, currency))
    issue_date = read("issue_date", parse_iso_date)
    due_date = read("due_date", parse_iso_date)
    if issue_date is not None and due_date is not None:
        try:
            check_due_date(issue_date, due_date)
        except IntakeError as exc:
            errors.append(RowError(row, "due_date", exc.detail))
    document_sha256 = None
    if values.get("document_sha256"):
        document_sha256 = read("document_sha256", _check_sha256)
    if invoice_number is not None:
        if invoice_number in first_row_of:
            first = first_row_of[invoice_number]
            errors.append(RowError(row, "invoice_number", f"invoice number {invoice_number!r} is already on row {first}"))
        else:
            first_row_of[invoice_number] = row
    if errors:
        return None, errors
    if values.get("buyer_name"):
        buyer = dataclasses.replace(buyer, name=values["buyer_name"])
    return InvoiceDraft(
        invoice_number=invoice_number,
        currency=currency,
        amount_minor=amount_minor,
        issue_date=issue_date,
        due_date=due_date,
        buyer=buyer,
        supplier=None,
        document_sha256=document_sha256,
    ), []


def _parse_buyer(text: str) -> PartyRef:
    if text[:2].lower() == "0x":
        if not _ADDRESS.fullmatch(text):
            raise IntakeError("bad-identifier", f"{text!r} is not an address (0x and 40 hex digits)")
        digits = text[2:]
        if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(text):
            raise IntakeError("bad-identifier", f"{text} fails its EIP-55 checksum: a mistyped address?")
        return PartyRef(address=to_checksum_address(text))
    if not (_IDENTIFIER.fullmatch(text) and text.isprintable()):
        raise IntakeError(
            "bad-identifier",
            f"{text!r} is neither a 0x address nor a scheme:value identifier (such as 0088:7300010000001)",
        )
    return PartyRef(identifier=text)


def _amount_minor(text: str, currency: str | None) -> int | None:
    """Minor units of a valid currency; with the currency in error, the amount's own form is
    still checked, so the row reports both."""
    if currency is not None:
        return amount_in_minor_units(text, currency)
    try:
        money.parse_amount(text)
    except money.AmountError as exc:
        raise IntakeError("bad-amount", str(exc)) from None
    return None


def _check_sha256(text: str) -> str:
    if not _SHA256.fullmatch(text):
        raise IntakeError("bad-digest", f"{text!r} is not a SHA-256 digest (64 hex digits)")
    return text.lower()
