"""Registering invoices: from a form (JSON), an uploaded PDF, a UBL 2.1 e-invoice, or a bulk CSV.

`backend.intake` has checked the form of what arrives; every way in then meets the same
business rules, those the ledger's `ReceivableRegistry.register` enforces and a few it cannot
see:

- the supplier is the actor's organisation, an active supplier onboarded on the ledger;
- the buyer is another active, onboarded organisation with the buyer role;
- the due date is after the issue date and after today (the ledger refuses a receivable whose
  due date, read as 00:00 UTC, has come);
- the supplier has not registered the same invoice number to the same buyer before (the
  ledger derives the receivable id from the three, so it would refuse it too): `Duplicate`,
  before anything is queued;
- a document named by its SHA-256 is one this supplier uploaded.

The ledger anchors a document's SHA-256 for every receivable and refuses none. An invoice
registered without a document (a form or a CSV row that names none) therefore gets one: its
statement, the terms the supplier stated as canonical JSON, stored like any upload, so the
anchored hash always names bytes the platform can show.

Each registration writes the pending `Invoice` (its receivable id computed as the ledger will),
its document, the outbox row and the audit entry in one database transaction. A single invoice
is one `register(registration)`; a CSV upload is one `registerBatch` per 100 invoices.
"""
from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import select

from backend import money
from backend.chain.client import invoice_number_hash, ledger_date, receivable_id, registration
from backend.extensions import db
from backend.intake import CsvIntakeError, IntakeError, InvoiceDraft, PartyRef, RowError, check_pdf
from backend.intake import parse_invoice_csv, parse_ubl_invoice
from backend.intake.drafts import check_currency, check_due_date, check_invoice_number
from backend.intake.errors import row_error_fields
from backend.models import (
    ContractName,
    Document,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    Organisation,
    Role,
    utcnow,
)
from backend.services import audit, outbox
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput
from backend.services.invoices import BATCH_SUBJECT, document_store, receivable_hex, snapshot
from backend.services.organisations import (
    find_organisation,
    organisation_by_address,
    organisation_by_legal_identifier,
    participant_problem,
    require_participant,
)
from backend.services.permissions import Action, authorize
from backend.services.transaction import atomic

# ReceivableRegistry.registerBatch takes any number, but a block does not: 100 registrations
# is well inside a block's gas, and a failed batch takes no more than 100 invoices with it.
REGISTER_BATCH_SIZE = 100
# Values per IN (...) when a file's rows are looked up together; well inside every database's
# limit on bound parameters.
LOOKUP_CHUNK = 500
PDF_MEDIA_TYPE = "application/pdf"
UBL_MEDIA_TYPE = "application/xml"
STATEMENT_MEDIA_TYPE = "application/json"
# Names the statement format inside each statement, so a later format cannot be mistaken for it.
STATEMENT_FORMAT = "anchorline-invoice-statement/1"
MAX_FILENAME_LENGTH = 255
# The ledger keeps dates as unsigned seconds since the Unix epoch.
LEDGER_EPOCH = date(1970, 1, 1)


class CsvMode(enum.StrEnum):
    """What a CSV upload with bad rows does: refuse the whole file, or register the good rows."""

    ALL_OR_NOTHING = "all-or-nothing"
    VALID_ROWS_ONLY = "valid-rows-only"


@dataclass(frozen=True)
class CsvRegistration:
    """What a CSV upload registered, and the rows it did not (valid-rows-only mode)."""

    invoices: list[Invoice]
    errors: list[RowError]


@dataclass(frozen=True)
class _Upload:
    """A document that arrives with its registration."""

    data: bytes
    media_type: str
    filename: str | None


@dataclass(frozen=True)
class _Accepted:
    """A draft that passed every business rule, with its buyer found."""

    draft: InvoiceDraft
    buyer: Organisation


def utc_today() -> date:
    """Today in UTC, the calendar the ledger's due dates are read in (a test sets it)."""
    return utcnow().date()


