"""A financier's exposure limits per buyer and per supplier (issue 6 §1), and the check every
offer and every outright funding passes.

What a financier has at stake with a buyer (or a supplier) is the outstanding face value of
that buyer's (or supplier's) receivables it holds unpaid, plus those it has offered for and not
yet bought (its pending and open offers) and those it is funding outright (a fundRequest on its
way to the ledger, which changes nothing until mined and indexed): once an offer is accepted or
a funding indexed, the receivable is simply held. An offer or a funding is refused with ExposureLimitExceeded when the receivable's
outstanding amount would take the stake above a limit; a receivable already counted (a revised
offer) is not counted twice. Only the settlement currency is ever financed, so limits are in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ContractName,
    ExposureLimit,
    FinancingRequest,
    Invoice,
    InvoiceStatus,
    Offer,
    OfferStatus,
    Organisation,
    Side,
)
from backend.money import AmountError, shown, to_minor_units
from backend.services import audit
from backend.services.actors import Actor
from backend.services.errors import Duplicate, InvalidInput, InvalidState, NotFound
from backend.services.ledger import settlement_currency
from backend.services.organisations import get_organisation
from backend.services.outbox import in_flight_clause
from backend.services.permissions import Action, authorize
from backend.services.transaction import atomic

LIMIT_SUBJECT = "exposure_limit"
# Offers that commit the financier until the ledger settles or drops them.
COMMITTED_OFFER_STATUSES = (OfferStatus.PENDING, OfferStatus.OPEN)


class ExposureLimitExceeded(InvalidState):
    """The offer or funding would put more at stake with a buyer or supplier than the
    financier's own limit allows."""

    code = "exposure-limit-exceeded"


@dataclass(frozen=True)
class Exposure:
    """One limit and what is at stake under it now, in the settlement currency's minor units."""

    limit: ExposureLimit
    at_stake_minor: int

    @property
    def headroom_minor(self) -> int:
        return self.limit.limit_minor - self.at_stake_minor


def _side_column(side: Side):  # type: ignore[no-untyped-def]
    return Invoice.buyer_id if side is Side.BUYER else Invoice.supplier_id


def _at_stake_invoices(financier_id: int) -> Select[tuple[int]]:
    """The ids of the receivables the financier holds unpaid, has a committed offer for, or is
    funding outright (its fundRequest not yet indexed: the receivable is not held until it is)."""
    offered = (
        select(FinancingRequest.invoice_id)
        .join(Offer, Offer.financing_request_id == FinancingRequest.id)
        .where(Offer.financier_id == financier_id, Offer.status.in_(COMMITTED_OFFER_STATUSES))
    )
    funding = select(ChainTransaction.invoice_id).where(
        ChainTransaction.signer_id == financier_id, ChainTransaction.contract == ContractName.FINANCING,
        ChainTransaction.function == "fundRequest", in_flight_clause())
    held = select(Invoice.id).where(Invoice.holder_id == financier_id, Invoice.status == InvoiceStatus.CONFIRMED)
    return held.union(offered, funding)


def at_stake_minor(financier_id: int, counterparty_id: int, side: Side, *, excluding_invoice_id: int | None = None) -> int:
    """The outstanding face value at stake with the counterparty (see the module's docstring)."""
    invoices = _at_stake_invoices(financier_id).subquery()
    clauses = [Invoice.id.in_(select(invoices.c.id)), _side_column(side) == counterparty_id,
               Invoice.currency == settlement_currency()]
    if excluding_invoice_id is not None:
        clauses.append(Invoice.id != excluding_invoice_id)
    total = db.session.scalar(select(func.coalesce(func.sum(Invoice.amount_minor - Invoice.repaid_minor), 0))
                              .where(*clauses))
    return int(total)


