"""The ledger explorer, for those who read everything (the auditor and the operator; issue 5
§6): every receivable with its current state; its full history on the ledger (each indexed
event about it, in chain order, and the writes still on their way there); its split lineage;
the check that the document stored for it is the one the ledger anchors; and CSV exports of
the receivables and of the audit log, produced row by row. Nothing here writes anything.

Where the ledger keeps what: a receivable's document hash is in its `ReceivableRegistered`
event only (the contract stores no data it does not read), and a split child has none of its
own: it carries the document of the invoice it was split from, its origin. So the document
check reads the origin's registration event, from the node itself when it answers
(`backend.chain.runtime`), else from the indexer's copy of it, and says which it used.
"""
from __future__ import annotations

import csv
import enum
import hashlib
import io
import itertools
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import requests
from flask import current_app
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import joinedload
from web3.exceptions import Web3Exception

from backend.chain import runtime
from backend.chain.client import LedgerClient
from backend.chain.connection import ChainError
from backend.extensions import db
from backend.models import (
    AuditLog,
    ChainEvent,
    ChainTransaction,
    ContractName,
    Invoice,
    InvoiceStatus,
    Organisation,
    User,
)
from backend.money import from_minor_units
from backend.services import audit_reads, invoices
from backend.services.actors import Actor
from backend.services.errors import InvalidInput
from backend.services.permissions import Action, authorize
from backend.services.transaction import atomic

logger = logging.getLogger(__name__)

# Rows fetched from the database at a time while an export is written out.
EXPORT_BATCH_ROWS = 500
# A cell starting with one of these is a formula to a spreadsheet (OWASP's CSV injection list):
# it is written with a leading apostrophe, which makes it text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# The contracts whose events can be about a receivable, and the one event of theirs whose `id`
# is a participant's, not a receivable's.
RECEIVABLE_CONTRACTS = (ContractName.RECEIVABLE_REGISTRY, ContractName.FINANCING)
NOT_ABOUT_RECEIVABLES = ("ParticipantOnboarded",)
# The event arguments that hold a ledger address (named in the history by their organisation).
ADDRESS_ARGUMENTS = ("supplier", "buyer", "seller", "financier", "from", "to", "holder", "creditor", "owner",
                     "approved")
_HEX_ID = re.compile(r"0x[0-9a-fA-F]{1,64}")
_DECIMAL_ID = re.compile(r"[0-9]{1,78}")

RECEIVABLE_COLUMNS = (
    "invoice_id", "receivable_id", "invoice_number", "parent_receivable_id", "status", "delinquency",
    "supplier", "supplier_legal_identifier", "buyer", "buyer_legal_identifier", "holder", "holder_legal_identifier",
    "currency", "amount", "repaid", "outstanding", "issue_date", "due_date", "document_sha256", "created_at",
)
AUDIT_COLUMNS = (
    "id", "occurred_at", "action", "subject_type", "subject_id", "actor_organisation_id", "actor_organisation",
    "actor_user_id", "actor_user", "api_key_id", "request_id", "before", "after",
)


# ---------------------------------------------------------------- the receivables


def receivable_query(
    actor: Actor,
    *,
    invoice_number: str | None = None,
    receivable_id: str | None = None,
    supplier: str | None = None,
    buyer: str | None = None,
    status: InvoiceStatus | None = None,
) -> Select[tuple[Invoice]]:
    """Every receivable matching each filter given, newest first: its invoice number
    containing `invoice_number` (ignoring case), its receivable id (0x-hex or decimal), a
    supplier and a buyer by name (a part of it), legal identifier or ledger address, its status."""
    authorize(actor, Action.EXPLORE_LEDGER)
    statement = invoices.invoice_query(actor, status=status)
    if invoice_number and invoice_number.strip():
        statement = statement.where(Invoice.invoice_number.icontains(invoice_number.strip(), autoescape=True))
    if receivable_id and receivable_id.strip():
        statement = statement.where(Invoice.receivable_id == parse_receivable_id(receivable_id))
    for column, reference in ((Invoice.supplier_id, supplier), (Invoice.buyer_id, buyer)):
        if reference and reference.strip():
            statement = statement.where(column.in_(_organisations_named(reference.strip())))
    return statement.order_by(Invoice.created_at.desc(), Invoice.id.desc())