# ---------------------------------------------------------------- the four ways in


@atomic
def register_invoice(
    actor: Actor,
    *,
    invoice_number: str,
    buyer: int | str,
    amount: Decimal | str,
    currency: str,
    issue_date: date,
    due_date: date,
    document_sha256: str | None = None,
) -> Invoice:
    """Registers an invoice typed into a form; `buyer` is an organisation id, ledger address or
    legal identifier, `amount` a decimal amount of `currency`."""
    supplier = _registering_supplier(actor)
    errors: dict[str, list[str]] = {}
    digest = _digest(errors, document_sha256)
    draft = _form_draft(errors, invoice_number=invoice_number, buyer=buyer, amount=amount, currency=currency,
                        issue_date=issue_date, due_date=due_date, document_sha256=digest)
    _raise_if_any(errors)
    accepted = _accept(supplier, draft, find_organisation(buyer), uploaded=False)
    return _register_single(actor, supplier, accepted, InvoiceSource.API, upload=None)


@atomic
def register_pdf_invoice(
    actor: Actor,
    pdf: bytes,
    *,
    filename: str | None,
    invoice_number: str,
    buyer: int | str,
    amount: Decimal | str,
    currency: str,
    issue_date: date,
    due_date: date,
) -> Invoice:
    """Registers an invoice from its PDF and the terms typed beside it; the PDF is its document."""
    supplier = _registering_supplier(actor)
    errors: dict[str, list[str]] = {}
    try:
        check_pdf(pdf, current_app.config["MAX_CONTENT_LENGTH"])
    except IntakeError as exc:
        errors["file"] = [exc.detail]
    draft = _form_draft(errors, invoice_number=invoice_number, buyer=buyer, amount=amount, currency=currency,
                        issue_date=issue_date, due_date=due_date, document_sha256=hashlib.sha256(pdf).hexdigest())
    _raise_if_any(errors)
    accepted = _accept(supplier, draft, find_organisation(buyer), uploaded=True)
    return _register_single(actor, supplier, accepted, InvoiceSource.PDF,
                            upload=_Upload(pdf, PDF_MEDIA_TYPE, filename))


