"""Risk profiles of suppliers and buyers, from their history on the ledger (issue 6 §1).

A profile describes one organisation on one side of its invoices: as the supplier that issued
them, or as the buyer that owes them. Its figures come from the indexed projections only
(invoice status, repayments with their block times), never from what a participant declares:

- receivables, volume: the confirmed receivables as issued (split parts are not counted again),
  in the settlement currency; a receivable counts once its buyer confirmed it (confirmed, split
  or repaid);
- matured: the receivables (split parts included, split parents not) whose due date has passed,
  or which were repaid in full before it; on time: repaid in full on or before the due date
  (UTC calendar days; the last repayment's block time decides);
- average days late: over the matured receivables, the days from the due date to full
  repayment, or to today while still unpaid (0 for those paid on time);
- dispute rate: disputed ÷ answered (confirmed, split, repaid or disputed) invoices as issued;
- concentration: the share of the volume owed by (or owed to) the largest counterparty;
- tenure: days since the operator registered the organisation.

The score (0 to 100) is a sum of stated contributions, each listed with its factor, so that a
financier can see why a profile scores what it does. SCORE_RULES documents each one; see
docs/risk.md for worked examples.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select

from backend.extensions import db
from backend.models import (
    ChainEvent,
    ContractName,
    Invoice,
    InvoiceStatus,
    Organisation,
    Repayment,
    RepaymentStatus,
    Role,
    Side,
)
from backend.services.actors import Actor
from backend.services.errors import NotFound
from backend.services.invoices import event_key
from backend.services.ledger import ledger_now, settlement_currency, timed_events
from backend.services.permissions import Action, authorize, reads_everything


# Who may read every organisation's profile besides the readers of everything: financiers, who
# price on them.
PROFILE_READER_ROLES = Role.FINANCIER
# Statuses of an invoice its buyer confirmed, and of one the buyer answered either way.
CONFIRMED_STATUSES = (InvoiceStatus.CONFIRMED, InvoiceStatus.SPLIT, InvoiceStatus.REPAID)
ANSWERED_STATUSES = (*CONFIRMED_STATUSES, InvoiceStatus.DISPUTED)
# Receivables that are owed as such (a split parent is owed through its parts).
OWED_STATUSES = (InvoiceStatus.CONFIRMED, InvoiceStatus.REPAID)

BASE_POINTS = 55.0
ON_TIME_POINTS = 25.0  # from -25 (none on time) to +25 (all on time); 0 at one half
LATENESS_POINTS = 15.0  # taken away in full at LATENESS_CAP_DAYS late on average
LATENESS_CAP_DAYS = 30
DISPUTE_POINTS = 20.0  # taken away in full when every answered invoice was disputed
CONCENTRATION_POINTS = 20.0  # per unit of share above CONCENTRATION_FREE_SHARE (at most 10)
CONCENTRATION_FREE_SHARE = 0.5
TENURE_POINTS = 10.0  # in full after TENURE_FULL_DAYS
TENURE_FULL_DAYS = 365
TRACK_RECORD_POINTS = 10.0  # in full after TRACK_RECORD_FULL_RECEIVABLES confirmed receivables
TRACK_RECORD_FULL_RECEIVABLES = 50

# How each factor turns into points, as a reader of a profile is told.
SCORE_RULES: dict[str, str] = {
    "base": f"every profile starts at {BASE_POINTS:g}",
    "on_time": f"(on-time rate - 0.5) x {2 * ON_TIME_POINTS:g}; 0 before any receivable matured",
    "lateness": f"-{LATENESS_POINTS:g} x min(average days late, {LATENESS_CAP_DAYS}) / {LATENESS_CAP_DAYS}",
    "disputes": f"-{DISPUTE_POINTS:g} x dispute rate; 0 before any invoice was answered",
    "concentration": f"-{CONCENTRATION_POINTS:g} x (largest counterparty's share - {CONCENTRATION_FREE_SHARE:g}),"
                     " when above it",
    "tenure": f"+{TENURE_POINTS:g} x min(tenure days, {TENURE_FULL_DAYS}) / {TENURE_FULL_DAYS}",
    "track_record": f"+{TRACK_RECORD_POINTS:g} x min(confirmed receivables, {TRACK_RECORD_FULL_RECEIVABLES})"
                    f" / {TRACK_RECORD_FULL_RECEIVABLES}",
}


@dataclass(frozen=True)
class Contribution:
    """One factor's part of the score: what was measured, and the points it adds (or takes)."""

    factor: str  # a key of SCORE_RULES
    measured: float | int | None  # None: nothing to measure yet
    points: float
    rule: str


