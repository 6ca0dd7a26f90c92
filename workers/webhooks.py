"""The webhook delivery worker: POSTs each pending delivery to its endpoint, signed, at least once.

`dispatch_webhooks` (Celery beat, every two seconds) takes the deliveries that are due, pending
and of an active endpoint (with FOR UPDATE SKIP LOCKED on PostgreSQL, so two sweepers take
different rows), pushes their next attempt DISPATCH_LEASE_SECONDS ahead in the same transaction
and queues `deliver_webhook(delivery_id)` for each. A lost message therefore only delays the
delivery: the sweeper finds it due again once the lease has passed.

`deliver_webhook` claims the attempt with one conditional UPDATE (still pending, of an active
endpoint, due within the dispatch lease), which moves the next attempt beyond anything the
sweeper or a duplicate message could claim while this attempt runs; so one delivery is never
sent twice at the same time, by any number of workers, on SQLite as on PostgreSQL. The outcome
is recorded only by the attempt that holds the claim (backend.services.webhooks: DELIVERED on
2xx, else a retry with exponential backoff, DEAD after WEBHOOK_MAX_ATTEMPTS). Redirects are
never followed: a 3xx is a failed attempt.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from celery.exceptions import SoftTimeLimitExceeded
from flask import current_app
from sqlalchemy import select, update

from backend.extensions import db
from backend.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, utcnow
from backend.services import webhooks
from workers.celery_app import worker_task

logger = logging.getLogger(__name__)

DISPATCH_INTERVAL_SECONDS = 2.0
# Deliveries queued per sweep, at most; the next sweep takes the rest.
DISPATCH_BATCH = 200
# A dispatched delivery whose message was lost is due again after this long.
DISPATCH_LEASE_SECONDS = 60
# Beyond the request's timeout: time to record the outcome before a claim could lapse.
CLAIM_MARGIN_SECONDS = 30
# A receiver that answers byte by byte defeats the per-read timeout: an attempt is cut off after
# the soft limit (and counted as failed), and its process killed after the hard one, both well
# within the claim, so no second attempt starts while one still runs.
DELIVERY_SOFT_TIME_LIMIT_SECONDS = 30
DELIVERY_TIME_LIMIT_SECONDS = 40
# How much of a failing receiver's answer is read for last_error.
ERROR_BODY_BYTES = 200


@worker_task()
def dispatch_webhooks() -> int:
    """Queues every due delivery (see the module docstring); returns how many."""
    delivery_ids = dispatch_due_deliveries()
    for delivery_id in delivery_ids:
        deliver_webhook.delay(delivery_id)
    return len(delivery_ids)


@worker_task(soft_time_limit=DELIVERY_SOFT_TIME_LIMIT_SECONDS, time_limit=DELIVERY_TIME_LIMIT_SECONDS)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt at one delivery, if it is still due and no other attempt holds it."""
    deliver(delivery_id)


def periodic_tasks(config: Any) -> dict[str, dict[str, Any]]:
    return {
        "webhooks.dispatch": {"task": dispatch_webhooks.name, "schedule": DISPATCH_INTERVAL_SECONDS},
    }


def dispatch_due_deliveries(limit: int = DISPATCH_BATCH) -> list[int]:
    """The ids of up to `limit` due deliveries of active endpoints, oldest due first, each
    leased for DISPATCH_LEASE_SECONDS in this one committed transaction."""
    now = utcnow()
    delivery_ids = list(db.session.scalars(
        select(WebhookDelivery.id)
        .join(WebhookDelivery.endpoint)
        .where(WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
               WebhookDelivery.next_attempt_at <= now,
               WebhookEndpoint.active.is_(True))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ))
    if delivery_ids:
        db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids))
            .values(next_attempt_at=now + timedelta(seconds=DISPATCH_LEASE_SECONDS))
        )
    db.session.commit()
    return delivery_ids


@dataclass(frozen=True)
class Attempt:
    """One claimed attempt: what to send, and the claim's mark (the attempt's start)."""

    delivery_id: int
    started_at: datetime
    url: str
    body: bytes
    headers: dict[str, str]


