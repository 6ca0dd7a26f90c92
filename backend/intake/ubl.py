"""UBL 2.1 e-invoices (as PEPPOL BIS Billing 3.0 and other EN 16931 profiles send them) read into drafts.

The XML comes from outside, so it is parsed by defusedxml with DTDs forbidden outright: no UBL
document needs one, and refusing every DOCTYPE refuses entity expansion (billion laughs) and
external entities (XXE) before anything is expanded or fetched.

What is read, from the `Invoice` root (a `CreditNote` is refused):

| draft field | UBL |
|---|---|
| invoice_number | `cbc:ID` |
| issue_date | `cbc:IssueDate` |
| due_date | `cbc:DueDate`, else `cac:PaymentMeans/cbc:PaymentDueDate` (all payment means giving one must agree) |
| currency | `cbc:DocumentCurrencyCode` |
| amount_minor | `cac:LegalMonetaryTotal/cbc:PayableAmount`, whose `currencyID` must be the document currency |
| supplier, buyer | `cac:AccountingSupplierParty/cac:Party`, `cac:AccountingCustomerParty/cac:Party` |
| document_sha256 | SHA-256 of the bytes as uploaded |

A party's name is its `cac:PartyLegalEntity/cbc:RegistrationName`, else `cac:PartyName/cbc:Name`;
its identifier is `cbc:EndpointID` as `schemeID:value`, else `cac:PartyLegalEntity/cbc:CompanyID`
(the same way, or the bare value when it has no scheme).

Only form is checked here. Business rules, such as whether the parties are participants, whether
the invoice was registered before, or whether its due date is already past, are the services'.
"""
from __future__ import annotations

import hashlib
from datetime import date
from typing import Callable, TypeVar
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from backend.intake.drafts import (
    InvoiceDraft,
    PartyRef,
    amount_in_minor_units,
    check_currency,
    check_due_date,
    check_invoice_number,
    parse_iso_date,
)
from backend.intake.errors import IntakeError

__all__ = ["parse_ubl_invoice"]

_INVOICE_NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
_CREDIT_NOTE_NAMESPACE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
_NAMESPACES = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
_PAYABLE_AMOUNT = "cac:LegalMonetaryTotal/cbc:PayableAmount"

_Value = TypeVar("_Value")


def parse_ubl_invoice(data: bytes, *, max_bytes: int) -> InvoiceDraft:
    """The draft a UBL 2.1 Invoice of at most `max_bytes` bytes describes, or IntakeError."""
    if len(data) > max_bytes:
        raise IntakeError("too-large", f"the XML is {len(data)} bytes; the limit is {max_bytes}")
    invoice = _parse_xml(data)
    if invoice.tag != f"{{{_INVOICE_NAMESPACE}}}Invoice":
        if invoice.tag == f"{{{_CREDIT_NOTE_NAMESPACE}}}CreditNote":
            raise IntakeError("not-an-invoice", "this is a UBL CreditNote; only invoices become receivables")
        raise IntakeError("not-an-invoice", f"the root element is {invoice.tag}, not a UBL 2.1 Invoice")

    invoice_number = _read(invoice, "cbc:ID", check_invoice_number)
    issue_date = _read(invoice, "cbc:IssueDate", parse_iso_date)
    due_date = _due_date(invoice)
    check_due_date(issue_date, due_date)
    currency = _read(invoice, "cbc:DocumentCurrencyCode", check_currency)
    payable = invoice.find(_PAYABLE_AMOUNT, _NAMESPACES)
    payable_currency = "" if payable is None else payable.get("currencyID", "").strip()
    if payable is not None and payable_currency != currency:
        raise IntakeError(
            "currency-mismatch",
            f"{_PAYABLE_AMOUNT} is in {payable_currency or 'no currency'}, the document in {currency}",
        )
    amount_minor = _read(invoice, _PAYABLE_AMOUNT, lambda text: amount_in_minor_units(text, currency))
    return InvoiceDraft(
        invoice_number=invoice_number,
        currency=currency,
        amount_minor=amount_minor,
        issue_date=issue_date,
        due_date=due_date,
        buyer=_party(invoice, "cac:AccountingCustomerParty/cac:Party"),
        supplier=_party(invoice, "cac:AccountingSupplierParty/cac:Party"),
        document_sha256=hashlib.sha256(data).hexdigest(),
    )


def _parse_xml(data: bytes) -> Element:
    try:
        return SafeElementTree.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise IntakeError("xml-unsafe", f"the XML declares a DTD or entities, which are refused: {exc!r}") from None
    # LookupError: an encoding declaration naming no encoding Python knows.
    except (SafeElementTree.ParseError, LookupError) as exc:
        raise IntakeError("malformed-xml", f"not well-formed XML: {exc}") from None


def _text(parent: Element, path: str) -> str | None:
    """The stripped text of the first element at `path`, None if absent or empty."""
    element = parent.find(path, _NAMESPACES)
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


def _read(parent: Element, path: str, parse: Callable[[str], _Value]) -> _Value:
    """The required element at `path`, parsed."""
    text = _text(parent, path)
    if text is None:
        raise IntakeError("missing-field", f"{path} is missing or empty")
    return _parsed(text, path, parse)


def _parsed(text: str, path: str, parse: Callable[[str], _Value]) -> _Value:
    """`parse(text)`, the element's path leading any error's detail."""
    try:
        return parse(text)
    except IntakeError as exc:
        raise IntakeError(exc.code, f"{path}: {exc.detail}") from None


def _due_date(invoice: Element) -> date:
    if _text(invoice, "cbc:DueDate") is not None:
        return _read(invoice, "cbc:DueDate", parse_iso_date)
    path = "cac:PaymentMeans/cbc:PaymentDueDate"
    dates = {
        _parsed(element.text, path, parse_iso_date)
        for element in invoice.findall(path, _NAMESPACES)
        if element.text and element.text.strip()
    }
    if not dates:
        raise IntakeError("missing-field", f"no due date: neither cbc:DueDate nor {path}")
    if len(dates) > 1:
        listed = ", ".join(sorted(map(str, dates)))
        raise IntakeError("conflicting-due-dates", f"the payment means give different due dates ({listed})")
    return dates.pop()


def _party(invoice: Element, path: str) -> PartyRef:
    party = invoice.find(path, _NAMESPACES)
    if party is None:
        raise IntakeError("missing-field", f"{path} is missing")
    name = _text(party, "cac:PartyLegalEntity/cbc:RegistrationName") or _text(party, "cac:PartyName/cbc:Name")
    identifier = _scheme_value(party, "cbc:EndpointID") or _scheme_value(party, "cac:PartyLegalEntity/cbc:CompanyID")
    if name is None and identifier is None:
        raise IntakeError("missing-field", f"{path} has neither a name nor an identifier")
    return PartyRef(name=name, identifier=identifier)


def _scheme_value(party: Element, path: str) -> str | None:
    """`schemeID:value` of the identifier at `path`, the bare value if it has no scheme."""
    value = _text(party, path)
    if value is None:
        return None
    scheme = party.find(path, _NAMESPACES).get("schemeID", "").strip()
    return f"{scheme}:{value}" if scheme else value
