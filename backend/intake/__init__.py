"""Invoice intake: uploaded documents checked for form and read into `InvoiceDraft`s.

Three ways in, each pure (bytes in, drafts or `IntakeError` out; no HTTP, no database):
`check_pdf` for a PDF invoice (whose fields the uploader types in), `parse_invoice_csv` for a
bulk CSV, `parse_ubl_invoice` for a UBL 2.1 e-invoice.

Intake checks form only: formats, required fields, amounts exact in the currency's minor units,
the due date not before the issue date. Business rules (the counterparty is a participant, the
invoice is not a duplicate of one registered before, dates are not in the past) are the
services' job, applied to the drafts this returns.
"""
from backend.intake.csv_bulk import CsvResult, parse_invoice_csv
from backend.intake.drafts import InvoiceDraft, PartyRef
from backend.intake.errors import CsvIntakeError, IntakeError, RowError
from backend.intake.pdf import check_pdf
from backend.intake.ubl import parse_ubl_invoice

__all__ = [
    "CsvIntakeError",
    "CsvResult",
    "IntakeError",
    "InvoiceDraft",
    "PartyRef",
    "RowError",
    "check_pdf",
    "parse_invoice_csv",
    "parse_ubl_invoice",
]
