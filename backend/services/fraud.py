"""Fraud and double-financing signals (issue 6 §2), found in the ledger's data as indexed.

Each signal is a Flag with its evidence; they are computed when asked for, from the current
projections and indexed events, so a flag disappears when its cause does (a disputed duplicate
cancelled, say) and nothing needs re-scanning on a schedule. The patterns:

- DUPLICATE_DOCUMENT: one document hash anchored under two invoices as issued (a split part
  shares its parent's document and does not count). The same PDF financed twice is the classic
  double financing.
- AMOUNT_OUTLIER: an invoice more than AMOUNT_OUTLIER_FACTOR times the median of the supplier's
  earlier invoices (at least OUTLIER_MIN_HISTORY of them).
- COUNT_SPIKE: on one day a supplier registered at least COUNT_SPIKE_MIN invoices and more than
  COUNT_SPIKE_FACTOR times its daily average over the COUNT_SPIKE_BASELINE_DAYS before.
- CIRCULAR_FLOW: A invoiced B and B invoiced A with issue dates at most CIRCULAR_WINDOW_DAYS apart.
- SPLIT_RETURNED_TO_ORIGIN: a split part transferred (not minted) to the supplier that issued
  the receivable it was split from.
- FAST_CONFIRMATION: a buyer's confirmation asked for within FAST_CONFIRMATION_SECONDS of the
  registration being mined, faster than a person could check the invoice.

The operator and the auditor see every flag; a financier sees the flags on an invoice it may
see (one open for financing, or one it holds), without the other parties' invoices.
"""
from __future__ import annotations

import bisect
import enum
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased

from backend.extensions import db
from backend.models import (
    ChainEvent,
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Invoice,
    InvoiceStatus,
    Organisation,
)
from backend.models.types import UTCDateTime
from backend.services.actors import Actor
from backend.services.invoices import get_invoice, receivable_hex
from backend.services.permissions import Action, authorize, reads_everything

AMOUNT_OUTLIER_FACTOR = 10
OUTLIER_MIN_HISTORY = 5
COUNT_SPIKE_MIN = 20
COUNT_SPIKE_FACTOR = 5
COUNT_SPIKE_BASELINE_DAYS = 90
CIRCULAR_WINDOW_DAYS = 30
FAST_CONFIRMATION_SECONDS = 30
ZERO_ADDRESS = "0x" + "0" * 40
# Invoices that never reached the ledger or were withdrawn before an answer cannot deceive anyone.
LIVE_STATUSES = (InvoiceStatus.REGISTERED, InvoiceStatus.CONFIRMED, InvoiceStatus.DISPUTED, InvoiceStatus.SPLIT,
                 InvoiceStatus.REPAID)


class FlagKind(enum.StrEnum):
    DUPLICATE_DOCUMENT = "duplicate_document"
    AMOUNT_OUTLIER = "amount_outlier"
    COUNT_SPIKE = "count_spike"
    CIRCULAR_FLOW = "circular_flow"
    SPLIT_RETURNED_TO_ORIGIN = "split_returned_to_origin"
    FAST_CONFIRMATION = "fast_confirmation"


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    invoice_ids: tuple[int, ...]  # the invoices it is about
    organisation_ids: tuple[int, ...]  # the organisations it is about
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)  # JSON values only


def fraud_flags(actor: Actor, *, kind: FlagKind | None = None, organisation_id: int | None = None) -> list[Flag]:
    """Every flag (the operator and the auditor only), or those of one kind or about one
    organisation."""
    authorize(actor, Action.VIEW_FRAUD_FLAGS)
    found = [flag for detect in _detectors(kind) for flag in detect(None)]
    if organisation_id is not None:
        found = [flag for flag in found if organisation_id in flag.organisation_ids]
    return found


def flags_on_invoice(actor: Actor, invoice_id: int) -> list[Flag]:
    """The flags on one invoice the actor may see. A financier (pricing what it is about to fund)
    is not shown the other parties' invoices the evidence names, only how many there are."""
    invoice = get_invoice(actor, invoice_id)
    found = [flag for detect in _detectors(None) for flag in detect(invoice)]
    if reads_everything(actor):
        return found
    return [replace(flag, invoice_ids=tuple(i for i in flag.invoice_ids if i == invoice.id),
                    organisation_ids=tuple(o for o in flag.organisation_ids
                                           if o in (invoice.supplier_id, invoice.buyer_id, invoice.holder_id)),
                    evidence={key: value for key, value in flag.evidence.items() if key != "related_invoice_ids"})
            for flag in found]


def _detectors(kind: FlagKind | None) -> list[Any]:
    detectors = {
        FlagKind.DUPLICATE_DOCUMENT: duplicate_documents,
        FlagKind.AMOUNT_OUTLIER: amount_outliers,
        FlagKind.COUNT_SPIKE: count_spikes,
        FlagKind.CIRCULAR_FLOW: circular_flows,
        FlagKind.SPLIT_RETURNED_TO_ORIGIN: splits_returned_to_origin,
        FlagKind.FAST_CONFIRMATION: fast_confirmations,
    }
    return list(detectors.values()) if kind is None else [detectors[kind]]


