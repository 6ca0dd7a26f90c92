"""A sanctions or watch list as CSV, as the operator uploads it (issue 6 §4).

UTF-8 (a byte-order mark is fine), comma-separated, row 1 the header; columns in any order,
matched ignoring case and surrounding spaces:

| column | required | value |
|---|---|---|
| `reference` | yes | the list's own id of the entry, unique within the file, at most 100 characters |
| `name` | one of the two | an organisation's or person's name, at most 300 characters |
| `address` | one of the two | a ledger address (0x…) or a postal address, at most 300 characters |

Blank rows are skipped. A file that cannot be read as a whole raises CsvIntakeError; a row of the
wrong form is a RowError, every one reported (loading a list is all or nothing).
"""
from __future__ import annotations

from dataclasses import dataclass

from backend.intake.csv_bulk import csv_records, decode_csv
from backend.intake.errors import CsvIntakeError, RowError

__all__ = ["MAX_ENTRIES", "WATCH_LIST_COLUMNS", "WatchListRow", "parse_watch_list_csv"]

WATCH_LIST_COLUMNS = ("reference", "name", "address")
MAX_ENTRIES = 100_000
MAX_REFERENCE = 100
MAX_TEXT = 300


@dataclass(frozen=True)
class WatchListRow:
    reference: str
    name: str | None
    address: str | None


def parse_watch_list_csv(data: bytes) -> tuple[list[WatchListRow], list[RowError]]:
    """The entries of a watch-list file and the problems of its rows."""
    records = csv_records(decode_csv(data))
    header = next(records, None)
    if header is None:
        raise CsvIntakeError("empty-file", "the file is empty; row 1 must be the header")
    columns = [cell.strip().lower() for cell in header[1]]
    problems = [RowError(1, column, "required column is missing") for column in ("reference",)
                if column not in columns]
    problems += [RowError(1, cell, f"unknown column (known: {', '.join(WATCH_LIST_COLUMNS)})")
                 for cell in columns if cell not in WATCH_LIST_COLUMNS]
    problems += [RowError(1, column, "column appears more than once")
                 for column in dict.fromkeys(column for column in columns if columns.count(column) > 1)]
    if not {"name", "address"} & set(columns):
        problems.append(RowError(1, "name", "a name or an address column is needed"))
    if problems:
        raise CsvIntakeError("bad-header", "the header row is wrong: " + "; ".join(map(str, problems)), problems)

    entries: list[WatchListRow] = []
    errors: list[RowError] = []
    first_row_of: dict[str, int] = {}
    for row, cells in records:
        if not any(cell.strip() for cell in cells):
            continue
        if len(entries) + len(errors) >= MAX_ENTRIES:
            raise CsvIntakeError("too-many-rows", f"the file has more than {MAX_ENTRIES} entries; split the list")
        if len(cells) != len(columns):
            errors.append(RowError(row, None, f"{len(cells)} cells where the header has {len(columns)}"))
            continue
        values = {column: cell.strip() for column, cell in zip(columns, cells)}
        reference, name, address = values["reference"], values.get("name") or None, values.get("address") or None
        row_errors = []
        if not reference:
            row_errors.append(RowError(row, "reference", "required"))
        elif len(reference) > MAX_REFERENCE:
            row_errors.append(RowError(row, "reference", f"at most {MAX_REFERENCE} characters"))
        elif reference in first_row_of:
            row_errors.append(RowError(row, "reference", f"also on row {first_row_of[reference]}"))
        if name is None and address is None:
            row_errors.append(RowError(row, None, "a name or an address is needed"))
        for column, value in (("name", name), ("address", address)):
            if value is not None and len(value) > MAX_TEXT:
                row_errors.append(RowError(row, column, f"at most {MAX_TEXT} characters"))
        if row_errors:
            errors.extend(row_errors)
            continue
        first_row_of[reference] = row
        entries.append(WatchListRow(reference, name, address))
    return entries, errors