def parse_receivable_id(text: str) -> str:
    """A receivable id as people copy it (0x-hex, or the decimal number the ledger's events
    show) in the form the database keeps it; InvalidInput for anything else."""
    text = text.strip()
    if _HEX_ID.fullmatch(text):
        return invoices.receivable_hex(int(text, 16))
    if _DECIMAL_ID.fullmatch(text) and int(text) < 2**256:
        return invoices.receivable_hex(int(text))
    message = "a receivable id is 0x and up to 64 hex digits, or a decimal number below 2**256"
    raise InvalidInput(message, errors={"receivable_id": [message]})


def _organisations_named(reference: str) -> Select[tuple[int]]:
    """The ids of the organisations whose name contains `reference` (ignoring case), or whose
    legal identifier or ledger address it is."""
    return select(Organisation.id).where(or_(
        Organisation.name.icontains(reference, autoescape=True),
        Organisation.legal_identifier == reference,
        func.lower(Organisation.chain_address) == reference.lower(),
    ))


@dataclass(frozen=True)
class ReceivableHistory:
    """Everything the ledger recorded about one receivable, in chain order, and the writes
    about it not yet mined (queued, signed or sent), oldest first. `organisations` names the
    ledger addresses the events mention."""

    invoice: Invoice
    events: list[ChainEvent]
    in_flight: list[ChainTransaction]
    organisations: Mapping[str, Organisation]


@atomic
def receivable_history(actor: Actor, invoice_id: int) -> ReceivableHistory:
    """The receivable's full history: every indexed event about it (its registration, the
    split that created it if it is a split child, its confirmation or dispute, each transfer,
    financing round, repayment and delinquency, its own split), by block and log index."""
    authorize(actor, Action.EXPLORE_LEDGER)
    invoice = invoices.get_invoice(actor, invoice_id)
    events = _events_about(invoice)
    addresses = {event.args[name] for event in events for name in ADDRESS_ARGUMENTS
                 if isinstance(event.args.get(name), str)}
    organisations = {org.chain_address: org for org in db.session.scalars(
        select(Organisation).where(Organisation.chain_address.in_(sorted(addresses))))} if addresses else {}
    return ReceivableHistory(invoice=invoice, events=events, in_flight=invoices.pending_actions(invoice),
                             organisations=organisations)


def _events_about(invoice: Invoice) -> list[ChainEvent]:
    if invoice.receivable_id is None:
        return []
    key = invoices.event_key(invoice.receivable_id)
    about = [ChainEvent.args["id"].as_string() == key, ChainEvent.args["tokenId"].as_string() == key,
             ChainEvent.args["parentId"].as_string() == key]
    if invoice.parent is not None and invoice.parent.receivable_id is not None:
        # The parent's split (the one event naming it `parentId`), which created this child.
        about.append(ChainEvent.args["parentId"].as_string() == invoices.event_key(invoice.parent.receivable_id))
    return list(db.session.scalars(
        select(ChainEvent)
        .where(ChainEvent.contract.in_(RECEIVABLE_CONTRACTS), ChainEvent.event.not_in(NOT_ABOUT_RECEIVABLES),
               or_(*about))
        .order_by(ChainEvent.block_number, ChainEvent.log_index, ChainEvent.id)
    ))


# ---------------------------------------------------------------- split lineage


@dataclass(frozen=True)
class LineageNode:
    """A receivable and the parts it was split into, each with its own parts."""

    invoice: Invoice
    children: list[LineageNode] = field(default_factory=list)


@dataclass(frozen=True)
class Lineage:
    """Where a receivable comes from (the invoice it was first split from, its origin, first;
    its parent last; empty for an invoice never split off another) and what it was split into."""

    ancestors: list[Invoice]
    descendants: list[LineageNode]


@atomic
def split_lineage(actor: Actor, invoice_id: int) -> Lineage:
    """Where the receivable was split from and what it was split into (see Lineage)."""
    authorize(actor, Action.EXPLORE_LEDGER)
    invoice = invoices.get_invoice(actor, invoice_id)
    return Lineage(ancestors=_ancestors(invoice), descendants=_descendants(invoice, {invoice.id}))


# A receivable's parents and parts never loop back to it on the platform; in a damaged database
# they might, and the walks below stop at a receivable they have met rather than go round forever.


