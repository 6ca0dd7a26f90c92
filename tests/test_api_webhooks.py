"""The webhooks API (backend/api/webhooks.py): endpoints with their secret shown once, updates,
rotation and deletion, deliveries listed by status and redelivered. Each test builds its data
in an application context, then calls the API with a client outside it."""
from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models import Organisation, Role, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from backend.security.api_keys import Scope
from backend.services import webhooks
from tests import api_support
from tests.api_support import problem_code

URL = "https://receiver.example.com/hooks"
BASE = "/api/v1/webhooks"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def register(client: FlaskClient, caller, **details) -> dict:
    body = {"url": URL, "event_types": ["invoice.confirmed", "financing.funded"], **details}
    response = client.post(BASE, json=body, headers=caller.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def queue_deliveries(app: Flask, organisation_id: int, *keys: str) -> list[int]:
    """Publishes invoice.confirmed once per key to the organisation; the new deliveries' ids."""
    with app.app_context():
        organisation = db.session.get(Organisation, organisation_id)
        for key in keys:
            webhooks.publish("invoice.confirmed", organisations=[organisation], payload={"key": key}, event_key=key)
        db.session.commit()
        return list(db.session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id)))


def test_registering_answers_201_with_the_secret_once(app, client):
    financier = api_support.caller(app, Role.FINANCIER)
    created = register(client, financier, description="treasury")

    assert re.fullmatch(r"[0-9a-f]{64}", created["secret"])
    assert created["event_types"] == ["financing.funded", "invoice.confirmed"]
    assert (created["url"], created["active"], created["description"]) == (URL, True, "treasury")
    location = f"{BASE}/{created['id']}"
    shown = client.get(location, headers=financier.headers)
    assert shown.status_code == 200 and "secret" not in shown.get_json()
    listed = client.get(BASE, headers=financier.headers).get_json()
    assert [item["id"] for item in listed["items"]] == [created["id"]] and "secret" not in listed["items"][0]


def test_bad_details_are_problems_naming_the_field(app, client):
    buyer = api_support.caller(app, Role.BUYER)
    plain_http = client.post(BASE, json={"url": "http://receiver.example.com", "event_types": ["invoice.due"]},
                             headers=buyer.headers)
    assert plain_http.status_code == 422 and problem_code(plain_http) == "invalid-input"
    assert "url" in plain_http.get_json()["errors"]
    unknown = client.post(BASE, json={"url": URL, "event_types": ["invoice.exploded"]}, headers=buyer.headers)
    assert unknown.status_code == 422 and "event_types" in str(unknown.get_json()["errors"])
    empty = client.post(BASE, json={"url": URL, "event_types": []}, headers=buyer.headers)
    assert empty.status_code == 422


def test_a_supplier_may_not_register(app, client):
    supplier = api_support.caller(app, Role.SUPPLIER)
    response = client.post(BASE, json={"url": URL, "event_types": ["invoice.due"]}, headers=supplier.headers)
    assert response.status_code == 403 and problem_code(response) == "permission-denied"


def test_another_organisations_endpoint_is_not_found(app, client):
    owner, stranger = api_support.caller(app, Role.FINANCIER), api_support.caller(app, Role.FINANCIER)
    endpoint_id = register(client, owner)["id"]
    for method, path in [("get", ""), ("patch", ""), ("delete", ""), ("post", "/rotate-secret"),
                         ("get", "/deliveries")]:
        response = getattr(client, method)(f"{BASE}/{endpoint_id}{path}", headers=stranger.headers,
                                           **({"json": {"active": False}} if method == "patch" else {}))
        assert response.status_code == 404, (method, path)


def test_patch_deactivates_and_rotate_secret_shows_the_new_secret(app, client):
    buyer = api_support.caller(app, Role.BUYER)
    created = register(client, buyer)
    path = f"{BASE}/{created['id']}"

    patched = client.patch(path, json={"active": False, "description": "paused"}, headers=buyer.headers)
    assert patched.status_code == 200
    assert (patched.get_json()["active"], patched.get_json()["description"]) == (False, "paused")
    rotated = client.post(f"{path}/rotate-secret", headers=buyer.headers)
    assert rotated.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{64}", rotated.get_json()["secret"]) and rotated.get_json()["secret"] != created[
        "secret"]
    with app.app_context():
        assert db.session.get(WebhookEndpoint, created["id"]).secret == rotated.get_json()["secret"]


def test_delete_removes_the_endpoint(app, client):
    financier = api_support.caller(app, Role.FINANCIER)
    path = f"{BASE}/{register(client, financier)['id']}"
    assert client.delete(path, headers=financier.headers).status_code == 204
    assert client.get(path, headers=financier.headers).status_code == 404


def test_a_read_only_key_lists_but_does_not_register(app, client):
    reader = api_support.caller(app, Role.FINANCIER, scopes=(Scope.READ,))
    assert client.get(BASE, headers=reader.headers).status_code == 200
    refused = client.post(BASE, json={"url": URL, "event_types": ["invoice.due"]}, headers=reader.headers)
    assert refused.status_code == 403


def test_dead_deliveries_are_listed_and_redelivered(app, client):
    financier = api_support.caller(app, Role.FINANCIER)
    endpoint_id = register(client, financier)["id"]
    first, second = queue_deliveries(app, financier.organisation_id, "event-1", "event-2")
    with app.app_context():
        dead = db.session.get(WebhookDelivery, second)
        dead.status, dead.attempts, dead.last_error = WebhookDeliveryStatus.DEAD, 10, "HTTP 500: down"
        db.session.commit()

    deliveries = f"{BASE}/{endpoint_id}/deliveries"
    everything = client.get(deliveries, headers=financier.headers).get_json()["items"]
    assert [item["id"] for item in everything] == [first, second]
    dead_letters = client.get(f"{deliveries}?status=dead", headers=financier.headers).get_json()["items"]
    assert [(item["id"], item["attempts"], item["last_error"]) for item in dead_letters] == [
        (second, 10, "HTTP 500: down")]

    response = client.post(f"{deliveries}/{second}/redeliver", headers=financier.headers)
    assert response.status_code == 202
    assert response.headers["Location"].endswith(f"{deliveries}/{second}")
    assert (response.get_json()["status"], response.get_json()["attempts"]) == ("pending", 0)
    assert client.get(f"{deliveries}?status=dead", headers=financier.headers).get_json()["items"] == []

    again = client.post(f"{deliveries}/{second}/redeliver", headers=financier.headers)
    assert again.status_code == 409 and problem_code(again) == "invalid-state"
    assert client.post(f"{deliveries}/{first + 1000}/redeliver", headers=financier.headers).status_code == 404


def test_the_operator_lists_every_endpoint_without_secrets(app, client):
    financier, buyer = api_support.caller(app, Role.FINANCIER), api_support.caller(app, Role.BUYER)
    ids = {register(client, financier)["id"], register(client, buyer)["id"]}
    operator = api_support.caller(app, Role.OPERATOR, onboarded=False)
    listed = client.get(BASE, headers=operator.headers).get_json()["items"]
    assert {item["id"] for item in listed} == ids
    assert all("secret" not in item for item in listed)