@dataclass(frozen=True)
class RiskProfile:
    organisation_id: int
    side: Side
    currency: str
    receivables: int
    volume_minor: int
    matured: int
    on_time: int
    on_time_rate: float | None
    average_days_late: float | None
    answered: int
    disputed: int
    dispute_rate: float | None
    largest_counterparty_id: int | None
    concentration: float | None
    tenure_days: int
    score: int
    contributions: list[Contribution]


def risk_profile(actor: Actor, organisation_id: int, side: Side) -> RiskProfile:
    """The profile of one organisation as a supplier or a buyer (financiers, the operator and
    the auditor see every profile; an organisation sees its own)."""
    _authorize_profiles(actor, {organisation_id})
    profiles = risk_profiles(actor, [organisation_id], side)
    if organisation_id not in profiles:
        raise NotFound("no such organisation")
    return profiles[organisation_id]


def risk_profiles(actor: Actor, organisation_ids: Collection[int], side: Side) -> dict[int, RiskProfile]:
    """The profiles of several organisations on one side, by organisation id, in a few queries
    (the marketplace shows one beside each receivable). Unknown ids are left out."""
    ids = set(organisation_ids)
    _authorize_profiles(actor, ids)
    registered = dict(db.session.execute(
        select(Organisation.id, Organisation.created_at).where(Organisation.id.in_(ids))).all())
    if not registered:
        return {}
    own = Invoice.supplier_id if side is Side.SUPPLIER else Invoice.buyer_id
    counterparty = Invoice.buyer_id if side is Side.SUPPLIER else Invoice.supplier_id
    currency = settlement_currency()
    today = ledger_now().date()

    issued = db.session.execute(
        select(own, counterparty, Invoice.status, Invoice.amount_minor)
        .where(own.in_(registered), Invoice.parent_id.is_(None), Invoice.currency == currency,
               Invoice.status.in_(ANSWERED_STATUSES))
    ).all()
    last_repayment = (
        select(Repayment.invoice_id, func.max(Repayment.recorded_at).label("repaid_at"))
        .where(Repayment.status == RepaymentStatus.RECORDED)
        .group_by(Repayment.invoice_id)
        .subquery()
    )
    owed = db.session.execute(
        select(own, Invoice.status, Invoice.due_date, last_repayment.c.repaid_at, Invoice.receivable_id)
        .outerjoin(last_repayment, last_repayment.c.invoice_id == Invoice.id)
        .where(own.in_(registered), Invoice.currency == currency, Invoice.status.in_(OWED_STATUSES))
    ).all()
    repaid_elsewhere = _repaid_at_from_events(
        [receivable_id for _, status, _, repaid_at, receivable_id in owed
         if status == InvoiceStatus.REPAID and repaid_at is None and receivable_id is not None])

    history: dict[int, _History] = defaultdict(_History)
    for organisation_id, other_id, status, amount_minor in issued:
        history[organisation_id].count_issued(other_id, InvoiceStatus(status), amount_minor)
    for organisation_id, status, due_date, repaid_at, receivable_id in owed:
        if status == InvoiceStatus.REPAID and repaid_at is None:
            repaid_at = repaid_elsewhere.get(receivable_id)
        repaid_on = repaid_at.date() if status == InvoiceStatus.REPAID and repaid_at is not None else None
        history[organisation_id].count_owed(due_date, repaid_on, today)
    return {
        organisation_id: history[organisation_id].profile(
            organisation_id, side, currency, tenure_days=max(0, (today - created_at.date()).days))
        for organisation_id, created_at in registered.items()
    }


def _repaid_at_from_events(receivable_ids: list[str]) -> dict[str, datetime]:
    """When each of these receivables, repaid with no Anchorline repayment of its own (a write
    made outside Anchorline), was last repaid: its RepaymentRecorded events' time
    (ledger.timed_events). Without this, a repaid receivable would count as unpaid, later every day."""
    if not receivable_ids:
        return {}
    recorded = timed_events(ContractName.RECEIVABLE_REGISTRY, "RepaymentRecorded")
    # Events carry receivable ids as decimal strings (uint256 is beyond JSON's exact integers).
    keys = {event_key(receivable_id): receivable_id for receivable_id in receivable_ids}
    repaid_at: dict[str, datetime] = {}
    for event, at in db.session.execute(recorded.where(ChainEvent.args["id"].as_string().in_(keys))):
        receivable_id = keys[event.args["id"]]
        repaid_at[receivable_id] = max(at, repaid_at.get(receivable_id, at))
    return repaid_at


