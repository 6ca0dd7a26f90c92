"""Webhook endpoints and deliveries as services (backend/services/webhooks.py): who may register
endpoints, what a valid one is, that the secret is handed out only at creation and rotation,
what `publish` queues, how a delivery is signed, and how failures back off into the dead letters."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from backend.extensions import db
from backend.models import Role, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from backend.services import webhooks
from backend.services.errors import InvalidInput, InvalidState, NotFound, PermissionDenied
from tests import domain_factories as factories

URL = "https://receiver.example.com/anchorline"


def endpoint_of(org, *, event_types=("invoice.confirmed",), url=URL, active=True) -> WebhookEndpoint:
    endpoint, _ = webhooks.create_endpoint(factories.actor(org), url=url, event_types=list(event_types))
    if not active:
        endpoint.active = False
        db.session.commit()
    return endpoint


def publish_to(org, event_type="invoice.confirmed", key="chain:1:0xabc:0:invoice.confirmed") -> int:
    added = webhooks.publish(event_type, organisations=[org], payload={"invoice_id": 7}, event_key=key)
    db.session.commit()
    return added


# ---------------------------------------------------------------- endpoints


@pytest.mark.parametrize("role", [Role.FINANCIER, Role.BUYER])
def test_financiers_and_buyers_register_endpoints_and_get_the_secret_once(db_session, role):
    org = factories.organisation(role)
    endpoint, secret = webhooks.create_endpoint(factories.actor(org), url=URL,
                                                event_types=["invoice.repaid", "invoice.confirmed"],
                                                description="  treasury system ")

    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert (endpoint.organisation_id, endpoint.url, endpoint.active) == (org.id, URL, True)
    assert endpoint.event_types == ["invoice.confirmed", "invoice.repaid"]
    assert endpoint.description == "treasury system"
    assert endpoint.secret == secret
    entry = factories.only_audit_entry()
    assert (entry.action, entry.subject_id) == ("webhook.create", str(endpoint.id))
    assert secret not in json.dumps(entry.after) and secret not in repr(endpoint)


@pytest.mark.parametrize("role", [Role.SUPPLIER, Role.AUDITOR, Role.OPERATOR])
def test_other_roles_may_not_register_endpoints(db_session, role):
    actor = factories.actor(factories.organisation(role))
    db.session.commit()
    factories.assert_refused(PermissionDenied, webhooks.create_endpoint, actor, url=URL,
                             event_types=["invoice.confirmed"])


def test_a_read_only_key_may_not_register_endpoints(db_session):
    actor = factories.actor(factories.organisation(Role.FINANCIER), scopes=("read",))
    db.session.commit()
    factories.assert_refused(PermissionDenied, webhooks.create_endpoint, actor, url=URL,
                             event_types=["invoice.confirmed"])


@pytest.mark.parametrize(("url", "reason"), [
    ("", "give the URL"),
    ("http://receiver.example.com/hook", "https"),
    ("http://10.0.0.8/hook", "https"),
    ("ftp://receiver.example.com/hook", "https"),
    ("https:///no-host", "no host"),
    ("https://user:pw@receiver.example.com/hook", "credentials"),
    ("https://receiver.example.com:99999/hook", "not a URL"),
    ("https://receiver.example.com/hook#part", "fragment"),
    ("https://receiver.example.com/" + "a" * 2048, "at most"),
])
def test_an_endpoint_needs_an_https_url(db_session, url, reason):
    actor = factories.actor(factories.organisation(Role.FINANCIER))
    db.session.commit()
    refusal = factories.assert_refused(InvalidInput, webhooks.create_endpoint, actor, url=url,
                                       event_types=["invoice.confirmed"])
    assert reason in refusal.value.errors["url"][0]


@pytest.mark.parametrize("url", ["http://localhost:8080/hook", "http://127.0.0.1:9/hook", "http://[::1]/hook"])
def test_this_machine_is_refused_unless_private_addresses_are_allowed(app, db_session, url):
    actor = factories.actor(factories.organisation(Role.BUYER))
    db.session.commit()
    refusal = factories.assert_refused(InvalidInput, webhooks.create_endpoint, actor, url=url,
                                       event_types=["invoice.due"])
    assert "may not point at this machine" in refusal.value.errors["url"][0]

    app.config["WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] = True  # tests, a receiver on the same host
    endpoint, _ = webhooks.create_endpoint(actor, url=url, event_types=["invoice.due"])
    assert endpoint.url == url


@pytest.mark.parametrize("url", ["https://10.0.0.8/hook", "https://169.254.169.254/latest", "https://[fd00::1]/x"])
def test_private_addresses_are_refused(db_session, url):
    actor = factories.actor(factories.organisation(Role.BUYER))
    db.session.commit()
    refusal = factories.assert_refused(InvalidInput, webhooks.create_endpoint, actor, url=url,
                                       event_types=["invoice.due"])
    assert "not a public address" in refusal.value.errors["url"][0]


@pytest.mark.parametrize(("event_types", "message"), [
    ([], "at least one"),
    (["invoice.confirmed", "invoice.exploded"], "'invoice.exploded'"),
])
def test_event_types_must_be_known_and_not_empty(db_session, event_types, message):
    actor = factories.actor(factories.organisation(Role.FINANCIER))
    db.session.commit()
    refusal = factories.assert_refused(InvalidInput, webhooks.create_endpoint, actor, url=URL, event_types=event_types)
    assert message in " ".join(refusal.value.errors["event_types"])


def test_an_organisation_sees_only_its_own_endpoints_and_the_operator_sees_all(db_session):
    first, second = factories.organisation(Role.FINANCIER), factories.organisation(Role.BUYER)
    own, others = endpoint_of(first), endpoint_of(second)

    assert db.session.scalars(webhooks.endpoints(factories.actor(first))).all() == [own]
    with pytest.raises(NotFound):
        webhooks.get_endpoint(factories.actor(first), others.id)
    with pytest.raises(NotFound):
        webhooks.rotate_secret(factories.actor(first), others.id)
    operator = factories.operator()
    assert set(db.session.scalars(webhooks.endpoints(operator))) == {own, others}
    with pytest.raises(PermissionDenied):  # the operator reads, but manages nobody's endpoints
        webhooks.update_endpoint(operator, own.id, active=False)


def test_rotating_the_secret_replaces_it_and_returns_the_new_one_once(db_session):
    org = factories.organisation(Role.FINANCIER)
    endpoint, first_secret = webhooks.create_endpoint(factories.actor(org), url=URL, event_types=["invoice.due"])
    rotated, second_secret = webhooks.rotate_secret(factories.actor(org), endpoint.id)

    assert rotated.id == endpoint.id
    assert second_secret != first_secret and re.fullmatch(r"[0-9a-f]{64}", second_secret)
    assert db.session.get(WebhookEndpoint, endpoint.id).secret == second_secret
    assert factories.last_audit_entry().action == "webhook.rotate_secret"


def test_update_changes_only_what_is_given_and_validates_it(db_session):
    org = factories.organisation(Role.BUYER)
    endpoint = endpoint_of(org, event_types=("invoice.due",))
    actor = factories.actor(org)
    db.session.commit()

    webhooks.update_endpoint(actor, endpoint.id, active=False, event_types=["invoice.maturity_reminder"])
    assert (endpoint.active, endpoint.event_types, endpoint.url) == (False, ["invoice.maturity_reminder"], URL)
    factories.assert_refused(InvalidInput, webhooks.update_endpoint, actor, endpoint.id, url="http://example.com")
    entry = factories.last_audit_entry()
    assert (entry.before["active"], entry.after["active"]) == (True, False)


def test_deleting_an_endpoint_removes_its_deliveries(db_session):
    org = factories.organisation(Role.FINANCIER)
    endpoint = endpoint_of(org)
    publish_to(org)
    webhooks.delete_endpoint(factories.actor(org), endpoint.id)

    assert factories.count(WebhookEndpoint) == 0 and factories.count(WebhookDelivery) == 0
    assert factories.last_audit_entry().action == "webhook.delete"


# ---------------------------------------------------------------- publish


def test_publish_queues_one_delivery_per_subscribed_active_endpoint_once(db_session):
    org, other = factories.organisation(Role.FINANCIER), factories.organisation(Role.BUYER)
    subscribed = endpoint_of(org, event_types=("invoice.confirmed",))
    endpoint_of(org, event_types=("invoice.repaid",))  # another event type
    endpoint_of(org, active=False)
    endpoint_of(other)  # not concerned

    assert publish_to(org) == 1
    assert publish_to(org) == 0  # the same event again: a reindex, a retried task

    (delivery,) = db.session.scalars(select(WebhookDelivery)).all()
    assert delivery.endpoint_id == subscribed.id
    assert delivery.event_id == webhooks.event_id("chain:1:0xabc:0:invoice.confirmed")
    assert (delivery.status, delivery.attempts, delivery.payload) == (WebhookDeliveryStatus.PENDING, 0,
                                                                      {"invoice_id": 7})


def test_publish_refuses_an_unknown_event_type(db_session):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        webhooks.publish("invoice.exploded", organisations=[], payload={}, event_key="k")


# ---------------------------------------------------------------- deliveries


def test_deliveries_are_listed_by_status_and_only_for_the_endpoints_owner(db_session):
    org, stranger = factories.organisation(Role.FINANCIER), factories.organisation(Role.FINANCIER)
    endpoint = endpoint_of(org)
    publish_to(org, key="one")
    publish_to(org, key="two")
    dead = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
    dead.status = WebhookDeliveryStatus.DEAD
    db.session.commit()

    actor = factories.actor(org)
    assert len(db.session.scalars(webhooks.deliveries(actor, endpoint.id)).all()) == 2
    assert db.session.scalars(webhooks.deliveries(actor, endpoint.id, status=WebhookDeliveryStatus.DEAD)).all() == [
        dead]
    with pytest.raises(NotFound):
        webhooks.deliveries(factories.actor(stranger), endpoint.id)
    other_endpoint = endpoint_of(org, url="https://other.example.com/")
    with pytest.raises(NotFound):  # a delivery asked for under another endpoint
        webhooks.get_delivery(actor, other_endpoint.id, dead.id)


def test_redeliver_makes_a_dead_delivery_pending_again_from_now(db_session):
    org = factories.organisation(Role.BUYER)
    endpoint = endpoint_of(org)
    publish_to(org)
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    delivery.status, delivery.attempts, delivery.last_error = WebhookDeliveryStatus.DEAD, 10, "HTTP 500"
    delivery.next_attempt_at = datetime(2020, 1, 1, tzinfo=UTC)
    db.session.commit()

    before = datetime.now(UTC)
    webhooks.redeliver(factories.actor(org), endpoint.id, delivery.id)

    assert (delivery.status, delivery.attempts, delivery.last_error) == (WebhookDeliveryStatus.PENDING, 0, None)
    assert before - timedelta(seconds=1) <= delivery.next_attempt_at <= datetime.now(UTC)
    entry = factories.last_audit_entry()
    assert (entry.action, entry.before["status"], entry.after["status"]) == ("webhook.redeliver", "dead", "pending")


def test_redeliver_refuses_a_pending_delivery_and_an_inactive_endpoint(db_session):
    org = factories.organisation(Role.FINANCIER)
    endpoint = endpoint_of(org)
    publish_to(org)
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    actor = factories.actor(org)
    db.session.commit()
    factories.assert_refused(InvalidState, webhooks.redeliver, actor, endpoint.id, delivery.id)

    delivery.status = WebhookDeliveryStatus.DELIVERED
    endpoint.active = False
    db.session.commit()
    factories.assert_refused(InvalidState, webhooks.redeliver, actor, endpoint.id, delivery.id)


# ---------------------------------------------------------------- signing and retrying


def test_the_body_and_signature_are_what_receivers_are_told_to_check(db_session):
    org = factories.organisation(Role.FINANCIER)
    endpoint, secret = webhooks.create_endpoint(factories.actor(org), url=URL, event_types=["invoice.due"])
    webhooks.publish("invoice.due", organisations=[org], payload={"invoice_id": 3}, event_key="due:3",
                     occurred_at=datetime(2026, 5, 1, 8, 30, tzinfo=UTC))
    db.session.commit()
    delivery = db.session.scalars(select(WebhookDelivery)).one()

    body = webhooks.delivery_body(delivery)
    headers = webhooks.delivery_headers(delivery, body, 1_777_777_777)

    assert json.loads(body) == {"id": webhooks.event_id("due:3"), "type": "invoice.due",
                                "created_at": "2026-05-01T08:30:00Z", "data": {"invoice_id": 3}}
    assert headers["Anchorline-Event-Id"] == delivery.event_id
    assert headers["Anchorline-Timestamp"] == "1777777777"
    expected = hmac.new(secret.encode(), b"1777777777." + body, hashlib.sha256).hexdigest()
    assert headers["Anchorline-Signature"] == f"t=1777777777,v1={expected}"


def test_retry_delays_double_from_ten_seconds_up_to_an_hour_with_jitter():
    for attempts, full in [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (30, 3600)]:
        delays = {webhooks.retry_delay(attempts).total_seconds() for _ in range(50)}
        assert all(full * 0.8 <= delay <= full for delay in delays), (attempts, delays)
        assert len(delays) > 1  # jittered


def test_failures_back_off_then_go_dead_after_the_maximum_attempts(db_session):
    current_app.config["WEBHOOK_MAX_ATTEMPTS"] = 3
    org = factories.organisation(Role.FINANCIER)
    endpoint_of(org)
    publish_to(org)
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    now = datetime.now(UTC)

    webhooks.record_failed(delivery, at=now, status_code=503, error="HTTP 503: busy")
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (WebhookDeliveryStatus.PENDING, 1, 503)
    assert now + timedelta(seconds=8) <= delivery.next_attempt_at <= now + timedelta(seconds=10)
    webhooks.record_failed(delivery, at=now, status_code=None, error="ConnectionError: refused")
    assert delivery.status == WebhookDeliveryStatus.PENDING and delivery.last_status_code is None
    webhooks.record_failed(delivery, at=now, status_code=None, error="x" * 2000)
    assert (delivery.status, delivery.attempts, len(delivery.last_error)) == (WebhookDeliveryStatus.DEAD, 3, 500)


def test_success_marks_the_delivery_delivered(db_session):
    org = factories.organisation(Role.FINANCIER)
    endpoint_of(org)
    publish_to(org)
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    now = datetime.now(UTC)
    webhooks.record_delivered(delivery, 204, at=now)
    assert (delivery.status, delivery.attempts, delivery.delivered_at, delivery.last_status_code) == (
        WebhookDeliveryStatus.DELIVERED, 1, now, 204)