def _ancestors(invoice: Invoice) -> list[Invoice]:
    """The invoices `invoice` was split from, its origin first and its parent last."""
    ancestors: list[Invoice] = []
    seen = {invoice.id}
    parent = invoice.parent
    while parent is not None and parent.id not in seen:
        seen.add(parent.id)
        ancestors.insert(0, parent)
        parent = parent.parent
    return ancestors


def _descendants(invoice: Invoice, seen: set[int]) -> list[LineageNode]:
    """The parts `invoice` was split into, each with its own, but none of `seen` (which grows)."""
    nodes: list[LineageNode] = []
    for child in invoice.children:
        if child.id not in seen:
            seen.add(child.id)
            nodes.append(LineageNode(child, _descendants(child, seen)))
    return nodes


def origin_of(invoice: Invoice) -> Invoice:
    """The invoice a split child was first split from (an invoice that is no split child is
    its own origin): the one whose registration anchors the document."""
    ancestors = _ancestors(invoice)
    return ancestors[0] if ancestors else invoice


# ---------------------------------------------------------------- the document check


class DocumentVerdict(enum.StrEnum):
    MATCH = "match"  # the stored bytes hash to what the ledger anchors
    MISMATCH = "mismatch"  # they do not: the stored file is not the registered document
    MISSING = "missing"  # no document is stored for the invoice
    NOT_ANCHORED = "not-anchored"  # the ledger has no registration of it (yet)


class HashSource(enum.StrEnum):
    LEDGER = "ledger"  # the registration event, read from the node at its current head
    INDEXED_EVENT = "indexed-event"  # the indexer's copy of it: the node did not answer


@dataclass(frozen=True)
class DocumentCheck:
    """The outcome of comparing a receivable's stored document with the ledger's anchor.

    `recorded_sha256`: the digest the database records for the invoice; `stored_sha256`: the
    SHA-256 of the stored bytes, computed now (None when they are missing); `anchored_sha256`:
    the hash in the origin's registration on the ledger (None when there is none); `source`:
    where that was read; `ledger_error`: why the node could not be read, when it was not."""

    verdict: DocumentVerdict
    recorded_sha256: str | None
    stored_sha256: str | None
    anchored_sha256: str | None
    source: HashSource | None
    origin: Invoice
    ledger_error: str | None = None


@atomic
def check_document(actor: Actor, invoice_id: int, *, ledger: LedgerClient | None = None) -> DocumentCheck:
    """Recomputes the SHA-256 of the document stored for the receivable and compares it with
    the hash its registration anchored on the ledger (the origin's, for a split child): read
    from `ledger` (default: the deployment ETH_RPC_URL names) at its current head, or, when the
    node cannot be reached, from the indexed registration event."""
    authorize(actor, Action.EXPLORE_LEDGER)
    invoice = invoices.get_invoice(actor, invoice_id)
    origin = origin_of(invoice)
    stored = _stored_digest(invoice.document_sha256)
    anchored: str | None = None
    source: HashSource | None = None
    ledger_error: str | None = None
    if origin.receivable_id is not None:
        try:
            anchored, source = _anchored_on_ledger(ledger, int(origin.receivable_id, 16)), HashSource.LEDGER
        except (ChainError, Web3Exception, requests.RequestException, OSError) as exc:
            # Our ChainErrors name the node without credentials; the others' messages may quote
            # the RPC URL's path and query string, where node providers put API keys.
            logger.warning("document check: reading the ledger failed", exc_info=True)
            ledger_error = str(exc) if isinstance(exc, ChainError) else f"unreachable: {type(exc).__name__}"
            anchored, source = _anchored_in_index(origin.receivable_id), HashSource.INDEXED_EVENT
    if stored is None:
        verdict = DocumentVerdict.MISSING
    elif anchored is None:
        verdict = DocumentVerdict.NOT_ANCHORED
    else:
        verdict = DocumentVerdict.MATCH if anchored == stored else DocumentVerdict.MISMATCH
    return DocumentCheck(verdict=verdict, recorded_sha256=invoice.document_sha256, stored_sha256=stored,
                         anchored_sha256=anchored, source=source, origin=origin, ledger_error=ledger_error)


