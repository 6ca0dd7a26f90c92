"""The invoice drafts intake produces, and the form rules every intake format shares.

Each check raises `IntakeError` whose detail does not name the field: the CSV parser puts the
column beside it in a `RowError`, the UBL parser prefixes the element's path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from backend import money
from backend.intake.errors import IntakeError

__all__ = ["InvoiceDraft", "PartyRef"]

MAX_INVOICE_NUMBER_LENGTH = 100  # the width of the invoices table's invoice_number column

# date.fromisoformat also takes "20240131" and week dates ("2024-W05-3"); invoices use one form.
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class PartyRef:
    """A party as the document names it; services resolve it to a participant."""

    name: str | None = None
    identifier: str | None = None  # "scheme:value" such as a PEPPOL endpoint "0088:7300010000001", or a company/VAT id
    address: str | None = None  # an on-chain address (EIP-55 checksummed), as CSV rows may name the buyer


@dataclass(frozen=True)
class InvoiceDraft:
    """An invoice whose form is checked, before any business rule is applied."""

    invoice_number: str
    currency: str  # ISO 4217
    amount_minor: int  # in the currency's minor units, as the ledger stores it
    issue_date: date
    due_date: date
    buyer: PartyRef
    supplier: PartyRef | None  # None for CSV rows: the supplier is whoever uploads the file
    document_sha256: str | None  # lowercase hex


def check_invoice_number(text: str) -> str:
    """The invoice number without surrounding whitespace (the ledger hashes it stripped)."""
    number = text.strip()
    if not number:
        raise IntakeError("missing-field", "the invoice number is empty")
    if not number.isprintable():
        raise IntakeError("bad-invoice-number", f"the invoice number {number!r} contains control characters")
    if len(number) > MAX_INVOICE_NUMBER_LENGTH:
        raise IntakeError(
            "bad-invoice-number",
            f"the invoice number has {len(number)} characters; at most {MAX_INVOICE_NUMBER_LENGTH} are allowed",
        )
    return number


def parse_iso_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD."""
    stripped = text.strip()
    if not _ISO_DATE.fullmatch(stripped):
        raise IntakeError("bad-date", f"{stripped!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(stripped)
    except ValueError:
        raise IntakeError("bad-date", f"{stripped} is not a calendar date") from None


def check_due_date(issue_date: date, due_date: date) -> None:
    if due_date < issue_date:
        raise IntakeError("due-before-issue", f"the due date {due_date} is before the issue date {issue_date}")


def check_currency(code: str) -> str:
    """An ISO 4217 code the platform knows the minor units of."""
    try:
        money.minor_unit_exponent(code)
    except money.AmountError as exc:
        raise IntakeError("bad-currency", str(exc)) from None
    return code


def amount_in_minor_units(text: str, currency: str) -> int:
    try:
        return money.to_minor_units(text, currency)
    except money.AmountError as exc:
        raise IntakeError("bad-amount", str(exc)) from None