def profiles_of_parties(actor: Actor, invoices: Collection[Invoice]) -> dict[Side, dict[int, RiskProfile]]:
    """The profiles of these invoices' suppliers (as suppliers) and buyers (as buyers), by
    organisation id: one risk_profiles call per side (a market page shows both beside each)."""
    return {
        Side.SUPPLIER: risk_profiles(actor, {invoice.supplier_id for invoice in invoices}, Side.SUPPLIER),
        Side.BUYER: risk_profiles(actor, {invoice.buyer_id for invoice in invoices}, Side.BUYER),
    }


def _authorize_profiles(actor: Actor, organisation_ids: set[int]) -> None:
    """Financiers (who price on them), the operator and the auditor see every profile; any other
    organisation its own only."""
    authorize(actor, Action.VIEW_RISK_PROFILE)
    if reads_everything(actor) or actor.has_any(PROFILE_READER_ROLES):
        return
    if organisation_ids - {actor.organisation.id}:
        raise NotFound("no such organisation")


@dataclass
class _History:
    receivables: int = 0
    volume_minor: int = 0
    answered: int = 0
    disputed: int = 0
    matured: int = 0
    on_time: int = 0
    days_late: int = 0
    volume_by_counterparty: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def count_issued(self, counterparty_id: int, status: InvoiceStatus, amount_minor: int) -> None:
        self.answered += 1
        if status == InvoiceStatus.DISPUTED:
            self.disputed += 1
            return
        self.receivables += 1
        self.volume_minor += amount_minor
        self.volume_by_counterparty[counterparty_id] += amount_minor

    def count_owed(self, due_date: date, repaid_on: date | None, today: date) -> None:
        if repaid_on is None and due_date >= today:
            return  # not due yet, nothing to judge
        self.matured += 1
        settled_on = repaid_on if repaid_on is not None else today
        if settled_on <= due_date:
            self.on_time += 1
        else:
            self.days_late += (settled_on - due_date).days

    def profile(self, organisation_id: int, side: Side, currency: str, *, tenure_days: int) -> RiskProfile:
        on_time_rate = self.on_time / self.matured if self.matured else None
        average_days_late = self.days_late / self.matured if self.matured else None
        dispute_rate = self.disputed / self.answered if self.answered else None
        largest_id, concentration = None, None
        if self.volume_minor:
            largest_id = max(self.volume_by_counterparty, key=lambda other: (self.volume_by_counterparty[other], -other))
            concentration = self.volume_by_counterparty[largest_id] / self.volume_minor
        contributions = score_contributions(
            on_time_rate=on_time_rate, average_days_late=average_days_late, dispute_rate=dispute_rate,
            concentration=concentration, tenure_days=tenure_days, receivables=self.receivables)
        score = round(min(100.0, max(0.0, sum(part.points for part in contributions))))
        return RiskProfile(
            organisation_id=organisation_id, side=side, currency=currency, receivables=self.receivables,
            volume_minor=self.volume_minor, matured=self.matured, on_time=self.on_time, on_time_rate=on_time_rate,
            average_days_late=average_days_late, answered=self.answered, disputed=self.disputed,
            dispute_rate=dispute_rate, largest_counterparty_id=largest_id, concentration=concentration,
            tenure_days=tenure_days, score=score, contributions=contributions)


def score_contributions(
    *,
    on_time_rate: float | None,
    average_days_late: float | None,
    dispute_rate: float | None,
    concentration: float | None,
    tenure_days: int,
    receivables: int,
) -> list[Contribution]:
    """Each factor's points (SCORE_RULES), rounded to a tenth; the score is their sum, kept
    within 0 to 100 and rounded."""

    def part(factor: str, measured: float | int | None, points: float) -> Contribution:
        return Contribution(factor, measured, round(points, 1) + 0.0, SCORE_RULES[factor])

    return [
        part("base", None, BASE_POINTS),
        part("on_time", on_time_rate, 0.0 if on_time_rate is None else (on_time_rate - 0.5) * 2 * ON_TIME_POINTS),
        part("lateness", average_days_late, 0.0 if average_days_late is None
             else -LATENESS_POINTS * min(average_days_late, LATENESS_CAP_DAYS) / LATENESS_CAP_DAYS),
        part("disputes", dispute_rate, 0.0 if dispute_rate is None else -DISPUTE_POINTS * dispute_rate),
        part("concentration", concentration, 0.0 if concentration is None
             else -CONCENTRATION_POINTS * max(0.0, concentration - CONCENTRATION_FREE_SHARE)),
        part("tenure", tenure_days, TENURE_POINTS * min(tenure_days, TENURE_FULL_DAYS) / TENURE_FULL_DAYS),
        part("track_record", receivables,
             TRACK_RECORD_POINTS * min(receivables, TRACK_RECORD_FULL_RECEIVABLES) / TRACK_RECORD_FULL_RECEIVABLES),
    ]