def _as_issued():
    """Live invoices as issued (not split parts)."""
    return and_(Invoice.parent_id.is_(None), Invoice.status.in_(LIVE_STATUSES))


def duplicate_documents(scope: Invoice | None) -> list[Flag]:
    documents = select(Invoice.document_sha256).where(_as_issued(), Invoice.document_sha256.is_not(None))
    if scope is not None:
        documents = documents.where(Invoice.document_sha256 == (scope.parent or scope).document_sha256)
    shared = (documents.group_by(Invoice.document_sha256).having(func.count() > 1)).subquery()
    rows = db.session.execute(
        select(Invoice.document_sha256, Invoice.id, Invoice.supplier_id, Invoice.buyer_id)
        .where(_as_issued(), Invoice.document_sha256.in_(select(shared.c.document_sha256)))
        .order_by(Invoice.document_sha256, Invoice.id)
    ).all()
    by_document: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_document[row.document_sha256].append(row)
    flags = []
    for digest, invoices in by_document.items():
        ids = tuple(row.id for row in invoices)
        flags.append(Flag(
            FlagKind.DUPLICATE_DOCUMENT, ids,
            tuple(sorted({row.supplier_id for row in invoices} | {row.buyer_id for row in invoices})),
            f"one document is anchored under {len(ids)} invoices",
            {"document_sha256": digest, "invoices": len(ids), "related_invoice_ids": list(ids)}))
    return _about(flags, scope)


def amount_outliers(scope: Invoice | None) -> list[Flag]:
    statement = (select(Invoice.id, Invoice.supplier_id, Invoice.currency, Invoice.amount_minor)
                 .where(_as_issued()).order_by(Invoice.supplier_id, Invoice.currency, Invoice.id))
    if scope is not None:
        statement = statement.where(Invoice.supplier_id == scope.supplier_id, Invoice.id <= scope.id)
    # Each supplier's earlier amounts kept sorted, so each median is read, not sorted afresh:
    # a supplier with thousands of invoices costs thousands of insertions, not of sorts.
    history: dict[tuple[int, str], list[int]] = defaultdict(list)
    flags = []
    for invoice_id, supplier_id, currency, amount_minor in db.session.execute(statement):
        earlier = history[(supplier_id, currency)]
        if len(earlier) >= OUTLIER_MIN_HISTORY:
            median = _sorted_median(earlier)
            if amount_minor > AMOUNT_OUTLIER_FACTOR * median:
                flags.append(Flag(
                    FlagKind.AMOUNT_OUTLIER, (invoice_id,), (supplier_id,),
                    f"{amount_minor / median:.1f} times the median of the supplier's {len(earlier)} earlier invoices",
                    {"amount_minor": amount_minor, "median_minor": median, "earlier_invoices": len(earlier),
                     "currency": currency}))
        bisect.insort(earlier, amount_minor)
    return _about(flags, scope)


def _sorted_median(values: list[int]) -> int | float:
    """statistics.median of an already sorted list, without sorting it again."""
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def count_spikes(scope: Invoice | None) -> list[Flag]:
    day = _utc_day(Invoice.created_at)
    statement = select(Invoice.supplier_id, day, func.count()).where(
        Invoice.parent_id.is_(None), Invoice.status != InvoiceStatus.PENDING)
    if scope is not None:
        statement = statement.where(Invoice.supplier_id == scope.supplier_id)
    per_day: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for supplier_id, on, count in db.session.execute(
            statement.group_by(Invoice.supplier_id, day).order_by(Invoice.supplier_id, day)):
        per_day[supplier_id].append((_as_date(on), count))
    flags = []
    for supplier_id, days in per_day.items():
        # A sliding window over the days in order: `baseline` counts days[first:index], those
        # within the baseline days before `on` (not every earlier day summed again for each day).
        first, baseline = 0, 0
        for index, (on, count) in enumerate(days):
            while first < index and days[first][0] < on - timedelta(days=COUNT_SPIKE_BASELINE_DAYS):
                baseline -= days[first][1]
                first += 1
            average = baseline / COUNT_SPIKE_BASELINE_DAYS
            baseline += count
            if count >= COUNT_SPIKE_MIN and count > COUNT_SPIKE_FACTOR * average:
                flags.append(Flag(
                    FlagKind.COUNT_SPIKE, () if scope is None else (scope.id,), (supplier_id,),
                    f"{count} invoices registered on {on.isoformat()}, against {average:.2f} a day before",
                    {"date": on.isoformat(), "invoices": count, "daily_average": round(average, 2)}))
    if scope is None:
        return flags
    return [flag for flag in flags if flag.evidence["date"] == _as_date(scope.created_at).isoformat()]


