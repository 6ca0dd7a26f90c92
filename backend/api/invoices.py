"""Invoices: registration (a JSON form, a PDF, a UBL 2.1 e-invoice, a bulk CSV), the buyer's
confirmation or dispute, the supplier's cancellation, the holder's split and transfer, and the
reads: lists (the buyer's payables inbox is `?as=buyer`), one invoice, and its document.

Every write is carried out by the ledger, so it answers 202 with the invoice as it stands
(pending, or with the queued write among its `pending_actions`) and where to poll it; the
indexer moves its status on once the transaction is mined.
"""
from __future__ import annotations

import io
from typing import Any

from flask import Response, request, send_file
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict, FileStorage

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID, PendingActions, decimal_amount, row_id
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.api.responses import accepted
from backend.models import Delinquency, Invoice, InvoiceSource, InvoiceStatus
from backend.money import MAX_MINOR_UNITS
from backend.services import invoice_intake, invoices
from backend.services.invoice_intake import CsvMode, CsvRegistration
from backend.services.invoices import MAX_DISPUTE_NOTE_LENGTH, DisputeReason, Perspective, SplitPart


class MultipartParser(FlaskParser):
    """Reads a multipart body's form fields together with its files (location "files"), so one
    schema validates and documents the whole body: flask-smorest documents one request body per
    operation, and webargs would read the files and the fields as two."""

    def load_files(self, req: Any, schema: Schema) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


blp = Blueprint(
    "invoices",
    __name__,
    url_prefix="/api/v1/invoices",
    description="Registering invoices; the buyer's confirmation or dispute; splits and transfers of receivables.",
)
blp.ARGUMENTS_PARSER = MultipartParser()

# The path of one invoice, under the blueprint's prefix.
INVOICE_PATH = f"/<{ROW_ID}:invoice_id>"
PAGE_ARGUMENTS = frozenset(CursorArgs().fields)
# As long as the longest legal identifier an organisation may have.
MAX_REFERENCE_LENGTH = 100
DOCUMENT_MEDIA_TYPES = {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    "application/xml": {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "description": "The terms of an invoice registered without "
                                                                     "a document, as its supplier stated them"}},
}


class OrganisationReference(fields.Field):
    """An organisation as a request names it: its id (an integer), its ledger address or its
    legal identifier (strings)."""

    def __init__(self, **kwargs: Any) -> None:
        string = {"type": "string", "pattern": r"\S", "maxLength": MAX_REFERENCE_LENGTH}
        metadata = {"oneOf": [{"type": "integer"}, string],
                    "description": "An organisation id, ledger address (0x...) or legal identifier"}
        super().__init__(metadata=metadata | kwargs.pop("metadata", {}), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and 0 < len(value.strip()) <= MAX_REFERENCE_LENGTH:
            return value.strip()
        raise ValidationError("an organisation id, ledger address or legal identifier")


class InvoiceIdSchema(Schema):
    id = fields.Integer(required=True)


class InvoiceSchema(Schema):
    id = fields.Integer(required=True)
    receivable_id = fields.String(required=True, allow_none=True,
                                  metadata={"description": "The ledger's uint256 id, 0x-hex; known before it is mined"})
    status = fields.Enum(InvoiceStatus, by_value=True, required=True)
    delinquency = fields.Enum(Delinquency, by_value=True, required=True)
    source = fields.Enum(InvoiceSource, by_value=True, required=True)
    supplier_id = fields.Integer(required=True)
    buyer_id = fields.Integer(required=True)
    holder_id = fields.Integer(required=True)
    invoice_number = fields.String(required=True, allow_none=True,
                                   metadata={"description": "None for a part of a split receivable"})
    currency = fields.String(required=True)
    amount = decimal_amount(lambda invoice: invoice.amount_minor, lambda invoice: invoice.currency, "The face value")
    amount_minor = fields.Integer(required=True)
    repaid = decimal_amount(lambda invoice: invoice.repaid_minor, lambda invoice: invoice.currency,
                            "What the buyer has repaid")
    repaid_minor = fields.Integer(required=True)
    issue_date = fields.Date(required=True)
    due_date = fields.Date(required=True)
    document_sha256 = fields.String(required=True, allow_none=True,
                                    metadata={"description": "The anchored document's SHA-256 (hex)"})
    dispute_reason = fields.String(required=True, allow_none=True)
    parent_id = fields.Integer(required=True, allow_none=True,
                               metadata={"description": "The receivable this one was split from"})
    split_index = fields.Integer(required=True, allow_none=True)
    children = fields.Pluck(InvoiceIdSchema, "id", many=True, required=True,
                            metadata={"description": "The ids of the parts it was split into"})
    pending_actions = PendingActions(invoices.pending_actions)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class InvoiceTermsSchema(Schema):
    """What a supplier states about an invoice (checked by the registration service)."""

    invoice_number = fields.String(required=True)
    buyer = OrganisationReference(required=True)
    amount = fields.String(required=True, metadata={"description": "In major units of the currency: 1234.56"})
    currency = fields.String(required=True, metadata={"description": "ISO 4217"})
    issue_date = fields.Date(required=True)
    due_date = fields.Date(required=True, metadata={"description": "After the issue date and after today (UTC)"})


class NewInvoiceSchema(InvoiceTermsSchema):
    document_sha256 = fields.String(metadata={
        "description": "SHA-256 (hex) of a document this supplier uploaded before; without one, the anchored "
                       "document is the invoice's terms as canonical JSON"})


class PdfInvoiceSchema(InvoiceTermsSchema):
    file = Upload(required=True, metadata={"description": "The invoice as a PDF"})


class UblUploadSchema(Schema):
    file = Upload(required=True, metadata={"description": "A UBL 2.1 Invoice"})


class CsvUploadSchema(Schema):
    file = Upload(required=True, metadata={"description": "UTF-8 CSV, a header row, one invoice per row"})
    mode = fields.Enum(CsvMode, by_value=True, required=True, metadata={
        "description": "all-or-nothing: any bad row refuses the file; valid-rows-only: the good rows are "
                       "registered, the bad ones reported"})


class RowErrorSchema(Schema):
    row = fields.Integer(required=True, metadata={"description": "As a spreadsheet numbers it: the header is 1"})
    column = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True)