def require_within_limits(financier: Organisation, invoice: Invoice) -> None:
    """Raises ExposureLimitExceeded when taking on `invoice` would break one of the financier's
    limits on its buyer or its supplier. The limits are locked (on PostgreSQL) until the caller's
    transaction ends, so two offers at once cannot both slip under the same limit."""
    limits = db.session.scalars(
        select(ExposureLimit)
        .where(ExposureLimit.financier_id == financier.id,
               or_((ExposureLimit.side == Side.BUYER) & (ExposureLimit.counterparty_id == invoice.buyer_id),
                   (ExposureLimit.side == Side.SUPPLIER) & (ExposureLimit.counterparty_id == invoice.supplier_id)))
        .order_by(ExposureLimit.id)
        .with_for_update()
    ).all()
    adding = invoice.amount_minor - invoice.repaid_minor
    currency = settlement_currency()
    errors: list[str] = []
    for limit in limits:
        at_stake = at_stake_minor(financier.id, limit.counterparty_id, limit.side, excluding_invoice_id=invoice.id)
        if at_stake + adding > limit.limit_minor:
            errors.append(
                f"{shown(at_stake + adding, currency)} would be at stake with the {limit.side} {limit.counterparty.name}, "
                f"above the limit of {shown(limit.limit_minor, currency)} ({shown(at_stake, currency)} already)")
    if errors:
        raise ExposureLimitExceeded("; ".join(errors), errors={"exposure": errors})


@atomic
def set_exposure_limit(actor: Actor, counterparty_id: int, side: Side, *, limit: Decimal | str,
                       currency: str) -> ExposureLimit:
    """Sets (or changes) the financier's limit on one buyer or one supplier. Existing holdings
    above a lowered limit stay; only new offers and fundings are refused."""
    authorize(actor, Action.MANAGE_EXPOSURE_LIMITS)
    counterparty = get_organisation(actor, counterparty_id)
    errors: dict[str, list[str]] = {}
    limit_minor = None
    if currency != settlement_currency():
        errors["currency"] = [f"limits are in the settlement currency, {settlement_currency()}"]
    else:
        try:
            limit_minor = to_minor_units(limit, currency)
        except AmountError as exc:
            errors["limit"] = [str(exc)]
    if counterparty.id == actor.organisation.id:
        errors["counterparty_id"] = ["a limit is on another organisation"]
    if errors:
        raise InvalidInput("the exposure limit is not valid", errors=errors)
    assert limit_minor is not None

    row = _own_limit(actor, counterparty.id, side)
    before = None if row is None else _limit_state(row)
    if row is None:
        row = ExposureLimit(financier=actor.organisation, counterparty=counterparty, side=side,
                            limit_minor=limit_minor)
        try:
            # The unique limit decides between two requests setting a new one at once: the
            # second is refused, not failed.
            with db.session.begin_nested():
                db.session.add(row)
        except IntegrityError:
            raise Duplicate(f"a limit on the {side} {counterparty.name} was set at the same moment; "
                            "read it and set it again") from None
    row.limit_minor = limit_minor
    db.session.flush()
    audit.record(actor, Action.MANAGE_EXPOSURE_LIMITS, LIMIT_SUBJECT, row.id, before=before, after=_limit_state(row))
    return row


@atomic
def remove_exposure_limit(actor: Actor, counterparty_id: int, side: Side) -> None:
    """Removes the financier's limit on one buyer or one supplier."""
    authorize(actor, Action.MANAGE_EXPOSURE_LIMITS)
    row = _own_limit(actor, counterparty_id, side)
    if row is None:
        raise NotFound(f"no exposure limit on the {side} {counterparty_id}")
    audit.record(actor, Action.MANAGE_EXPOSURE_LIMITS, LIMIT_SUBJECT, row.id, before=_limit_state(row), after=None)
    db.session.delete(row)


def exposures(actor: Actor) -> list[Exposure]:
    """The financier's limits, each with what is at stake under it now, by side and counterparty."""
    authorize(actor, Action.VIEW_EXPOSURE_LIMITS)
    rows = db.session.scalars(
        select(ExposureLimit).where(ExposureLimit.financier_id == actor.organisation.id)
        .order_by(ExposureLimit.side, ExposureLimit.counterparty_id)
    ).all()
    return [Exposure(row, at_stake_minor(actor.organisation.id, row.counterparty_id, row.side)) for row in rows]


def _own_limit(actor: Actor, counterparty_id: int, side: Side) -> ExposureLimit | None:
    return db.session.scalar(select(ExposureLimit).where(
        ExposureLimit.financier_id == actor.organisation.id, ExposureLimit.counterparty_id == counterparty_id,
        ExposureLimit.side == side))


def _limit_state(row: ExposureLimit) -> dict[str, object]:
    return {"counterparty_id": row.counterparty_id, "side": str(row.side), "limit_minor": row.limit_minor}
