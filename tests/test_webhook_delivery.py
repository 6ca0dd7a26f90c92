"""The webhook delivery worker (workers/webhooks.py) against a real HTTP receiver on this
machine: signed POSTs verified exactly as docs/webhooks.md tells receivers to, retries with
backoff into the dead letters, no redirects, nothing for inactive endpoints, and one attempt at a
time however many workers try."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask
from sqlalchemy import select, update

from backend.extensions import db
from backend.models import Role, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from backend.services import webhooks
from tests import domain_factories as factories
from workers import webhooks as worker

# How far a receiver's clock may differ from the sender's (docs/webhooks.md).
TOLERANCE_SECONDS = 300


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server recording each POST; it answers with `statuses` in turn (then 200),
    after `delay` seconds."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Received(self.path, dict(self.headers), body))
            time.sleep(state.delay)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"answer!")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float) -> dict:
    """What docs/webhooks.md tells a receiver to do: parse the signature header, refuse a stale
    timestamp, compare the HMAC in constant time, then read the event."""
    parts = dict(item.split("=", 1) for item in headers["Anchorline-Signature"].split(","))
    timestamp = int(parts["t"])
    assert abs(now - timestamp) <= TOLERANCE_SECONDS, "stale delivery"
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]), "bad signature"
    event = json.loads(body)
    assert headers["Anchorline-Event-Id"] == event["id"]
    assert headers["Anchorline-Timestamp"] == parts["t"]
    return event


@dataclass(frozen=True)
class Subscription:
    endpoint_id: int
    secret: str
    delivery_id: int


def subscribe(app: Flask, url: str, *, max_attempts: int = 10) -> Subscription:
    """A financier's endpoint at `url` and one pending invoice.confirmed delivery to it."""
    app.config["WEBHOOK_MAX_ATTEMPTS"] = max_attempts
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 2.0
    app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = True  # the receiver listens on 127.0.0.1
    with app.app_context():
        org = factories.organisation(Role.FINANCIER)
        endpoint, secret = webhooks.create_endpoint(factories.actor(org), url=url, event_types=["invoice.confirmed"])
        webhooks.publish("invoice.confirmed", organisations=[org], payload={"invoice_id": 42},
                         event_key="chain:31337:0xfeed:3:invoice.confirmed",
                         occurred_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
        db.session.commit()
        delivery_id = db.session.scalars(select(WebhookDelivery.id)).one()
        return Subscription(endpoint.id, secret, delivery_id)


def delivery(app: Flask, delivery_id: int) -> WebhookDelivery:
    with app.app_context():
        row = db.session.get(WebhookDelivery, delivery_id)
        db.session.expunge(row)
        return row


def make_due(app: Flask, delivery_id: int) -> None:
    """Skips the backoff: the delivery's next attempt is due now."""
    with app.app_context():
        db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                           .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()


def sweep_and_deliver(app: Flask) -> list[int]:
    """What beat and the workers do: dispatch the due deliveries, then run each task."""
    with app.app_context():
        dispatched = worker.dispatch_due_deliveries()
    for delivery_id in dispatched:
        with app.app_context():
            worker.deliver(delivery_id)
    return dispatched


def test_a_delivery_is_posted_signed_and_marked_delivered(app, receiver):
    subscription = subscribe(app, receiver.url)

    assert sweep_and_deliver(app) == [subscription.delivery_id]

    (request,) = receiver.requests
    assert request.path == "/hooks"
    assert request.headers["Content-Type"] == "application/json"
    event = verify(subscription.secret, request.headers, request.body, now=time.time())
    assert event == {"id": webhooks.event_id("chain:31337:0xfeed:3:invoice.confirmed"), "type": "invoice.confirmed",
                     "created_at": "2026-12-01T09:00:00Z", "data": {"invoice_id": 42}}
    row = delivery(app, subscription.delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == (WebhookDeliveryStatus.DELIVERED, 1, 200)
    assert sweep_and_deliver(app) == [] and len(receiver.requests) == 1


def test_a_tampered_body_or_another_secret_fails_verification(app, receiver):
    subscription = subscribe(app, receiver.url)
    sweep_and_deliver(app)
    (request,) = receiver.requests
    with pytest.raises(AssertionError, match="bad signature"):
        verify(subscription.secret, request.headers, request.body.replace(b"42", b"43"), now=time.time())
    with pytest.raises(AssertionError, match="bad signature"):
        verify("0" * 64, request.headers, request.body, now=time.time())
    with pytest.raises(AssertionError, match="stale"):
        verify(subscription.secret, request.headers, request.body, now=time.time() + TOLERANCE_SECONDS + 60)


def test_failures_are_retried_with_backoff_then_dead_lettered(app, receiver):
    subscription = subscribe(app, receiver.url, max_attempts=3)
    receiver.statuses = [500, 503, 400]

    started = datetime.now(UTC)
    sweep_and_deliver(app)
    row = delivery(app, subscription.delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == (WebhookDeliveryStatus.PENDING, 1, 500)
    assert row.last_error == "HTTP 500: answer!"
    assert started + timedelta(seconds=7) <= row.next_attempt_at <= datetime.now(UTC) + timedelta(seconds=10)
    assert sweep_and_deliver(app) == []  # not due yet: the backoff holds

    make_due(app, subscription.delivery_id)
    sweep_and_deliver(app)
    row = delivery(app, subscription.delivery_id)
    assert (row.attempts, row.next_attempt_at - row.last_attempt_at >= timedelta(seconds=15)) == (2, True)

    make_due(app, subscription.delivery_id)
    sweep_and_deliver(app)
    row = delivery(app, subscription.delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == (WebhookDeliveryStatus.DEAD, 3, 400)
    make_due(app, subscription.delivery_id)
    assert sweep_and_deliver(app) == [] and len(receiver.requests) == 3
    # Every attempt carried the same event id, for the receiver to dedupe on.
    assert len({request.headers["Anchorline-Event-Id"] for request in receiver.requests}) == 1


def test_a_redirect_is_a_failure_and_is_not_followed(app, receiver):
    subscription = subscribe(app, receiver.url)
    receiver.statuses = [302]
    sweep_and_deliver(app)
    assert [request.path for request in receiver.requests] == ["/hooks"]
    row = delivery(app, subscription.delivery_id)
    assert (row.status, row.last_status_code) == (WebhookDeliveryStatus.PENDING, 302)


def test_a_timeout_and_a_refused_connection_are_failures(app, receiver, unused_port):
    subscription = subscribe(app, receiver.url)
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 0.3
    receiver.delay = 1.0
    sweep_and_deliver(app)
    row = delivery(app, subscription.delivery_id)
    assert (row.status, row.attempts, row.last_status_code) == (WebhookDeliveryStatus.PENDING, 1, None)
    assert "Timeout" in row.last_error

    with app.app_context():
        db.session.get(WebhookEndpoint, subscription.endpoint_id).url = f"http://127.0.0.1:{unused_port()}/"
        db.session.commit()
    make_due(app, subscription.delivery_id)
    sweep_and_deliver(app)
    row = delivery(app, subscription.delivery_id)
    assert (row.attempts, row.last_status_code) == (2, None) and "ConnectionError" in row.last_error


def test_a_name_that_resolves_to_a_private_address_is_refused_at_each_attempt(app, receiver):
    subscription = subscribe(app, receiver.url.replace("127.0.0.1", "localhost"))
    app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = False  # as in production: localhost is private
    sweep_and_deliver(app)
    row = delivery(app, subscription.delivery_id)
    assert receiver.requests == []
    assert (row.status, row.attempts) == (WebhookDeliveryStatus.PENDING, 1)
    assert "resolves to" in row.last_error and "not a public address" in row.last_error


def test_nothing_is_sent_to_an_inactive_endpoint(app, receiver):
    subscription = subscribe(app, receiver.url)
    with app.app_context():
        db.session.get(WebhookEndpoint, subscription.endpoint_id).active = False
        db.session.commit()
    assert sweep_and_deliver(app) == []
    with app.app_context():
        assert worker.deliver(subscription.delivery_id) is None  # a message queued before deactivation
    assert receiver.requests == []
    assert delivery(app, subscription.delivery_id).status == WebhookDeliveryStatus.PENDING


def test_a_dispatched_delivery_is_not_dispatched_again_until_its_lease_passes(app, receiver):
    subscription = subscribe(app, receiver.url)
    with app.app_context():
        assert worker.dispatch_due_deliveries() == [subscription.delivery_id]
        assert worker.dispatch_due_deliveries() == []  # the message is on its way
    make_due(app, subscription.delivery_id)  # the lease has passed: the message was lost
    with app.app_context():
        assert worker.dispatch_due_deliveries() == [subscription.delivery_id]


def test_concurrent_attempts_at_one_delivery_send_it_once(app, receiver):
    subscription = subscribe(app, receiver.url)
    receiver.delay = 0.5
    outcomes: list[object] = []

    def attempt() -> None:
        with app.app_context():
            outcomes.append(worker.deliver(subscription.delivery_id))

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(receiver.requests) == 1
    assert sorted(outcomes, key=str) == sorted([WebhookDeliveryStatus.DELIVERED, None, None, None], key=str)


def test_the_sweeper_runs_on_the_beat():
    entry = worker.periodic_tasks({})["webhooks.dispatch"]
    assert entry["task"] == "workers.webhooks.dispatch_webhooks"
    assert entry["schedule"] <= 5
