"""Webhooks: organisations' endpoints, and the events published to them.

`publish` is how the rest of Anchorline announces something that happened (the indexer, as it
applies a ledger event; the schedules, for reminders): one delivery row per active endpoint of
each organisation concerned that subscribed to the event type, written in the caller's database
transaction. The event id is derived from `event_key`, the name of what happened (for example
`chain:31337:<tx hash>:<log index>:invoice.confirmed`), so publishing the same happening again
(a reindex, a retried task) adds nothing.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from backend.extensions import db
from backend.models import Organisation, WebhookDelivery, WebhookEndpoint
from backend.models.types import utcnow

# Names event ids: uuid5(EVENT_NAMESPACE, event_key).
EVENT_NAMESPACE = uuid.UUID("6f1c1a52-3b8e-4d43-9a37-5b1f4c0de001")

# Every event type an endpoint may subscribe to, and what it announces.
EVENT_TYPES: dict[str, str] = {
    "invoice.registered": "a receivable was registered on the ledger",
    "invoice.confirmed": "the buyer confirmed a payable",
    "invoice.disputed": "the buyer disputed a payable",
    "invoice.cancelled": "the supplier cancelled a receivable",
    "invoice.split": "a receivable was split into parts",
    "invoice.transferred": "a receivable changed holder",
    "invoice.repayment_recorded": "the buyer repaid (part of) a receivable",
    "invoice.repaid": "a receivable was repaid in full",
    "invoice.due": "a receivable reached its maturity date unpaid",
    "invoice.overdue": "a receivable was marked overdue on the ledger",
    "invoice.defaulted": "a receivable was marked defaulted on the ledger",
    "invoice.maturity_reminder": "a payable matures in the configured number of days",
    "financing.requested": "a holder asked for financing",
    "financing.cancelled": "a financing request was cancelled",
    "financing.expired": "a financing request or offer expired",
    "financing.offer_made": "a financier made or revised an offer",
    "financing.offer_withdrawn": "a financier withdrew an offer",
    "financing.funded": "a receivable was financed (delivery versus payment settled)",
    "token.minted": "settlement tokens were minted against a deposit",
    "token.burned": "settlement tokens were burned against a withdrawal",
    "transaction.reverted": "a ledger write was refused by the ledger",
}


def event_id(event_key: str) -> str:
    """The event id receivers dedupe on: the same for the same `event_key`, always."""
    return str(uuid.uuid5(EVENT_NAMESPACE, event_key))


def publish(
    event_type: str,
    *,
    organisations: Iterable[Organisation | None],
    payload: dict[str, Any],
    event_key: str,
    occurred_at: datetime | None = None,
) -> int:
    """Queue `event_type` for every active endpoint of `organisations` (None entries and
    repeats are skipped) that subscribed to it. Returns how many deliveries were added."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    organisation_ids = {organisation.id for organisation in organisations if organisation is not None}
    if not organisation_ids:
        return 0
    endpoints = db.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.organisation_id.in_(organisation_ids),
                                      WebhookEndpoint.active.is_(True))
    )
    the_event_id = event_id(event_key)
    added = 0
    for endpoint in endpoints:
        if event_type not in endpoint.event_types:
            continue
        exists = db.session.scalar(
            select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id,
                                             WebhookDelivery.event_id == the_event_id)
        )
        if exists is not None:
            continue
        db.session.add(WebhookDelivery(
            endpoint=endpoint,
            event_id=the_event_id,
            event_type=event_type,
            payload=payload,
            occurred_at=occurred_at or utcnow(),
        ))
        added += 1
    return added
