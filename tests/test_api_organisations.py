"""The organisations API: the directory, onboarding, KYC decisions and suspensions
(backend/api/organisations.py). Each test builds its data in an application context, then
calls the API with a client outside it, as a real client would."""
from __future__ import annotations

import hashlib
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from backend.extensions import db
from backend.models import ChainTransaction, KycStatus, Organisation, Role
from tests import domain_factories as factories
from tests.api_support import Credentials, caller, problem_code

VALID_LEI = "529900T8BM49AURSDO55"


@pytest.fixture(autouse=True)
def cheap_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    factories.cheap_signing_keys(monkeypatch)


def participant(app: Flask, roles: Role = Role.SUPPLIER, **state: Any) -> int:
    with app.app_context():
        org = factories.organisation(roles, **state)
        db.session.commit()
        return org.id


def intents(app: Flask) -> list[tuple[str, str, list[Any]]]:
    with app.app_context():
        return [(row.intent_key, row.function, row.args)
                for row in db.session.scalars(select(ChainTransaction).order_by(ChainTransaction.id))]


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def operator(app: Flask) -> Credentials:
    return caller(app, Role.OPERATOR, onboarded=False)


# ---------------------------------------------------------------- the directory


def test_every_participant_reads_the_directory_and_only_readers_see_more(app, client, operator):
    participant(app, Role.BUYER, name="Big Buyer")
    supplier = caller(app, Role.SUPPLIER, name="Small Supplier")
    auditor = caller(app, Role.AUDITOR, name="Auditor")

    seen = client.get("/api/v1/organisations", headers=supplier.headers)
    assert seen.status_code == 200
    by_name = {item["name"]: item for item in seen.json["items"]}
    assert set(by_name) >= {"Big Buyer", "Small Supplier", "Auditor"}
    assert set(by_name["Big Buyer"]) == {"id", "name", "legal_identifier", "roles", "kyc_status", "suspended",
                                         "chain_address", "participant_id"}
    assert by_name["Big Buyer"]["roles"] == ["buyer"] and by_name["Big Buyer"]["kyc_status"] == "approved"
    for reader in (operator, auditor):
        item = client.get(f"/api/v1/organisations/{supplier.organisation_id}", headers=reader.headers).json
        assert {"created_at", "updated_at", "suspension_reason"} <= set(item)
    assert "created_at" not in client.get(f"/api/v1/organisations/{supplier.organisation_id}",
                                          headers=supplier.headers).json


def test_the_directory_filters_by_role_and_name_and_pages(app, client):
    participant(app, Role.BUYER, name="Buyer One")
    participant(app, Role.BUYER | Role.SUPPLIER, name="Buyer Two")
    participant(app, Role.SUPPLIER, name="Supplier Three")
    reader = caller(app, Role.FINANCIER, name="Bank")

    buyers = client.get("/api/v1/organisations?role=buyer", headers=reader.headers).json
    assert [item["name"] for item in buyers["items"]] == ["Buyer One", "Buyer Two"]
    named = client.get("/api/v1/organisations?name=two", headers=reader.headers).json
    assert [item["name"] for item in named["items"]] == ["Buyer Two"]
    first = client.get("/api/v1/organisations?limit=2", headers=reader.headers).json
    second = client.get(f"/api/v1/organisations?limit=2&cursor={first['next_cursor']}", headers=reader.headers).json
    assert [item["name"] for item in first["items"] + second["items"]] == [
        "Bank", "Buyer One", "Buyer Two", "Supplier Three"]
    assert second["next_cursor"] is None
    assert problem_code(client.get("/api/v1/organisations?role=operatorx", headers=reader.headers)) == "invalid-input"


def test_the_directory_needs_an_active_caller(app, client):
    assert client.get("/api/v1/organisations").status_code == 401
    # An inactive organisation's keys are good, but it can do nothing, reading included.
    for state in ({"suspended": True}, {"kyc": KycStatus.PENDING}):
        response = client.get("/api/v1/organisations", headers=caller(app, Role.SUPPLIER, **state).headers)
        assert (response.status_code, problem_code(response)) == (403, "organisation-inactive")


def test_an_unknown_organisation_is_404(client, operator):
    assert client.get("/api/v1/organisations/9999", headers=operator.headers).status_code == 404


# ---------------------------------------------------------------- creating


def test_the_operator_creates_an_organisation_pending_kyc(app, client, operator):
    response = client.post("/api/v1/organisations", headers=operator.headers, json={
        "name": "Acme", "legal_identifier": VALID_LEI, "roles": ["supplier", "financier"]})

    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"] == f"/api/v1/organisations/{body['id']}"
    assert (body["kyc_status"], body["roles"], body["suspended"]) == ("pending", ["supplier", "financier"], False)
    assert body["chain_address"].startswith("0x") and body["participant_id"] is None
    assert "keystore" not in response.get_data(as_text=True)
    assert client.get(response.headers["Location"], headers=operator.headers).json == body


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Acme", "legal_identifier": "not an identifier", "roles": ["supplier"]}, "legal_identifier"),
    ({"name": "Acme", "legal_identifier": VALID_LEI, "roles": []}, "roles"),
    ({"name": "Acme", "legal_identifier": VALID_LEI, "roles": ["operator"]}, "roles"),
    ({"name": "Acme", "legal_identifier": VALID_LEI, "roles": ["banker"]}, "roles.0"),
    ({"legal_identifier": VALID_LEI, "roles": ["supplier"]}, "name"),
])
def test_bad_organisation_details_are_422(client, operator, body, field):
    response = client.post("/api/v1/organisations", headers=operator.headers, json=body)
    assert (response.status_code, problem_code(response)) == (422, "invalid-input")
    assert field in response.json["errors"]