class CsvRegistrationSchema(Schema):
    invoice_ids = fields.List(fields.Integer(), required=True)
    errors = fields.List(fields.Nested(RowErrorSchema), required=True,
                         metadata={"description": "The rows not registered (valid-rows-only)"})


class DisputeSchema(Schema):
    reason = fields.Enum(DisputeReason, by_value=True, required=True, metadata={
        "description": "Recorded on the ledger as a code: " + ", ".join(
            f"{reason} = {code}" for reason, code in invoices.DISPUTE_REASON_CODES.items())})
    note = fields.String(validate=validate.Length(max=MAX_DISPUTE_NOTE_LENGTH),
                         metadata={"description": "Kept off the ledger, in dispute_reason"})


class SplitPartSchema(Schema):
    amount = fields.String(required=True, metadata={"description": "In major units of the invoice's currency"})
    holder = OrganisationReference(required=True, metadata={"description": "Who gets this part: the holder itself "
                                                                           "or an active supplier"})


class SplitSchema(Schema):
    currency = fields.String(required=True, metadata={"description": "The invoice's currency"})
    parts = fields.List(fields.Nested(SplitPartSchema), required=True,
                        metadata={"description": "2 to 100 parts adding up exactly to the invoice's amount"})


class TransferSchema(Schema):
    to = OrganisationReference(required=True, metadata={"description": "An active supplier or financier"})


class InvoiceListArgs(CursorArgs):
    status = fields.Enum(InvoiceStatus, by_value=True)
    buyer_id = row_id()
    supplier_id = row_id()
    due_from = fields.Date(metadata={"description": "Due on or after this date"})
    due_to = fields.Date(metadata={"description": "Due on or before this date"})
    amount_min_minor = fields.Integer(validate=validate.Range(min=0, max=MAX_MINOR_UNITS))
    amount_max_minor = fields.Integer(validate=validate.Range(min=0, max=MAX_MINOR_UNITS))
    currency = fields.String(validate=validate.Length(equal=3))
    perspective = fields.Enum(Perspective, by_value=True, data_key="as", metadata={
        "description": "buyer: the payables addressed to you; supplier: the invoices you issued; "
                       "holder: the receivables you hold"})


# ---------------------------------------------------------------- reads


@blp.route("", methods=["GET"])
@blp.arguments(InvoiceListArgs, location="query")
@blp.response(200, page_schema(InvoiceSchema))
@blp.doc(security=SECURITY)
def list_invoices(args: dict[str, Any]) -> Page[Invoice]:
    """The invoices you may see, by due date"""
    filters = {name: value for name, value in args.items() if name not in PAGE_ARGUMENTS}
    return paginate(invoices.invoice_query(current_actor(), **filters), args, sort=(Invoice.due_date,))


@blp.route(INVOICE_PATH, methods=["GET"])
@blp.response(200, InvoiceSchema)
@blp.doc(security=SECURITY)
def get_invoice(invoice_id: int) -> Invoice:
    """One invoice, its lineage and its pending ledger writes"""
    return invoices.get_invoice(current_actor(), invoice_id)


@blp.route(f"{INVOICE_PATH}/document", methods=["GET"])
@blp.doc(security=SECURITY,
         responses={"200": {"description": "The anchored document", "content": DOCUMENT_MEDIA_TYPES}})
def get_invoice_document(invoice_id: int) -> Response:
    """The document the invoice's receivable anchors, as uploaded"""
    document, data = invoices.invoice_document(current_actor(), invoice_id)
    return send_file(io.BytesIO(data), mimetype=document.media_type, download_name=document.original_filename,
                     etag=document.sha256)


# ---------------------------------------------------------------- registration


@blp.route("", methods=["POST"])
@blp.arguments(NewInvoiceSchema)
@blp.response(202, InvoiceSchema, description="Registered here; its registration is queued for the ledger")
@blp.doc(security=SECURITY)
def register_invoice(terms: dict[str, Any]) -> Response:
    """Register an invoice (supplier)"""
    return _accepted(invoice_intake.register_invoice(current_actor(), **terms))


