"""The users and API keys APIs (backend/api/users.py, backend/api/api_keys.py)."""
from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from backend.extensions import db
from backend.models import ApiKey, Organisation, Role, User
from backend.security.passwords import verify_password
from tests import api_support
from tests.api_support import PASSWORD, Credentials, caller, problem_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def operator(app: Flask) -> Credentials:
    return caller(app, Role.OPERATOR, onboarded=False)


# ---------------------------------------------------------------- users


def test_the_operator_creates_a_user(app, client, operator):
    supplier = caller(app, Role.SUPPLIER)

    response = client.post("/api/v1/users", headers=operator.headers, json={
        "organisation_id": supplier.organisation_id, "email": "Buyer.Desk@Example.com", "display_name": "Desk",
        "password": PASSWORD})

    assert response.status_code == 201
    assert {key: response.json[key] for key in ("organisation_id", "email", "display_name", "is_active")} == {
        "organisation_id": supplier.organisation_id, "email": "buyer.desk@example.com", "display_name": "Desk",
        "is_active": True}
    assert "password" not in response.json and "password_hash" not in response.json
    with app.app_context():
        assert verify_password(db.session.get(User, response.json["id"]).password_hash, PASSWORD)


def test_user_refusals(app, client, operator):
    body = {"organisation_id": operator.organisation_id, "email": "ops@example.com", "display_name": "Ops",
            "password": PASSWORD}
    assert client.post("/api/v1/users", headers=operator.headers, json=body).status_code == 201

    duplicate = client.post("/api/v1/users", headers=operator.headers, json=body | {"email": "OPS@example.com"})
    assert (duplicate.status_code, problem_code(duplicate)) == (409, "duplicate")
    weak = client.post("/api/v1/users", headers=operator.headers, json=body | {"email": "b@example.com",
                                                                             "password": "short"})
    assert (weak.status_code, list(weak.json["errors"])) == (422, ["password"])
    missing = client.post("/api/v1/users", headers=operator.headers, json={"email": "c@example.com"})
    assert (missing.status_code, problem_code(missing)) == (422, "invalid-input")
    unknown = client.post("/api/v1/users", headers=operator.headers, json=body | {"organisation_id": 9999})
    assert unknown.status_code == 404
    supplier = caller(app, Role.SUPPLIER)
    refused = client.post("/api/v1/users", headers=supplier.headers, json=body | {"email": "d@example.com"})
    assert (refused.status_code, problem_code(refused)) == (403, "permission-denied")


# ---------------------------------------------------------------- API keys


def test_an_issued_token_is_shown_once_and_works(app, client):
    supplier = caller(app, Role.SUPPLIER)

    response = client.post("/api/v1/api-keys", headers=supplier.headers,
                           json={"name": "ERP", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00Z"})

    assert response.status_code == 201
    issued = response.json
    assert response.headers["Location"] == f"/api/v1/api-keys/{issued['id']}"
    assert issued["token"].startswith(f"al_{issued['prefix']}_")
    assert (issued["scopes"], issued["expires_at"], issued["revoked_at"]) == (
        ["read"], "2999-01-01T00:00:00+00:00", None)
    listed = client.get("/api/v1/api-keys", headers=bearer(issued["token"]))
    assert listed.status_code == 200
    assert {item["name"] for item in listed.json["items"]} == {"test key", "ERP"}
    text = listed.get_data(as_text=True) + client.get(response.headers["Location"], headers=supplier.headers).get_data(
        as_text=True)
    assert issued["token"] not in text and "secret_hash" not in text and "token" not in text
    with app.app_context():
        assert issued["token"] not in db.session.get(ApiKey, issued["id"]).secret_hash


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x", "scopes": ["admin"]}, "scopes.0"),
    ({"name": "x", "scopes": []}, "scopes"),
    ({"name": "", "scopes": ["read"]}, "name"),
    ({"name": "x", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00"}, "expires_at"),  # no time zone
    ({"name": "x", "scopes": ["read"], "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
])
def test_bad_key_details_are_422(app, client, body, field):
    supplier = caller(app, Role.SUPPLIER)
    response = client.post("/api/v1/api-keys", headers=supplier.headers, json=body)
    assert (response.status_code, problem_code(response)) == (422, "invalid-input")
    assert field in response.json["errors"]


def test_an_auditor_may_not_issue_a_writing_key(app, client):
    auditor = caller(app, Role.AUDITOR, scopes=("read",))
    with app.app_context():  # an auditor's key cannot issue keys (it only reads), a signed-in auditor can
        email = api_support.user_with_password(db.session.get(Organisation, auditor.organisation_id)).email
    assert api_support.sign_in(client, email).status_code == 204

    refused = client.post("/api/v1/api-keys", json={"name": "tool", "scopes": ["read", "write"]})
    assert (refused.status_code, problem_code(refused)) == (403, "permission-denied")
    assert client.post("/api/v1/api-keys", json={"name": "tool", "scopes": ["read"]}).status_code == 201


def test_a_revoked_key_authenticates_nothing(app, client):
    supplier = caller(app, Role.SUPPLIER)
    issued = client.post("/api/v1/api-keys", headers=supplier.headers, json={"name": "old", "scopes": ["read"]}).json

    response = client.delete(f"/api/v1/api-keys/{issued['id']}", headers=supplier.headers)

    assert (response.status_code, response.get_data()) == (204, b"")
    assert client.get("/api/v1/api-keys", headers=bearer(issued["token"])).status_code == 401
    again = client.delete(f"/api/v1/api-keys/{issued['id']}", headers=supplier.headers)
    assert (again.status_code, problem_code(again)) == (409, "invalid-state")
    assert client.get(f"/api/v1/api-keys/{issued['id']}", headers=supplier.headers).json["revoked_at"] is not None


def test_keys_are_private_to_their_organisation(app, client):
    supplier, stranger = caller(app, Role.SUPPLIER), caller(app, Role.SUPPLIER)
    for method in (client.get, client.delete):
        assert method(f"/api/v1/api-keys/{supplier.key_id}", headers=stranger.headers).status_code == 404
    assert client.delete("/api/v1/api-keys/9999", headers=stranger.headers).status_code == 404
    assert [item["id"] for item in client.get("/api/v1/api-keys", headers=stranger.headers).json["items"]] == [
        stranger.key_id]
    with app.app_context():
        assert db.session.scalar(select(ApiKey.revoked_at).where(ApiKey.id == supplier.key_id)) is None


def test_a_read_only_key_lists_keys_but_changes_none(app, client):
    reader = caller(app, Role.FINANCIER, scopes=("read",))
    assert client.get("/api/v1/api-keys", headers=reader.headers).status_code == 200
    for response in (client.post("/api/v1/api-keys", headers=reader.headers, json={"name": "x", "scopes": ["read"]}),
                     client.delete(f"/api/v1/api-keys/{reader.key_id}", headers=reader.headers)):
        assert (response.status_code, problem_code(response)) == (403, "permission-denied")
