"""Anti-money-laundering alerts on settlement-token movements (issue 6 §4), for review.

Computed from the token's indexed Transfer events, each timed by when its transaction was mined
(ledger.timed_events). An account's movements are what it sends (transfers, and burns against
withdrawals) and what is minted to it against deposits. Two patterns, thresholds in the config:

- LARGE_MOVEMENT: one movement of at least AML_LARGE_TRANSFER_MINOR;
- STRUCTURING: at least AML_STRUCTURING_MIN_COUNT movements of one kind (deposits, withdrawals or
  transfers) of one account within
  AML_STRUCTURING_WINDOW_HOURS, each at least half the large-movement line and under it, adding
  up to the line or more: a large amount cut into pieces that each stay under it. A run of such
  movements is one alert, from its first movement to the last within the window.

Each alert has a key naming its kind and transactions, so a person's review (cleared as an
ordinary payment, or reported to the financial intelligence unit) stays with it. The operator
reviews; the operator and the auditor read.
"""
from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import AmlAlertReview, AmlAlertStatus, ContractName, Organisation
from backend.services import audit
from backend.services.actors import Actor
from backend.services.errors import InvalidInput, InvalidState, NotFound
from backend.services.ledger import timed_events
from backend.services.permissions import Action, authorize
from backend.services.transaction import atomic

ZERO_ADDRESS = "0x" + "0" * 40
REVIEW_SUBJECT = "aml_alert_review"


class AlertKind(enum.StrEnum):
    LARGE_MOVEMENT = "large_movement"
    STRUCTURING = "structuring"


class MovementKind(enum.StrEnum):
    DEPOSIT = "deposit"  # minted to the account against a deposit
    WITHDRAWAL = "withdrawal"  # burned from the account against a withdrawal
    TRANSFER = "transfer"  # sent by the account


@dataclass(frozen=True)
class Movement:
    account: str  # the ledger address whose money moved
    kind: MovementKind
    counterparty: str  # the other side (the zero address for a mint or a burn)
    amount_minor: int
    at: datetime
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class AmlAlert:
    key: str
    kind: AlertKind
    account: str
    organisation_id: int | None
    movements: tuple[Movement, ...]
    review: AmlAlertReview | None

    @property
    def total_minor(self) -> int:
        return sum(movement.amount_minor for movement in self.movements)

    @property
    def status(self) -> str:
        return "open" if self.review is None else str(self.review.status)


def token_alerts(actor: Actor, *, status: str | None = None) -> list[AmlAlert]:
    """Every alert, oldest first (or those `open`, `cleared` or `reported`)."""
    authorize(actor, Action.VIEW_AML_ALERTS)
    alerts = _alerts()
    return alerts if status is None else [alert for alert in alerts if alert.status == status]


@atomic
def review_alert(actor: Actor, alert_key: str, *, reported: bool, note: str) -> AmlAlert:
    """Records the operator's review of an open alert: reported, or cleared; the note says why."""
    authorize(actor, Action.REVIEW_AML_ALERT)
    note = (note or "").strip()
    if not note:
        raise InvalidInput("say why", errors={"note": ["required: what was checked"]})
    alert = next((alert for alert in _alerts() if alert.key == alert_key), None)
    if alert is None:
        raise NotFound("no such alert")
    if alert.review is not None:
        raise InvalidState(f"the alert was reviewed already ({alert.review.status})")
    review = AmlAlertReview(alert_key=alert_key, status=AmlAlertStatus.REPORTED if reported else AmlAlertStatus.CLEARED,
                            note=note, reviewed_by=actor.person)
    try:
        # The unique key decides between two reviews at once: the second is refused like a
        # later one, not failed.
        with db.session.begin_nested():
            db.session.add(review)
    except IntegrityError:
        raise InvalidState("the alert was reviewed already") from None
    audit.record(actor, Action.REVIEW_AML_ALERT, REVIEW_SUBJECT, review.id,
                 after={"alert_key": alert_key, "status": str(review.status), "note": note})
    return AmlAlert(alert.key, alert.kind, alert.account, alert.organisation_id, alert.movements, review)


