"""Authentication: API keys and passwords checked by the service, the caller of a request (bearer
key or session cookie), signing in and out, and the request id."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.config import load_config
from backend.extensions import db
from backend.models import ApiKey, AuditLog, KycStatus, Role, User, utcnow
from backend.security.passwords import DEFAULT_HASHER, hash_password, make_password_hasher, verify_password
from backend.services.authentication import (
    INVALID_API_KEY,
    INVALID_LOGIN,
    LAST_USED_RESOLUTION,
    actor_for_api_key,
    actor_for_user,
    authenticate_user,
)
from backend.services.errors import AuthenticationFailed, OrganisationInactive
from tests import domain_factories as factories
from tests.api_support import (
    CHEAP_HASHER,
    NOTE_ACTION,
    PASSWORD,
    issue_api_key,
    sign_in,
    user_with_password,
    with_probe,
)

PROBLEMS = "tag:anchorline.dev,2026:problems/"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return with_probe(app).test_client()


# ---------------------------------------------------------------- API keys (service)


def test_a_valid_key_gives_its_organisation_acting_through_it(db_session: Any) -> None:
    credentials = issue_api_key()

    actor = actor_for_api_key(credentials.token, request_id="req-1")

    assert actor.organisation.id == credentials.organisation_id
    assert actor.api_key is not None and actor.api_key.id == credentials.key_id
    assert actor.user is None
    assert actor.request_id == "req-1"
    assert actor.principal == credentials.principal


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda key, token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="wrong secret"),
        pytest.param(lambda key, token: token.replace(key.prefix, "aaaaaaaa"), id="unknown prefix"),
        pytest.param(lambda key, token: "not-a-key", id="malformed"),
        pytest.param(lambda key, token: setattr(key, "revoked_at", utcnow()) or token, id="revoked"),
        pytest.param(lambda key, token: setattr(key, "expires_at", utcnow() - timedelta(seconds=1)) or token,
                     id="expired"),
        pytest.param(lambda key, token: setattr(key, "created_by", _inactive_user(key)) or token,
                     id="creator deactivated"),
    ],
)
def test_every_unusable_key_is_refused_with_one_message(db_session: Any, spoil: Any) -> None:
    credentials = issue_api_key()
    key = db.session.get(ApiKey, credentials.key_id)
    token = spoil(key, credentials.token)
    db.session.commit()

    with pytest.raises(AuthenticationFailed) as refusal:
        actor_for_api_key(token, request_id=None)

    assert refusal.value.detail == INVALID_API_KEY


@pytest.mark.parametrize(
    "make_inactive",
    [
        pytest.param(lambda org: setattr(org, "suspended", True), id="org suspended"),
        pytest.param(lambda org: setattr(org, "kyc_status", KycStatus.PENDING), id="org not approved"),
    ],
)
def test_a_good_key_of_an_inactive_organisation_is_told_why_it_can_do_nothing(db_session: Any, make_inactive: Any) -> None:
    credentials = issue_api_key()
    make_inactive(db.session.get(ApiKey, credentials.key_id).organisation)
    db.session.commit()

    with pytest.raises(OrganisationInactive):
        actor_for_api_key(credentials.token, request_id=None)


def _inactive_user(key: ApiKey) -> User:
    person = factories.user(key.organisation)
    person.is_active = False
    return person


def test_a_key_in_use_is_noted_at_most_once_a_minute(db_session: Any) -> None:
    credentials = issue_api_key()
    key = db.session.get(ApiKey, credentials.key_id)

    actor_for_api_key(credentials.token, request_id=None)
    first_use = key.last_used_at
    actor_for_api_key(credentials.token, request_id=None)

    assert first_use is not None
    assert key.last_used_at == first_use  # read again within the minute: nothing written

    key.last_used_at = first_use - LAST_USED_RESOLUTION
    db.session.commit()
    actor_for_api_key(credentials.token, request_id=None)
    assert key.last_used_at > first_use


# ---------------------------------------------------------------- passwords (service)


def test_the_right_password_signs_in_and_notes_the_login(db_session: Any) -> None:
    person = user_with_password(email="Ada@Example.com")

    signed_in = authenticate_user("  ADA@example.COM ", PASSWORD, hasher=CHEAP_HASHER)

    assert signed_in.id == person.id
    assert signed_in.last_login_at is not None


@pytest.mark.parametrize(
    ("email", "password", "active"),
    [
        pytest.param("ada@example.com", "not the password", True, id="wrong password"),
        pytest.param("nobody@example.com", PASSWORD, True, id="unknown address"),
        pytest.param("ada@example.com", PASSWORD, False, id="deactivated user"),
    ],
)
def test_every_refused_login_gets_one_message(db_session: Any, email: str, password: str, active: bool) -> None:
    person = user_with_password(email="ada@example.com")
    person.is_active = active
    db.session.commit()

    with pytest.raises(AuthenticationFailed) as refusal:
        authenticate_user(email, password, hasher=CHEAP_HASHER)

    assert refusal.value.detail == INVALID_LOGIN
    assert db.session.get(User, person.id).last_login_at is None


def test_an_unknown_address_is_checked_against_a_hash_as_costly_as_a_real_one(
    db_session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    monkeypatch.setattr("backend.services.authentication.verify_password",
                        lambda stored, password, hasher: checked.append(stored) or False)

    with pytest.raises(AuthenticationFailed):
        authenticate_user("nobody@example.com", PASSWORD, hasher=CHEAP_HASHER)

    (dummy,) = checked
    assert not CHEAP_HASHER.check_needs_rehash(dummy)  # made with the same parameters as real hashes


def test_a_corrupt_stored_hash_refuses_the_login_instead_of_failing(db_session: Any) -> None:
    person = factories.user(factories.organisation(Role.SUPPLIER))  # the factory's hash is not usable
    db.session.commit()

    with pytest.raises(AuthenticationFailed):
        authenticate_user(person.email, PASSWORD, hasher=CHEAP_HASHER)


def test_a_hash_made_with_weaker_parameters_is_replaced_at_login(db_session: Any) -> None:
    weaker = make_password_hasher(time_cost=1, memory_cost=32)
    person = user_with_password()
    person.password_hash = hash_password(PASSWORD, hasher=weaker)
    db.session.commit()

    authenticate_user(person.email, PASSWORD, hasher=CHEAP_HASHER)

    stored = db.session.get(User, person.id).password_hash
    assert not CHEAP_HASHER.check_needs_rehash(stored)
    assert verify_password(stored, PASSWORD, hasher=CHEAP_HASHER)


def test_a_session_ends_when_its_user_is_deactivated(db_session: Any) -> None:
    person = user_with_password()
    assert actor_for_user(person.id, request_id=None).user is person

    person.is_active = False
    db.session.commit()

    with pytest.raises(AuthenticationFailed):
        actor_for_user(person.id, request_id=None)
    with pytest.raises(AuthenticationFailed):
        actor_for_user(10_000, request_id=None)


# ---------------------------------------------------------------- the caller of a request


def test_a_bearer_key_identifies_the_caller(client: FlaskClient, db_session: Any) -> None:
    credentials = issue_api_key()

    response = client.get("/api/v1/session", headers=credentials.headers)

    assert response.status_code == 200
    assert response.get_json() == {
        "organisation": {"id": credentials.organisation_id, "name": response.get_json()["organisation"]["name"],
                         "roles": ["financier"]},
        "user": None,
        "api_key": {"id": credentials.key_id, "name": "test key", "prefix": credentials.token[3:11],
                    "scopes": ["read", "write"]},
    }


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        pytest.param({}, "authentication required", id="no credentials"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed Authorization header", id="not bearer"),
        pytest.param({"Authorization": "Bearer"}, "malformed Authorization header", id="no token"),
        pytest.param({"Authorization": "Bearer al_aaaaaaaa_" + "x" * 43}, INVALID_API_KEY, id="unknown key"),
    ],
)
def test_a_caller_without_valid_credentials_gets_a_401_problem(
    client: FlaskClient, db_session: Any, headers: dict[str, str], detail: str
) -> None:
    response = client.get("/api/v1/session", headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == PROBLEMS + "authentication-failed"
    assert problem["detail"].startswith(detail)


def test_signing_in_sets_a_session_cookie_that_identifies_the_user(client: FlaskClient, db_session: Any) -> None:
    person = user_with_password(email="ada@example.com")

    response = sign_in(client, "ADA@example.com")

    assert response.status_code == 204
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("anchorline_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # under test; see the next test for everywhere else
    who = client.get("/api/v1/session").get_json()
    assert who["user"] == {"id": person.id, "email": "ada@example.com", "display_name": "Test User"}
    assert who["api_key"] is None
    assert who["organisation"]["roles"] == ["supplier"]


def test_session_cookies_need_https_except_under_test_or_debugging(tmp_path: Path) -> None:
    assert load_config({}, instance_dir=tmp_path)["SESSION_COOKIE_SECURE"] is True
    assert load_config({"TESTING": True}, instance_dir=tmp_path)["SESSION_COOKIE_SECURE"] is False
    assert load_config({"DEBUG": True}, instance_dir=tmp_path)["SESSION_COOKIE_SECURE"] is False


def test_signing_out_ends_the_session(client: FlaskClient, db_session: Any) -> None:
    person = user_with_password()
    sign_in(client, person.email)

    assert client.delete("/api/v1/session").status_code == 204

    assert client.get("/api/v1/session").status_code == 401
    assert client.delete("/api/v1/session").status_code == 204  # signing out twice is harmless


def test_a_session_of_a_deactivated_user_is_refused(client: FlaskClient, db_session: Any) -> None:
    person = user_with_password()
    sign_in(client, person.email)
    person.is_active = False
    db.session.commit()

    assert client.get("/api/v1/session").status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"email": "ada@example.com", "password": "wrong password"}, 401, id="wrong password"),
        pytest.param({"email": "eve@example.com", "password": PASSWORD}, 401, id="unknown address"),
        pytest.param({"email": "not an address", "password": PASSWORD}, 422, id="malformed address"),
        pytest.param({"email": "ada@example.com"}, 422, id="no password"),
    ],
)
def test_a_refused_sign_in_sets_no_cookie(client: FlaskClient, db_session: Any, body: dict[str, str],
                                          status: int) -> None:
    user_with_password(email="ada@example.com")

    response = client.post("/api/v1/session", json=body)

    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    assert "Set-Cookie" not in response.headers
    if status == 401:
        assert response.get_json()["detail"] == INVALID_LOGIN


def test_a_bearer_key_wins_over_a_session_cookie(client: FlaskClient, db_session: Any) -> None:
    person = user_with_password()
    sign_in(client, person.email)
    credentials = issue_api_key()

    who = client.get("/api/v1/session", headers=credentials.headers).get_json()

    assert who["api_key"]["id"] == credentials.key_id
    assert who["user"] is None


def test_the_login_verifies_with_the_production_hasher(client: FlaskClient, db_session: Any) -> None:
    person = user_with_password()  # hashed with CHEAP_HASHER: the login rehashes with the default

    assert sign_in(client, person.email).status_code == 204

    assert not DEFAULT_HASHER.check_needs_rehash(db.session.get(User, person.id).password_hash)


# ---------------------------------------------------------------- the request id


def test_a_sane_client_request_id_is_echoed_and_recorded_in_the_audit_entry(client: FlaskClient,
                                                                           db_session: Any) -> None:
    credentials = issue_api_key()

    response = client.post("/api/v1/probe/notes", json={"note": "hello"},
                           headers={**credentials.headers, "X-Request-ID": "client-42.retry_1"})

    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "client-42.retry_1"
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == NOTE_ACTION))
    assert entry.request_id == "client-42.retry_1"
    assert entry.api_key_id == credentials.key_id


@pytest.mark.parametrize("offered", ["", "x" * 65, "has space", "semi;colon", "ünïcode"])
def test_an_unusable_client_request_id_is_replaced(client: FlaskClient, db_session: Any, offered: str) -> None:
    response = client.get("/api/v1/session", headers={"X-Request-ID": offered})

    echoed = response.headers["X-Request-ID"]
    assert echoed != offered
    assert len(echoed) == 32 and int(echoed, 16) >= 0  # a uuid4 in hex


def test_every_response_gets_a_fresh_request_id(client: FlaskClient, db_session: Any) -> None:
    ids = {client.get("/api/v1/session").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3