def _stored_digest(digest: str | None) -> str | None:
    """The SHA-256 of the bytes stored under `digest`, computed afresh (a file changed on disk
    no longer hashes to its name), or None when nothing is stored there."""
    if digest is None:
        return None
    try:
        with invoices.document_store().open(digest) as document:
            return hashlib.file_digest(document, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def _anchored_on_ledger(ledger: LedgerClient | None, receivable_id: int) -> str | None:
    """The document hash of the receivable's registration, as the node's logs hold it now."""
    ledger = ledger or runtime.ledger(current_app.config)
    registrations = ledger.registry.events.ReceivableRegistered.get_logs(
        argument_filters={"id": receivable_id}, from_block=ledger.deployment.deploy_block, to_block="latest")
    return registrations[-1]["args"]["documentHash"].hex() if registrations else None


def _anchored_in_index(receivable_id: str) -> str | None:
    """The document hash of the receivable's indexed registration event (0x-hex there)."""
    event = db.session.scalars(
        select(ChainEvent)
        .where(ChainEvent.contract == ContractName.RECEIVABLE_REGISTRY, ChainEvent.event == "ReceivableRegistered",
               ChainEvent.args["id"].as_string() == invoices.event_key(receivable_id))
        .order_by(ChainEvent.block_number.desc(), ChainEvent.log_index.desc())
    ).first()
    return event.args["documentHash"].removeprefix("0x") if event is not None else None


# ---------------------------------------------------------------- CSV exports


def csv_cell(value: Any) -> str:
    """A value as a CSV cell: ISO dates and times, text that cannot pass for a formula."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, date | datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header and then each row as one line of CSV (RFC 4180), produced as they are read."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for cells in itertools.chain((header,), rows):
        writer.writerow([csv_cell(cell) for cell in cells])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def receivables_csv(actor: Actor, **filters: Any) -> Iterator[str]:
    """The receivables `receivable_query` finds with `filters`, as CSV lines (see
    RECEIVABLE_COLUMNS), amounts in major units of the currency column. The actor is
    authorised now; the rows are read from the database as the lines are consumed."""
    statement = receivable_query(actor, **filters).options(
        joinedload(Invoice.supplier), joinedload(Invoice.buyer), joinedload(Invoice.holder),
        joinedload(Invoice.parent))
    return csv_lines(RECEIVABLE_COLUMNS, (_receivable_row(invoice) for invoice, in _streamed(statement)))


def _receivable_row(invoice: Invoice) -> list[Any]:
    def major(minor: int) -> Any:
        return from_minor_units(minor, invoice.currency)

    return [
        invoice.id, invoice.receivable_id, invoice.invoice_number,
        invoice.parent.receivable_id if invoice.parent is not None else None, invoice.status, invoice.delinquency,
        invoice.supplier.name, invoice.supplier.legal_identifier, invoice.buyer.name, invoice.buyer.legal_identifier,
        invoice.holder.name, invoice.holder.legal_identifier, invoice.currency, major(invoice.amount_minor),
        major(invoice.repaid_minor), major(invoice.amount_minor - invoice.repaid_minor), invoice.issue_date,
        invoice.due_date, invoice.document_sha256, invoice.created_at,
    ]


def audit_csv(actor: Actor, **filters: Any) -> Iterator[str]:
    """The audit entries `audit_reads.audit_entries` finds with `filters`, newest first, as CSV
    lines (see AUDIT_COLUMNS; `before` and `after` as JSON). Authorised now, read as consumed."""
    statement = (audit_reads.audit_entries(actor, **filters)
                 .outerjoin(Organisation, Organisation.id == AuditLog.actor_organisation_id)
                 .outerjoin(User, User.id == AuditLog.actor_user_id)
                 .add_columns(Organisation.name, User.email)
                 .order_by(AuditLog.occurred_at.desc(), AuditLog.id.desc()))
    return csv_lines(AUDIT_COLUMNS, (
        [entry.id, entry.occurred_at, entry.action, entry.subject_type, entry.subject_id,
         entry.actor_organisation_id, organisation_name, entry.actor_user_id, email, entry.api_key_id,
         entry.request_id, _json(entry.before), _json(entry.after)]
        for entry, organisation_name, email in _streamed(statement)))


def _json(document: Any) -> str | None:
    return None if document is None else json.dumps(document, ensure_ascii=False, sort_keys=True)


def _streamed(statement: Select[Any]) -> Iterator[Any]:
    """The statement's rows, fetched EXPORT_BATCH_ROWS at a time. Run when the first is asked
    for, not before: a streamed response is produced after the view returns, in a database
    session of its own."""
    yield from db.session.execute(statement.execution_options(yield_per=EXPORT_BATCH_ROWS))