def _alerts() -> list[AmlAlert]:
    config = current_app.config
    line = config["AML_LARGE_TRANSFER_MINOR"]
    window = timedelta(hours=config["AML_STRUCTURING_WINDOW_HOURS"])
    minimum = config["AML_STRUCTURING_MIN_COUNT"]
    movements = _movements()
    found: list[tuple[AlertKind, tuple[Movement, ...]]] = [
        (AlertKind.LARGE_MOVEMENT, (movement,)) for movement in movements if movement.amount_minor >= line]
    by_account: dict[tuple[str, MovementKind], list[Movement]] = defaultdict(list)
    for movement in movements:
        if line / 2 <= movement.amount_minor < line:
            by_account[(movement.account, movement.kind)].append(movement)
    for pieces in by_account.values():
        found += [(AlertKind.STRUCTURING, run) for run in _structured_runs(pieces, window, minimum, line)]
    found.sort(key=lambda alert: (alert[1][0].at, alert[1][0].tx_hash, alert[1][0].log_index, alert[0]))

    keys = [_key(kind, run) for kind, run in found]
    reviews = {review.alert_key: review for review in db.session.scalars(
        select(AmlAlertReview).where(AmlAlertReview.alert_key.in_(keys)))} if keys else {}
    accounts = {run[0].account for _, run in found}
    organisations = {address: organisation_id for address, organisation_id in db.session.execute(
        select(Organisation.chain_address, Organisation.id).where(Organisation.chain_address.in_(accounts)))}
    return [AmlAlert(key, kind, run[0].account, organisations.get(run[0].account), run, reviews.get(key))
            for key, (kind, run) in zip(keys, found)]


def _movements() -> list[Movement]:
    """Every token movement, in the order it was mined."""
    movements = []
    for event, at in db.session.execute(timed_events(ContractName.SETTLEMENT_TOKEN, "Transfer")):
        sender, recipient = event.args["from"], event.args["to"]
        # A mint moves money into the recipient's account from a deposit; anything else is
        # the sender's movement.
        if sender == ZERO_ADDRESS:
            account, kind, counterparty = recipient, MovementKind.DEPOSIT, sender
        else:
            kind = MovementKind.WITHDRAWAL if recipient == ZERO_ADDRESS else MovementKind.TRANSFER
            account, counterparty = sender, recipient
        movements.append(Movement(account, kind, counterparty, int(event.args["value"]), at, event.tx_hash,
                                  event.log_index))
    movements.sort(key=lambda movement: (movement.at, movement.tx_hash, movement.log_index))
    return movements


def _structured_runs(pieces: list[Movement], window: timedelta, minimum: int,
                     line: int) -> list[tuple[Movement, ...]]:
    """The runs of an account's under-the-line movements that look structured: each run starts
    at a movement and takes every later one within the window; a run that qualifies is an alert
    and the next run starts after it."""
    runs = []
    start = 0
    while start < len(pieces):
        # The pieces are in time order: the run ends at the first one beyond the window (not a
        # scan of every later piece for each start, which thousands of pieces make quadratic).
        end = start
        while end < len(pieces) and pieces[end].at - pieces[start].at <= window:
            end += 1
        run = pieces[start:end]
        if len(run) >= minimum and sum(movement.amount_minor for movement in run) >= line:
            runs.append(tuple(run))
            start += len(run)
        else:
            start += 1
    return runs


def _key(kind: AlertKind, run: tuple[Movement, ...]) -> str:
    first, last = run[0], run[-1]
    if len(run) == 1:
        return f"{kind}:{first.tx_hash}:{first.log_index}"
    return f"{kind}:{first.tx_hash}:{first.log_index}:{last.tx_hash}:{last.log_index}"