@blp.route("/pdf", methods=["POST"])
@blp.arguments(PdfInvoiceSchema, location="files")
@blp.response(202, InvoiceSchema, description="Registered here; its registration is queued for the ledger")
@blp.doc(security=SECURITY)
def register_pdf_invoice(form: dict[str, Any]) -> Response:
    """Register an invoice from its PDF and its terms (supplier)"""
    upload: FileStorage = form.pop("file")
    return _accepted(invoice_intake.register_pdf_invoice(current_actor(), upload.read(), filename=upload.filename,
                                                         **form))


@blp.route("/ubl", methods=["POST"])
@blp.response(202, InvoiceSchema, description="Registered here; its registration is queued for the ledger")
@blp.doc(security=SECURITY, requestBody={"required": True, "content": {
    "application/xml": {"schema": {"type": "string", "description": "A UBL 2.1 Invoice"}},
    "multipart/form-data": {"schema": UblUploadSchema},
}})
def register_ubl_invoice() -> Response:
    """Register a UBL 2.1 e-invoice whose supplier is your organisation (supplier)"""
    upload = request.files.get("file")
    # Anything but a file part is read as the XML itself; what is not XML is refused as such.
    xml, filename = (upload.read(), upload.filename) if upload is not None else (request.get_data(), None)
    return _accepted(invoice_intake.register_ubl_invoice(current_actor(), xml, filename=filename))


@blp.route("/csv", methods=["POST"])
@blp.arguments(CsvUploadSchema, location="files")
@blp.response(202, CsvRegistrationSchema, description="The good rows are registered and queued for the ledger")
@blp.doc(security=SECURITY)
def register_csv_invoices(form: dict[str, Any]) -> Response:
    """Register the invoices of a CSV file (supplier)"""
    result = invoice_intake.register_csv_invoices(current_actor(), form["file"].read(), mode=form["mode"])
    return accepted(_csv_answer(result), f"{blp.url_prefix}?as={Perspective.SUPPLIER}&status={InvoiceStatus.PENDING}")


# ---------------------------------------------------------------- the lifecycle


@blp.route(f"{INVOICE_PATH}/confirm", methods=["POST"])
@blp.response(202, InvoiceSchema, description="The confirmation is queued for the ledger")
@blp.doc(security=SECURITY)
def confirm_invoice(invoice_id: int) -> Response:
    """Confirm a payable: the promise to pay its holder at maturity (buyer)"""
    return _accepted(invoices.confirm_invoice(current_actor(), invoice_id))


@blp.route(f"{INVOICE_PATH}/dispute", methods=["POST"])
@blp.arguments(DisputeSchema)
@blp.response(202, InvoiceSchema, description="The dispute is queued for the ledger")
@blp.doc(security=SECURITY)
def dispute_invoice(dispute: dict[str, Any], invoice_id: int) -> Response:
    """Dispute a registered payable (buyer)"""
    return _accepted(invoices.dispute_invoice(current_actor(), invoice_id, dispute["reason"], dispute.get("note")))


@blp.route(f"{INVOICE_PATH}/cancel", methods=["POST"])
@blp.response(202, InvoiceSchema, description="The cancellation is queued for the ledger")
@blp.doc(security=SECURITY)
def cancel_invoice(invoice_id: int) -> Response:
    """Withdraw an invoice the buyer has not confirmed (supplier)"""
    return _accepted(invoices.cancel_invoice(current_actor(), invoice_id))


@blp.route(f"{INVOICE_PATH}/split", methods=["POST"])
@blp.arguments(SplitSchema)
@blp.response(202, InvoiceSchema, description="The split is queued; its parts are listed as children, pending")
@blp.doc(security=SECURITY)
def split_invoice(split: dict[str, Any], invoice_id: int) -> Response:
    """Split a confirmed receivable among yourself and your suppliers (holder)"""
    parts = [SplitPart(amount=part["amount"], holder=part["holder"]) for part in split["parts"]]
    return _accepted(invoices.split_invoice(current_actor(), invoice_id, currency=split["currency"], parts=parts))


@blp.route(f"{INVOICE_PATH}/transfer", methods=["POST"])
@blp.arguments(TransferSchema)
@blp.response(202, InvoiceSchema, description="The transfer is queued for the ledger")
@blp.doc(security=SECURITY)
def transfer_invoice(transfer: dict[str, Any], invoice_id: int) -> Response:
    """Transfer a confirmed receivable to a supplier or financier (holder)"""
    return _accepted(invoices.transfer_invoice(current_actor(), invoice_id, to=transfer["to"]))


def _accepted(invoice: Invoice) -> Response:
    return accepted(InvoiceSchema().dump(invoice), f"{blp.url_prefix}/{invoice.id}")


def _csv_answer(result: CsvRegistration) -> dict[str, Any]:
    return CsvRegistrationSchema().dump({"invoice_ids": [invoice.id for invoice in result.invoices],
                                         "errors": result.errors})