def test_a_taken_legal_identifier_is_409(client, operator):
    body = {"name": "Acme", "legal_identifier": VALID_LEI, "roles": ["buyer"]}
    assert client.post("/api/v1/organisations", headers=operator.headers, json=body).status_code == 201
    response = client.post("/api/v1/organisations", headers=operator.headers, json=body | {"name": "Acme 2"})
    assert (response.status_code, problem_code(response)) == (409, "duplicate")


@pytest.mark.parametrize("credentials", [
    {"roles": Role.SUPPLIER}, {"roles": Role.AUDITOR}, {"roles": Role.OPERATOR, "scopes": ("read",)}])
def test_only_the_operators_writing_key_creates_organisations(app, client, credentials):
    key = caller(app, credentials["roles"], scopes=credentials.get("scopes", ("read", "write")))
    response = client.post("/api/v1/organisations", headers=key.headers, json={
        "name": "Acme", "legal_identifier": VALID_LEI, "roles": ["supplier"]})
    assert (response.status_code, problem_code(response)) == (403, "permission-denied")


# ---------------------------------------------------------------- KYC


def new_organisation(client, operator: Credentials, roles: list[str]) -> dict[str, Any]:
    return client.post("/api/v1/organisations", headers=operator.headers, json={
        "name": "Acme", "legal_identifier": "0088:123", "roles": roles}).json


def test_an_approval_is_accepted_and_queues_the_onboarding(app, client, operator):
    org = new_organisation(client, operator, ["supplier", "buyer"])

    response = client.post(f"/api/v1/organisations/{org['id']}/kyc", headers=operator.headers,
                           json={"decision": "approve", "note": "register extract checked",
                                 "documents_checked": ["business_licence"]})

    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/v1/organisations/{org['id']}"
    assert response.json["kyc_status"] == "approved"
    assert intents(app) == [(f"organisation:{org['id']}:onboard", "onboard",
                             [org["chain_address"], 3, "0x" + hashlib.sha256(b"0088:123").hexdigest()])]


def test_a_rejection_is_answered_at_once_and_a_second_decision_is_409(app, client, operator):
    org = new_organisation(client, operator, ["financier"])
    url = f"/api/v1/organisations/{org['id']}/kyc"

    response = client.post(url, headers=operator.headers, json={"decision": "reject"})
    assert (response.status_code, response.json["kyc_status"]) == (200, "rejected")
    again = client.post(url, headers=operator.headers, json={"decision": "approve", "documents_checked": ["business_licence"]})
    assert (again.status_code, problem_code(again)) == (409, "invalid-state")
    assert intents(app) == []


def test_kyc_decisions_refuse_bad_input_strangers_and_unknown_organisations(app, client, operator):
    org = new_organisation(client, operator, ["buyer"])
    url = f"/api/v1/organisations/{org['id']}/kyc"
    assert problem_code(client.post(url, headers=operator.headers, json={"decision": "maybe"})) == "invalid-input"
    buyer = caller(app, Role.BUYER)
    assert client.post(url, headers=buyer.headers, json={"decision": "approve", "documents_checked": ["business_licence"]}).status_code == 403
    assert client.post("/api/v1/organisations/9999/kyc", headers=operator.headers,
                       json={"decision": "approve", "documents_checked": ["business_licence"]}).status_code == 404
    with app.app_context():
        assert db.session.get(Organisation, org["id"]).kyc_status == KycStatus.PENDING


# ---------------------------------------------------------------- suspension


def test_a_suspension_and_a_reinstatement_are_accepted_and_queued(app, client, operator):
    member = caller(app, Role.SUPPLIER)
    url = f"/api/v1/organisations/{member.organisation_id}/suspension"

    suspended = client.post(url, headers=operator.headers, json={"reason": "sanctions screening"})
    assert (suspended.status_code, suspended.json["suspended"]) == (202, True)
    assert suspended.json["suspension_reason"] == "sanctions screening"
    assert suspended.headers["Location"] == f"/api/v1/organisations/{member.organisation_id}"
    assert client.get("/api/v1/organisations", headers=member.headers).status_code == 403  # at once

    reinstated = client.delete(url, headers=operator.headers)
    assert (reinstated.status_code, reinstated.json["suspended"]) == (202, False)
    assert client.get("/api/v1/organisations", headers=member.headers).status_code == 200
    assert [(key, function) for key, function, _ in intents(app)] == [
        (f"organisation:{member.organisation_id}:suspend:1", "suspend"),
        (f"organisation:{member.organisation_id}:reinstate:1", "reinstate")]


def test_suspension_refusals(app, client, operator):
    member_id = participant(app)
    url = f"/api/v1/organisations/{member_id}/suspension"

    assert problem_code(client.post(url, headers=operator.headers, json={})) == "invalid-input"
    assert problem_code(client.delete(url, headers=operator.headers)) == "invalid-state"
    assert client.post(url, headers=operator.headers, json={"reason": "fees"}).status_code == 202
    assert problem_code(client.post(url, headers=operator.headers, json={"reason": "fees"})) == "invalid-state"
    own = client.post(f"/api/v1/organisations/{operator.organisation_id}/suspension", headers=operator.headers,
                      json={"reason": "oops"})
    assert (own.status_code, problem_code(own)) == (403, "permission-denied")
    financier = caller(app, Role.FINANCIER)
    assert client.delete(url, headers=financier.headers).status_code == 403
    assert client.post("/api/v1/organisations/9999/suspension", headers=operator.headers,
                       json={"reason": "x"}).status_code == 404
