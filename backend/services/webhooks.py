"""Webhooks: organisations' endpoints, the events published to them, and how each delivery
is signed and retried.

`publish` is how the rest of Anchorline announces something that happened (the indexer, as it
applies a ledger event; the schedules, for reminders): one delivery row per active endpoint of
each organisation concerned that subscribed to the event type, written in the caller's database
transaction. The event id is derived from `event_key`, the name of what happened (for example
`chain:31337:<tx hash>:<log index>:invoice.confirmed`), so publishing the same happening again
(a reindex, a retried task) adds nothing.

Financiers and buyers register their endpoints here (an https URL; plain http only to this
machine), choose the event types, and get the signing secret once, when the endpoint is made or
its secret rotated. The delivery worker (workers/webhooks.py) sends each delivery as
`delivery_body`, signed by `signature_header`, and records the outcome with `record_delivered` or
`record_failed`: failures are retried after `retry_delay` until WEBHOOK_MAX_ATTEMPTS, then the
delivery is DEAD and waits for `redeliver`. See docs/webhooks.md for what receivers check.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import Select, delete, select

from backend.extensions import db
from backend.models import Organisation, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from backend.models.types import utcnow
from backend.services import audit
from backend.services.actors import Actor
from backend.services.errors import InvalidInput, InvalidState, NotFound
from backend.services.permissions import Action, authorize, get_authorized, visible_webhook_endpoints
from backend.services.transaction import atomic

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
    "early_payment.offered": "a buyer offered to pay a payable early at a discount, or revised its offer",
    "early_payment.withdrawn": "a buyer withdrew its offer to pay early",
    "early_payment.lapsed": "a buyer's offer to pay early lapsed at its expiry",
    "early_payment.settled": "a holder accepted an early payment: the receivable was repaid in full, discounted",
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


# ---------------------------------------------------------------- endpoints

ENDPOINT_SUBJECT = "webhook_endpoint"
DELIVERY_SUBJECT = "webhook_delivery"
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
SECRET_BYTES = 32
# Plain http is allowed to these hosts only: a receiver on the same machine (tests, the demo).
LOOPBACK_HOSTS = frozenset({"localhost"})


@atomic
def create_endpoint(
    actor: Actor, *, url: str, event_types: list[str], description: str | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint of the actor's organisation, and its signing secret: returned this once."""
    authorize(actor, Action.MANAGE_WEBHOOKS, actor.organisation)
    errors: dict[str, list[str]] = {}
    url = _checked_url(url, errors)
    event_types = _checked_event_types(event_types, errors)
    description = _checked_description(description, errors)
    _raise(errors)
    secret = _new_secret()
    endpoint = WebhookEndpoint(organisation=actor.organisation, url=url, event_types=event_types,
                               description=description, secret=secret, active=True)
    db.session.add(endpoint)
    db.session.flush()
    audit.record(actor, "webhook.create", ENDPOINT_SUBJECT, endpoint.id, after=_snapshot(endpoint))
    return endpoint, secret


def endpoints(actor: Actor) -> Select[tuple[WebhookEndpoint]]:
    """The endpoints the actor may see (its organisation's; the operator's staff and auditors:
    every organisation's), to page through."""
    authorize(actor, Action.VIEW_WEBHOOKS)
    return select(WebhookEndpoint).where(visible_webhook_endpoints(actor))


def get_endpoint(actor: Actor, endpoint_id: int) -> WebhookEndpoint:
    return get_authorized(actor, Action.VIEW_WEBHOOKS, WebhookEndpoint, endpoint_id)


_UNCHANGED: Any = object()


@atomic
def update_endpoint(
    actor: Actor,
    endpoint_id: int,
    *,
    url: str = _UNCHANGED,
    event_types: list[str] = _UNCHANGED,
    description: str | None = _UNCHANGED,
    active: bool = _UNCHANGED,
) -> WebhookEndpoint:
    """Changes what is given of the endpoint's URL, event types, description and whether it is
    active. Deliveries of an inactive endpoint wait, pending, until it is active again."""
    endpoint = get_authorized(actor, Action.MANAGE_WEBHOOKS, WebhookEndpoint, endpoint_id)
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if url is not _UNCHANGED:
        changes["url"] = _checked_url(url, errors)
    if event_types is not _UNCHANGED:
        changes["event_types"] = _checked_event_types(event_types, errors)
    if description is not _UNCHANGED:
        changes["description"] = _checked_description(description, errors)
    if active is not _UNCHANGED:
        changes["active"] = bool(active)
    _raise(errors)
    before = _snapshot(endpoint)
    for name, value in changes.items():
        setattr(endpoint, name, value)
    db.session.flush()
    audit.record(actor, "webhook.update", ENDPOINT_SUBJECT, endpoint.id, before=before, after=_snapshot(endpoint))
    return endpoint