def circular_flows(scope: Invoice | None) -> list[Flag]:
    there, back = aliased(Invoice), aliased(Invoice)
    statement = (
        select(there.id, back.id, there.supplier_id, there.buyer_id, there.issue_date, back.issue_date)
        .join(back, and_(back.supplier_id == there.buyer_id, back.buyer_id == there.supplier_id))
        .where(there.parent_id.is_(None), back.parent_id.is_(None), there.status.in_(LIVE_STATUSES),
               back.status.in_(LIVE_STATUSES), there.supplier_id < there.buyer_id)
        .order_by(there.id, back.id)
    )
    if scope is not None:
        statement = statement.where((there.id == scope.id) | (back.id == scope.id))
    flags = []
    for there_id, back_id, a_id, b_id, there_issued, back_issued in db.session.execute(statement):
        gap = abs((there_issued - back_issued).days)
        if gap <= CIRCULAR_WINDOW_DAYS:
            flags.append(Flag(
                FlagKind.CIRCULAR_FLOW, (there_id, back_id), (a_id, b_id),
                f"two organisations invoiced each other {gap} days apart",
                {"days_apart": gap, "related_invoice_ids": [there_id, back_id]}))
    return flags


def splits_returned_to_origin(scope: Invoice | None) -> list[Flag]:
    statement = (select(Invoice.id, Invoice.receivable_id, Invoice.supplier_id, Organisation.chain_address)
                 .join(Organisation, Organisation.id == Invoice.supplier_id)
                 .where(Invoice.parent_id.is_not(None), Invoice.receivable_id.is_not(None)))
    if scope is not None:
        statement = statement.where(Invoice.id == scope.id)
    parts = {receivable_id: (invoice_id, supplier_id, origin)
             for invoice_id, receivable_id, supplier_id, origin in db.session.execute(statement)}
    if not parts:
        return []
    flags = []
    # Only transfers (not mints) to an origin can be one: the registry's every other Transfer
    # (a mint per invoice, each sale to a financier) stays in the database.
    origins = {origin for _, _, origin in parts.values()}
    transfers = db.session.scalars(
        select(ChainEvent).where(ChainEvent.contract == ContractName.RECEIVABLE_REGISTRY, ChainEvent.event == "Transfer",
                                 ChainEvent.args["from"].as_string() != ZERO_ADDRESS,
                                 ChainEvent.args["to"].as_string().in_(origins))
        .order_by(ChainEvent.block_number, ChainEvent.log_index))
    for event in transfers:
        part = parts.get(receivable_hex(int(event.args["tokenId"])))
        if part is None or event.args["from"] == ZERO_ADDRESS or event.args["to"] != part[2]:
            continue
        invoice_id, supplier_id, _ = part
        flags.append(Flag(
            FlagKind.SPLIT_RETURNED_TO_ORIGIN, (invoice_id,), (supplier_id,),
            "a split part was transferred back to the supplier that issued the receivable",
            {"tx_hash": event.tx_hash, "block_number": event.block_number}))
    return flags


def fast_confirmations(scope: Invoice | None) -> list[Flag]:
    registration, confirmation = aliased(ChainTransaction), aliased(ChainTransaction)
    carrier = aliased(ChainTransaction)
    # A registration batched into registerBatch was mined when its carrier was.
    registered_at = func.coalesce(carrier.mined_at, registration.mined_at, type_=UTCDateTime())
    statement = (
        select(Invoice.id, Invoice.buyer_id, registered_at, confirmation.created_at)
        .join(registration, and_(registration.invoice_id == Invoice.id, registration.function == "register"))
        .outerjoin(carrier, carrier.id == registration.carried_by_id)
        .join(confirmation, and_(confirmation.invoice_id == Invoice.id, confirmation.function == "confirm",
                                 confirmation.status != ChainTransactionStatus.FAILED))
        .where(registered_at.is_not(None))
        .order_by(Invoice.id)
    )
    if scope is not None:
        statement = statement.where(Invoice.id == scope.id)
    flags = []
    for invoice_id, buyer_id, mined_at, asked_at in db.session.execute(statement):
        seconds = (asked_at - mined_at).total_seconds()
        if seconds < FAST_CONFIRMATION_SECONDS:
            flags.append(Flag(
                FlagKind.FAST_CONFIRMATION, (invoice_id,), (buyer_id,),
                f"confirmed {max(seconds, 0):.0f} s after its registration was mined",
                {"seconds": round(max(seconds, 0), 1)}))
    return flags


def _about(flags: list[Flag], scope: Invoice | None) -> list[Flag]:
    return flags if scope is None else [flag for flag in flags if (scope.parent_id or scope.id) in flag.invoice_ids
                                        or scope.id in flag.invoice_ids]


def _utc_day(column: Any) -> Any:
    """The UTC calendar day of a timestamp column. PostgreSQL's date() of a timestamptz is the
    day in the session's time zone (a server in Asia/Shanghai moves every evening after 16:00
    UTC to the next day), so the instant is read in UTC first; SQLite stores UTC already."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: date | datetime | str) -> date:
    """func.date gives a date on PostgreSQL and an ISO string on SQLite."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(value)
