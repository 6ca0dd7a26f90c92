"""Why an upload was refused: a stable machine-readable code and a sentence for people.

Codes (the API and the portal key on them, so they only ever gain members):

| code | meaning |
|---|---|
| `too-large` | the upload is over the size limit |
| `not-a-pdf` | not a PDF, or one that cannot be read (bad header, truncated, corrupt) |
| `pdf-encrypted` | an encrypted PDF: the platform must be able to read what it anchors |
| `pdf-no-pages` | a PDF without a single page |
| `xml-unsafe` | XML with a DTD, entity declarations or external references |
| `malformed-xml` | not well-formed XML |
| `not-an-invoice` | well-formed XML that is not a UBL 2.1 Invoice (a CreditNote, another format) |
| `missing-field` | a required element or column value is absent |
| `bad-invoice-number`, `bad-date`, `bad-amount`, `bad-currency`, `bad-identifier`, `bad-digest` | a value of the wrong form |
| `due-before-issue` | the due date is before the issue date |
| `currency-mismatch` | the payable amount is in another currency than the document |
| `conflicting-due-dates` | a UBL invoice without `cbc:DueDate` whose payment means give different due dates |
| `not-utf8`, `empty-file`, `bad-csv`, `bad-header`, `too-many-rows` | a CSV file that cannot be read as a whole |
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

__all__ = ["CsvIntakeError", "IntakeError", "RowError", "row_error_fields"]


class IntakeError(ValueError):
    """An upload refused: `code` for programs, `detail` (also the message) for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def __reduce__(self):
        # Celery pickles a task's exception; the default would call cls(detail) and fail.
        return type(self), (self.code, self.detail)


@dataclass(frozen=True)
class RowError:
    """One problem in a CSV file: its row (the header is row 1) and column, if it has one."""

    row: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.column is None else f"row {self.row}, {self.column}"
        return f"{where}: {self.reason}"


class CsvIntakeError(IntakeError):
    """A CSV upload refused as a whole, with the row errors that locate why (empty when no row
    can be named, as for undecodable bytes)."""

    def __init__(self, code: str, detail: str, errors: Iterable[RowError] = ()) -> None:
        super().__init__(code, detail)
        self.errors = list(errors)

    def __reduce__(self):
        return type(self), (self.code, self.detail, self.errors)


def row_error_fields(errors: list[RowError]) -> dict[str, list[str]]:
    """Row errors as InvalidInput's field errors, dotted as the API names nested fields:
    `rows.<n>.<column>`, or `rows.<n>` for a problem with the row as a whole."""
    by_field: dict[str, list[str]] = {}
    for error in errors:
        field = f"rows.{error.row}" if error.column is None else f"rows.{error.row}.{error.column}"
        by_field.setdefault(field, []).append(error.reason)
    return by_field