@atomic
def rotate_secret(actor: Actor, endpoint_id: int) -> tuple[WebhookEndpoint, str]:
    """A new signing secret for the endpoint, returned this once; every delivery from now on,
    retries of earlier events included, is signed with it."""
    endpoint = get_authorized(actor, Action.MANAGE_WEBHOOKS, WebhookEndpoint, endpoint_id)
    secret = _new_secret()
    endpoint.secret = secret
    endpoint.updated_at = utcnow()
    audit.record(actor, "webhook.rotate_secret", ENDPOINT_SUBJECT, endpoint.id)
    return endpoint, secret


@atomic
def delete_endpoint(actor: Actor, endpoint_id: int) -> None:
    """Removes the endpoint and its deliveries, sent or not (the audit log keeps that it was)."""
    endpoint = get_authorized(actor, Action.MANAGE_WEBHOOKS, WebhookEndpoint, endpoint_id)
    before = _snapshot(endpoint)
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db.session.delete(endpoint)
    audit.record(actor, "webhook.delete", ENDPOINT_SUBJECT, endpoint_id, before=before)


# ---------------------------------------------------------------- deliveries


def deliveries(
    actor: Actor, endpoint_id: int, *, status: WebhookDeliveryStatus | None = None
) -> Select[tuple[WebhookDelivery]]:
    """One endpoint's deliveries (DEAD: the dead-lettered ones), to page through."""
    endpoint = get_endpoint(actor, endpoint_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status is not None:
        statement = statement.where(WebhookDelivery.status == status)
    return statement


def get_delivery(actor: Actor, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """One delivery of an endpoint the actor may see; NotFound for another endpoint's."""
    return _delivery_of(get_endpoint(actor, endpoint_id), delivery_id)


@atomic
def redeliver(actor: Actor, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """Sends a dead-lettered (or already delivered) event again, as a fresh series of attempts
    from now; receivers dedupe on its event id."""
    endpoint = get_authorized(actor, Action.MANAGE_WEBHOOKS, WebhookEndpoint, endpoint_id)
    delivery = _delivery_of(endpoint, delivery_id)
    if delivery.status == WebhookDeliveryStatus.PENDING:
        raise InvalidState("the delivery is pending already: its next attempt is on its way")
    if not endpoint.active:
        raise InvalidState("the endpoint is inactive: activate it first")
    before = {"status": str(delivery.status), "attempts": delivery.attempts}
    delivery.status = WebhookDeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.last_error = None
    audit.record(actor, "webhook.redeliver", DELIVERY_SUBJECT, delivery.id, before=before,
                 after={"status": str(delivery.status), "attempts": 0})
    return delivery


def _delivery_of(endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise NotFound("no such webhook delivery")
    return delivery


# ---------------------------------------------------------------- sending (for the worker)

# Headers of every delivery.
EVENT_ID_HEADER = "Anchorline-Event-Id"
TIMESTAMP_HEADER = "Anchorline-Timestamp"
SIGNATURE_HEADER = "Anchorline-Signature"
# Retries wait 10 s, 20 s, 40 s, ... at most an hour, each shortened by up to a fifth at random so
# that deliveries that failed together (a receiver's outage) do not all come back at once.
FIRST_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 3_600
RETRY_JITTER = 0.2
# What of a failing receiver's answer is kept in last_error.
MAX_ERROR_LENGTH = 500


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The JSON document POSTed: the event id, its type, when it happened and its data."""
    document = {
        "id": delivery.event_id,
        "type": delivery.event_type,
        "created_at": delivery.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": delivery.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 under the endpoint's secret of `<timestamp>.<body>`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def delivery_headers(delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of one attempt at `delivery`, signed at `timestamp` (unix seconds)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "Anchorline-Webhooks/1",
        EVENT_ID_HEADER: delivery.event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"t={timestamp},v1={signature(delivery.endpoint.secret, timestamp, body)}",
    }


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt (1, 2, ...)."""
    full = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    return timedelta(seconds=full * (1 - RETRY_JITTER * random.random()))


def record_delivered(delivery: WebhookDelivery, status_code: int, *, at: datetime) -> None:
    """The receiver answered 2xx: the event is delivered."""
    delivery.attempts += 1
    delivery.status = WebhookDeliveryStatus.DELIVERED
    delivery.last_attempt_at = at
    delivery.delivered_at = at
    delivery.last_status_code = status_code
    delivery.last_error = None


def record_failed(delivery: WebhookDelivery, *, at: datetime, status_code: int | None, error: str) -> None:
    """The attempt failed (an answer other than 2xx, a network error or a timeout): retry after
    `retry_delay`, or dead-letter the delivery once WEBHOOK_MAX_ATTEMPTS attempts have failed."""
    delivery.attempts += 1
    delivery.last_attempt_at = at
    delivery.last_status_code = status_code
    delivery.last_error = error[:MAX_ERROR_LENGTH]
    if delivery.attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]:
        delivery.status = WebhookDeliveryStatus.DEAD
    else:
        delivery.next_attempt_at = at + retry_delay(delivery.attempts)


# ---------------------------------------------------------------- checks


def _checked_url(url: str, errors: dict[str, list[str]]) -> str:
    url = (url or "").strip()
    problem = _url_problem(url)
    if problem:
        errors.setdefault("url", []).append(problem)
    return url


def _url_problem(url: str) -> str | None:
    if not url:
        return "give the URL events are POSTed to"
    if len(url) > MAX_URL_LENGTH:
        return f"at most {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        parts.port  # raises on a port that is not a number in range
    except ValueError:
        return "not a URL"
    if not parts.hostname:
        return "the URL names no host"
    if parts.username is not None or parts.password is not None:
        return "the URL may not hold credentials: authenticate deliveries by their signature"
    if parts.fragment:
        return "the URL may not have a fragment"
    private_allowed = current_app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"]
    if _is_loopback(parts.hostname):
        if private_allowed and parts.scheme in ("http", "https"):
            return None
        return "may not point at this machine (allowed only with WEBHOOK_ALLOW_PRIVATE_ADDRESSES)"
    if parts.scheme != "https":
        return "must be an https URL"
    try:
        literal = ipaddress.ip_address(parts.hostname.strip("[]"))
    except ValueError:
        return None  # a name: its addresses are checked each time a delivery is sent
    return address_problem(literal)


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a delivery may not go to `address`, or None. Deliveries go to public addresses only,
    so a registered URL cannot reach the platform's own network (the database, Redis, the node,
    cloud metadata services); WEBHOOK_ALLOW_PRIVATE_ADDRESSES lifts that for tests and receivers
    on the same host."""
    if address.is_global or current_app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"]:
        return None
    return f"{address} is not a public address: deliveries go to public addresses only"


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _checked_event_types(event_types: list[str], errors: dict[str, list[str]]) -> list[str]:
    chosen = list(dict.fromkeys(event_types or []))
    if not chosen:
        errors.setdefault("event_types", []).append("choose at least one event type")
    unknown = [name for name in chosen if name not in EVENT_TYPES]
    if unknown:
        errors.setdefault("event_types", []).append(f"unknown event types: {', '.join(map(repr, unknown))}")
    return sorted(chosen)


def _checked_description(description: str | None, errors: dict[str, list[str]]) -> str | None:
    description = (description or "").strip() or None
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        errors.setdefault("description", []).append(f"at most {MAX_DESCRIPTION_LENGTH} characters")
    return description


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise InvalidInput("the webhook endpoint's details are invalid: " + ", ".join(sorted(errors)), errors=errors)


def _new_secret() -> str:
    return secrets.token_hex(SECRET_BYTES)


def _snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log records of an endpoint: never its secret."""
    return {
        "organisation_id": endpoint.organisation_id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "active": endpoint.active,
    }