def deliver(delivery_id: int) -> WebhookDeliveryStatus | None:
    """Claims, sends and records one attempt at `delivery_id`; returns the delivery's status
    after it, or None when there was nothing to attempt (not due, claimed by another attempt,
    no longer pending, its endpoint inactive or gone)."""
    attempt = claim_attempt(delivery_id)
    if attempt is None:
        return None
    status_code, error = post(attempt)
    return record_outcome(attempt, status_code, error)


def claim_attempt(delivery_id: int) -> Attempt | None:
    """Takes the delivery's next attempt, or None if it is not ours to take (module docstring)."""
    now = utcnow()
    timeout = current_app.config["WEBHOOK_TIMEOUT_SECONDS"]
    claimed_until = now + timedelta(seconds=DISPATCH_LEASE_SECONDS + timeout + CLAIM_MARGIN_SECONDS)
    claimed = db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id,
               WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
               WebhookDelivery.next_attempt_at <= now + timedelta(seconds=DISPATCH_LEASE_SECONDS),
               WebhookDelivery.endpoint_id.in_(select(WebhookEndpoint.id).where(WebhookEndpoint.active.is_(True))))
        .values(next_attempt_at=claimed_until, last_attempt_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not claimed:
        db.session.commit()
        return None
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    assert delivery is not None  # claimed just now, in this transaction
    body = webhooks.delivery_body(delivery)
    attempt = Attempt(delivery_id, now, delivery.endpoint.url, body,
                      webhooks.delivery_headers(delivery, body, int(time.time())))
    db.session.commit()  # the claim stands before anything is sent
    return attempt


def post(attempt: Attempt) -> tuple[int | None, str | None]:
    """POSTs the attempt: (status code, None) on a 2xx answer, else what went wrong. Redirects
    are not followed; proxies from the environment are not used (deliveries go straight to the
    receiver, as the URL says)."""
    refusal = _destination_problem(attempt.url)
    if refusal is not None:
        return None, refusal
    with requests.Session() as session:
        session.trust_env = False
        try:
            with session.post(attempt.url, data=attempt.body, headers=attempt.headers, allow_redirects=False,
                              timeout=current_app.config["WEBHOOK_TIMEOUT_SECONDS"], stream=True) as response:
                if 200 <= response.status_code < 300:
                    return response.status_code, None
                excerpt = next(response.iter_content(ERROR_BODY_BYTES), b"").decode("utf-8", "replace")
                return response.status_code, f"HTTP {response.status_code}: {excerpt}".strip()
        except requests.RequestException as exc:
            return None, f"{type(exc).__name__}: {exc}"
        except SoftTimeLimitExceeded:
            return None, f"the receiver took longer than {DELIVERY_SOFT_TIME_LIMIT_SECONDS}s to answer"


def _destination_problem(url: str) -> str | None:
    """Why `url` may not be posted to now: a host name that does not resolve, or resolves to
    an address deliveries may not go to (checked at each attempt, since names can change)."""
    parts = urlsplit(url)
    try:
        resolved = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                      type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve {parts.hostname}: {exc}"
    for *_, sockaddr in resolved:
        problem = webhooks.address_problem(ipaddress.ip_address(sockaddr[0]))
        if problem is not None:
            return f"refused: {parts.hostname} resolves to {problem}"
    return None


def record_outcome(attempt: Attempt, status_code: int | None, error: str | None) -> WebhookDeliveryStatus | None:
    """Records the attempt's outcome if it still holds its claim (it always does unless it ran
    past the claim, when a later attempt's outcome is the one that counts)."""
    delivery = db.session.get(WebhookDelivery, attempt.delivery_id, with_for_update=True, populate_existing=True)
    if (delivery is None or delivery.status != WebhookDeliveryStatus.PENDING
            or delivery.last_attempt_at != attempt.started_at):
        db.session.commit()
        logger.warning("webhook delivery %s: the attempt outlived its claim; outcome not recorded", attempt.delivery_id)
        return None
    now = utcnow()
    if error is None:
        assert status_code is not None
        webhooks.record_delivered(delivery, status_code, at=now)
    else:
        webhooks.record_failed(delivery, at=now, status_code=status_code, error=error)
        logger.info("webhook delivery %s attempt %s failed: %s", delivery.id, delivery.attempts, error)
    status = delivery.status
    db.session.commit()
    return status
