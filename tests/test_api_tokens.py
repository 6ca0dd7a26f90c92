"""The token-operations API: the operator's mints and burns, and who reads them
(backend/api/tokens.py)."""
from __future__ import annotations

import functools
import hashlib
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from backend.extensions import db
from backend.models import ChainTransaction, KycStatus, Role
from tests import api_support
from tests import domain_factories as factories
from tests.api_support import Credentials, problem_code


# An API key, issued by a user, of a new organisation: a mint or burn must be traceable to a person.
caller = functools.partial(api_support.caller, issued_by_user=True)


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def operator(app: Flask) -> Credentials:
    return caller(app, Role.OPERATOR, onboarded=False)


@pytest.fixture
def financier(app: Flask) -> Credentials:
    return caller(app, Role.FINANCIER)


def operation(organisation_id: int, **fields: Any) -> dict[str, Any]:
    return {"kind": "mint", "organisation_id": organisation_id, "amount": "1234.56", "currency": "CNY",
            "reference": "BANK-0001"} | fields


@pytest.mark.parametrize("kind", ["mint", "burn"])
def test_an_operation_is_accepted_pending_and_queued(app, client, operator, financier, kind):
    response = client.post("/api/v1/token-operations", headers=operator.headers,
                           json=operation(financier.organisation_id, kind=kind))

    assert response.status_code == 202
    body = response.json
    assert response.headers["Location"] == f"/api/v1/token-operations/{body['id']}"
    assert {key: body[key] for key in ("kind", "organisation_id", "amount", "amount_minor", "currency", "status")} == {
        "kind": kind, "organisation_id": financier.organisation_id, "amount": "1234.56", "amount_minor": 123456,
        "currency": "CNY", "status": "pending"}
    assert body["reference"] == "0x" + hashlib.sha256(b"BANK-0001").hexdigest()
    assert client.get(response.headers["Location"], headers=operator.headers).json == body
    with app.app_context():
        (intent,) = db.session.scalars(select(ChainTransaction)).all()
        assert (intent.function, intent.args[1:]) == (kind, [123456, body["reference"]])


@pytest.mark.parametrize(("fields", "field"), [
    ({"currency": "EUR"}, "currency"),
    ({"amount": "1.234"}, "amount"),
    ({"amount": "0"}, "amount"),
    ({"amount": "12,00"}, "amount"),
    ({"kind": "print"}, "kind"),
    ({"reference": ""}, "reference"),
])
def test_bad_operations_are_422(client, operator, financier, fields, field):
    response = client.post("/api/v1/token-operations", headers=operator.headers,
                           json=operation(financier.organisation_id, **fields))
    assert (response.status_code, problem_code(response)) == (422, "invalid-input")
    assert field in response.json["errors"]


def test_a_reference_is_used_once(client, operator, financier):
    assert client.post("/api/v1/token-operations", headers=operator.headers,
                       json=operation(financier.organisation_id)).status_code == 202
    again = client.post("/api/v1/token-operations", headers=operator.headers,
                        json=operation(financier.organisation_id, kind="burn", amount="1"))
    assert (again.status_code, problem_code(again)) == (409, "duplicate")


def test_operations_need_an_active_onboarded_participant(app, client, operator):
    with app.app_context():
        pending = factories.organisation(Role.BUYER, kyc=KycStatus.PENDING)
        db.session.commit()
        pending_id = pending.id
    response = client.post("/api/v1/token-operations", headers=operator.headers, json=operation(pending_id))
    assert (response.status_code, problem_code(response)) == (409, "invalid-state")
    assert client.post("/api/v1/token-operations", headers=operator.headers,
                       json=operation(9999)).status_code == 404


def test_only_the_operator_mints(app, client, financier):
    for roles in (Role.FINANCIER, Role.AUDITOR, Role.BUYER):
        response = client.post("/api/v1/token-operations", headers=caller(app, roles).headers,
                               json=operation(financier.organisation_id))
        assert (response.status_code, problem_code(response)) == (403, "permission-denied")
    read_only = caller(app, Role.OPERATOR, scopes=("read",), onboarded=False)
    assert client.post("/api/v1/token-operations", headers=read_only.headers,
                       json=operation(financier.organisation_id)).status_code == 403


def test_a_participant_reads_its_own_operations_and_the_auditor_all(app, client, operator, financier):
    buyer = caller(app, Role.BUYER)
    auditor = caller(app, Role.AUDITOR, scopes=("read",))
    own = client.post("/api/v1/token-operations", headers=operator.headers,
                      json=operation(financier.organisation_id)).json
    other = client.post("/api/v1/token-operations", headers=operator.headers,
                        json=operation(buyer.organisation_id, reference="BANK-0002")).json

    def listed(credentials: Credentials, query: str = "") -> list[int]:
        response = client.get(f"/api/v1/token-operations{query}", headers=credentials.headers)
        assert response.status_code == 200
        return [item["id"] for item in response.json["items"]]

    assert listed(financier) == [own["id"]]
    assert listed(auditor) == [own["id"], other["id"]]
    assert listed(auditor, f"?organisation_id={buyer.organisation_id}") == [other["id"]]
    assert listed(auditor, "?kind=burn") == listed(auditor, "?status=done") == []
    assert client.get(f"/api/v1/token-operations/{other['id']}", headers=financier.headers).status_code == 404
    assert client.get("/api/v1/token-operations?status=lost", headers=auditor.headers).status_code == 422