@atomic
def register_ubl_invoice(actor: Actor, xml: bytes, *, filename: str | None = None) -> Invoice:
    """Registers a UBL 2.1 invoice, which is its own document. Its supplier must be the actor's
    organisation and its buyer a participant, both named by their legal identifiers."""
    supplier = _registering_supplier(actor)
    try:
        draft = parse_ubl_invoice(xml, max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
    except IntakeError as exc:
        raise InvalidInput(f"not a UBL 2.1 invoice Anchorline can read: {exc.detail}",
                           errors={"file": [exc.detail]}) from None
    named = draft.supplier.identifier if draft.supplier else None
    if named != supplier.legal_identifier:
        message = (f"the invoice's supplier is {named or 'not identified'}; it must be your organisation "
                   f"({supplier.legal_identifier})")
        raise InvalidInput(message, errors={"supplier": [message]})
    accepted = _accept(supplier, draft, _party_organisation(draft.buyer), uploaded=True)
    return _register_single(actor, supplier, accepted, InvoiceSource.UBL,
                            upload=_Upload(xml, UBL_MEDIA_TYPE, filename))


def read_ubl_terms(actor: Actor, xml: bytes) -> InvoiceDraft:
    """The terms a UBL 2.1 invoice states, read without registering anything: the portal fills
    its upload form with them, for the supplier to check beside the invoice's PDF."""
    authorize(actor, Action.REGISTER_INVOICE)
    try:
        return parse_ubl_invoice(xml, max_bytes=current_app.config["MAX_CONTENT_LENGTH"])
    except IntakeError as exc:
        raise InvalidInput(f"not a UBL 2.1 invoice Anchorline can read: {exc.detail}",
                           errors={"ubl": [exc.detail]}) from None


@atomic
def register_csv_invoices(actor: Actor, data: bytes, *, mode: CsvMode) -> CsvRegistration:
    """Registers the invoices of a bulk CSV file (format: `backend.intake.csv_bulk`).

    A row that breaks a business rule is a row error like a row of the wrong form. In
    all-or-nothing mode any row error refuses the file, listing every one; in valid-rows-only
    mode the good rows are registered and the bad ones reported. A file without a good row is
    refused either way.
    """
    supplier = _registering_supplier(actor)
    try:
        parsed = parse_invoice_csv(data)
    except CsvIntakeError as exc:
        raise InvalidInput(exc.detail, errors=row_error_fields(exc.errors) or {"file": [exc.detail]}) from None
    row_errors = list(parsed.errors)
    checked: list[tuple[int, _Accepted]] = []
    buyers: dict[PartyRef, Organisation | None] = {}  # a file bills few buyers, each on many rows
    for row, draft in parsed.drafts:
        if draft.buyer not in buyers:
            buyers[draft.buyer] = _party_organisation(draft.buyer)
        try:
            checked.append((row, _accept(supplier, draft, buyers[draft.buyer], uploaded=False, duplicates=False)))
        except InvalidInput as exc:
            row_errors.extend(RowError(row, field, message) for field, messages in exc.errors.items()
                              for message in messages)
    registered = _registered_numbers(supplier, [entry for _, entry in checked])
    accepted: list[_Accepted] = []
    for row, entry in checked:
        existing = registered.get((entry.buyer.id, _number_hash(entry.draft)))
        if existing is None:
            accepted.append(entry)
        else:
            row_errors.append(RowError(row, "invoice_number", _duplicate(entry, existing).detail))
    row_errors.sort(key=lambda error: error.row)
    if not accepted or (row_errors and mode == CsvMode.ALL_OR_NOTHING):
        detail = (f"{len({error.row for error in row_errors})} row(s) have errors; nothing was registered"
                  if row_errors else "the file has no invoice rows")
        raise InvalidInput(detail, errors=row_error_fields(row_errors) or {"file": [detail]})

    with db.session.no_autoflush:  # one flush for the whole file, not one per query on the way
        documents = _csv_documents(supplier, accepted)
        invoices = [_new_invoice(supplier, entry, InvoiceSource.CSV, document)
                    for entry, document in zip(accepted, documents)]
    db.session.flush()
    for invoice in invoices:
        audit.record(actor, Action.REGISTER_INVOICE, "invoice", invoice.id, after=snapshot(invoice))
    for batch in _batches(invoices):
        outbox.enqueue(
            intent_key=f"{BATCH_SUBJECT}:{batch[0].id}-{batch[-1].id}:register",
            signer=supplier,
            contract=ContractName.RECEIVABLE_REGISTRY,
            function="registerBatch",
            args=[[_registration_args(invoice) for invoice in batch]],
            subject_type=BATCH_SUBJECT,
            subject_id=batch[0].id,
        )
    return CsvRegistration(invoices=invoices, errors=row_errors)


# ---------------------------------------------------------------- the checks


def _registering_supplier(actor: Actor) -> Organisation:
    """The actor's organisation, once it may register invoices and the ledger knows it."""
    authorize(actor, Action.REGISTER_INVOICE)
    require_participant(actor.organisation)
    return actor.organisation


def _form_draft(
    errors: dict[str, list[str]],
    *,
    invoice_number: str,
    buyer: int | str,
    amount: Decimal | str,
    currency: str,
    issue_date: date,
    due_date: date,
    document_sha256: str | None,
) -> InvoiceDraft | None:
    """The draft of terms typed into a form, checked as intake checks a file's, or None with
    each field's problem added to `errors`."""
    number = _checked(errors, "invoice_number", check_invoice_number, invoice_number)
    code = _checked(errors, "currency", check_currency, currency.strip().upper())
    minor = None
    if code is not None:
        try:
            minor = money.to_minor_units(amount, code)
        except money.AmountError as exc:
            errors["amount"] = [str(exc)]
    _checked(errors, "due_date", check_due_date, issue_date, due_date)
    if errors:
        return None
    return InvoiceDraft(invoice_number=number, currency=code, amount_minor=minor, issue_date=issue_date,
                        due_date=due_date, buyer=PartyRef(identifier=str(buyer)), supplier=None,
                        document_sha256=document_sha256)


def _checked(errors: dict[str, list[str]], field: str, check: Callable[..., Any], *args: Any) -> Any:
    """`check(*args)`, or None with its IntakeError's detail recorded under `field`."""
    try:
        return check(*args)
    except IntakeError as exc:
        errors[field] = [exc.detail]
        return None


def _digest(errors: dict[str, list[str]], document_sha256: str | None) -> str | None:
    """A SHA-256 as documents are stored under it (64 lowercase hex digits)."""
    if document_sha256 is None:
        return None
    digest = document_sha256.strip().lower()
    if len(digest) != 64 or any(character not in "0123456789abcdef" for character in digest):
        errors["document_sha256"] = [f"{document_sha256!r} is not a SHA-256 digest (64 hex digits)"]
    return digest


def _raise_if_any(errors: dict[str, list[str]]) -> None:
    if errors:
        raise InvalidInput("the invoice has invalid fields: " + ", ".join(sorted(errors)), errors=errors)


def _party_organisation(party: PartyRef) -> Organisation | None:
    """The participant a document names: by ledger address or exact legal identifier (a number
    in a document is an identifier, never one of Anchorline's row ids)."""
    if party.address is not None:
        return organisation_by_address(party.address)
    if party.identifier is None:
        return None
    return organisation_by_legal_identifier(party.identifier)


def _accept(supplier: Organisation, draft: InvoiceDraft, buyer: Organisation | None, *, uploaded: bool,
            duplicates: bool = True) -> _Accepted:
    """The draft once every business rule holds; InvalidInput naming each broken one by field,
    or Duplicate. `uploaded`: its document arrives with it (else it names one or none).
    `duplicates` False leaves the check for an earlier registration to the caller (a CSV file
    checks all its rows in a few queries: `_registered_numbers`)."""
    errors: dict[str, list[str]] = {}
    reference = draft.buyer.address or draft.buyer.identifier or draft.buyer.name
    problem = participant_problem(buyer, Role.BUYER, reference)
    if problem is None and buyer.id == supplier.id:
        problem = "an organisation cannot invoice itself"
    if problem is not None:
        errors["buyer"] = [problem]
    if draft.issue_date < LEDGER_EPOCH:
        errors["issue_date"] = [f"the ledger counts dates from {LEDGER_EPOCH}; {draft.issue_date} is before"]
    if draft.due_date <= draft.issue_date:
        errors.setdefault("due_date", []).append(
            f"the due date {draft.due_date} must be after the issue date {draft.issue_date}")
    today = utc_today()
    if draft.due_date <= today:
        errors.setdefault("due_date", []).append(
            f"the due date {draft.due_date} is not after today ({today}, UTC): the ledger registers "
            "only invoices not yet due")
    if not uploaded and draft.document_sha256 is not None:
        document = db.session.get(Document, draft.document_sha256)
        if document is None or document.uploaded_by_id != supplier.id:
            errors["document_sha256"] = [f"{supplier.name} has uploaded no document with this SHA-256"]
    _raise_if_any(errors)
    accepted = _Accepted(draft=draft, buyer=buyer)
    if duplicates:
        existing = _registered_numbers(supplier, [accepted]).get((buyer.id, _number_hash(draft)))
        if existing is not None:
            raise _duplicate(accepted, existing)
    return accepted


def _registered_numbers(supplier: Organisation, accepted: list[_Accepted]) -> dict[tuple[int, str], int]:
    """The supplier's invoices that already bear one of `accepted`'s invoice numbers, as
    (buyer id, invoice number hash) -> invoice id; the ledger would refuse those again."""
    hashes = sorted({_number_hash(entry.draft) for entry in accepted})
    found: dict[tuple[int, str], int] = {}
    for start in range(0, len(hashes), LOOKUP_CHUNK):
        found.update(((buyer_id, number_hash), invoice_id) for invoice_id, buyer_id, number_hash in db.session.execute(
            select(Invoice.id, Invoice.buyer_id, Invoice.invoice_number_hash).where(
                Invoice.supplier_id == supplier.id,
                Invoice.invoice_number_hash.in_(hashes[start:start + LOOKUP_CHUNK]))))
    return found


def _number_hash(draft: InvoiceDraft) -> str:
    return _hex(invoice_number_hash(draft.invoice_number))


def _duplicate(accepted: _Accepted, existing: int) -> Duplicate:
    return Duplicate(f"invoice {accepted.draft.invoice_number} to {accepted.buyer.name} is registered already "
                     f"(invoice {existing})")


# ---------------------------------------------------------------- the writes


def _register_single(
    actor: Actor, supplier: Organisation, accepted: _Accepted, source: InvoiceSource, *, upload: _Upload | None
) -> Invoice:
    invoice = _new_invoice(supplier, accepted, source, _document(supplier, accepted, upload))
    db.session.flush()
    audit.record(actor, Action.REGISTER_INVOICE, "invoice", invoice.id, after=snapshot(invoice))
    outbox.enqueue(
        intent_key=f"invoice:{invoice.id}:register",
        signer=supplier,
        contract=ContractName.RECEIVABLE_REGISTRY,
        function="register",
        args=[_registration_args(invoice)],
        invoice=invoice,
    )
    return invoice


def _document(supplier: Organisation, accepted: _Accepted, upload: _Upload | None) -> Document:
    """The document an invoice anchors, stored: the one uploaded with it, the one it names, or
    else its statement."""
    draft = accepted.draft
    if upload is not None:
        return _store(supplier, upload)
    if draft.document_sha256 is not None:
        return db.session.get(Document, draft.document_sha256)
    return _store(supplier, _statement_upload(supplier, accepted))


def _csv_documents(supplier: Organisation, accepted: list[_Accepted]) -> list[Document]:
    """`_document` for each row of a file, in bulk: the statements are written to the store
    together (one sync, not two per file) and the documents looked up in a few queries, since
    one sync and one query per row are most of a large file's intake otherwise."""
    statements = {index: _statement_upload(supplier, entry) for index, entry in enumerate(accepted)
                  if entry.draft.document_sha256 is None}
    digests = dict(zip(statements, document_store().put_many([upload.data for upload in statements.values()])))
    wanted = sorted({digests.get(index) or entry.draft.document_sha256 for index, entry in enumerate(accepted)})
    documents: dict[str, Document] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        documents.update((document.sha256, document) for document in db.session.scalars(
            select(Document).where(Document.sha256.in_(wanted[start:start + LOOKUP_CHUNK]))))
    for index, upload in statements.items():
        if digests[index] not in documents:
            documents[digests[index]] = _new_document(supplier, digests[index], upload)
    return [documents[digests.get(index) or entry.draft.document_sha256] for index, entry in enumerate(accepted)]


def _new_invoice(supplier: Organisation, accepted: _Accepted, source: InvoiceSource, document: Document) -> Invoice:
    """The pending invoice, added to the session, anchoring `document`."""
    draft, buyer = accepted.draft, accepted.buyer
    number_hash = invoice_number_hash(draft.invoice_number)
    invoice = Invoice(
        supplier=supplier,
        buyer=buyer,
        holder=supplier,
        invoice_number=draft.invoice_number,
        invoice_number_hash=_hex(number_hash),
        currency=draft.currency,
        amount_minor=draft.amount_minor,
        issue_date=draft.issue_date,
        due_date=draft.due_date,
        document=document,
        source=source,
        receivable_id=receivable_hex(receivable_id(supplier.chain_address, buyer.chain_address, number_hash)),
        status=InvoiceStatus.PENDING,
    )
    db.session.add(invoice)
    return invoice


def _store(supplier: Organisation, upload: _Upload) -> Document:
    """The document for `upload`, its bytes stored by their SHA-256. Bytes stored before (by
    anyone) are the same document. A registration refused after this leaves the file unreferenced,
    which is harmless: the store never rewrites a file, and the next upload of it finds it."""
    digest = document_store().put(upload.data)
    return db.session.get(Document, digest) or _new_document(supplier, digest, upload)


def _new_document(supplier: Organisation, digest: str, upload: _Upload) -> Document:
    document = Document(
        sha256=digest,
        media_type=upload.media_type,
        size_bytes=len(upload.data),
        original_filename=_plain_filename(upload.filename),
        uploaded_by_id=supplier.id,
    )
    db.session.add(document)
    return document


def _plain_filename(filename: str | None) -> str | None:
    """The uploaded file's own name, as it is kept and later offered for download: no folders,
    no control characters (a header cannot carry them), at most 255 characters."""
    if not filename:
        return None
    name = "".join(character for character in filename.replace("\\", "/").rsplit("/", 1)[-1]
                   if character.isprintable())
    return name[-MAX_FILENAME_LENGTH:] or None


def _statement_upload(supplier: Organisation, accepted: _Accepted) -> _Upload:
    return _Upload(_statement(supplier, accepted.buyer, accepted.draft), STATEMENT_MEDIA_TYPE, None)


def _statement(supplier: Organisation, buyer: Organisation, draft: InvoiceDraft) -> bytes:
    """The canonical JSON of an invoice's terms: the document of an invoice registered without one."""
    terms = {
        "format": STATEMENT_FORMAT,
        "supplier": supplier.legal_identifier,
        "buyer": buyer.legal_identifier,
        "invoice_number": draft.invoice_number,
        "amount": str(money.from_minor_units(draft.amount_minor, draft.currency)),
        "currency": draft.currency,
        "issue_date": draft.issue_date.isoformat(),
        "due_date": draft.due_date.isoformat(),
    }
    return json.dumps(terms, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _registration_args(invoice: Invoice) -> list[Any]:
    """The invoice's `ReceivableRegistry.Registration` as the outbox's JSON arguments: the
    struct as a list, bytes as 0x-hex, dates as the unix seconds of their 00:00 UTC."""
    fields = registration(
        invoice.buyer.chain_address,
        amount=invoice.amount_minor,
        currency=invoice.currency,
        issue_date=ledger_date(invoice.issue_date),
        due_date=ledger_date(invoice.due_date),
        invoice_number=invoice.invoice_number,
        document_sha256=bytes.fromhex(invoice.document.sha256),
    )
    return [_hex(field) if isinstance(field, bytes) else field for field in fields]


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _batches(invoices: list[Invoice]) -> Iterator[list[Invoice]]:
    for start in range(0, len(invoices), REGISTER_BATCH_SIZE):
        yield invoices[start:start + REGISTER_BATCH_SIZE]


def row_errors_of(refusal: InvalidInput) -> list[RowError]:
    """A refused CSV upload's row errors, back from its field errors (`row_error_fields`), by row."""
    found = []
    for field, reasons in refusal.errors.items():
        parts = field.split(".", 2)
        if parts[0] == "rows" and len(parts) > 1 and parts[1].isdigit():
            found.extend(RowError(int(parts[1]), parts[2] if len(parts) == 3 else None, reason) for reason in reasons)
    return sorted(found, key=lambda error: error.row)
