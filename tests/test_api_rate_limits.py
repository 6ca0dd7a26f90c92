"""Rate limits: one budget per principal across the whole API (per address without credentials),
sign-in attempts limited per login name and per address, and a 429 problem that says when to
come back."""
from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backend.app import create_app
from tests.api_support import PASSWORD, issue_api_key, sign_in, user_with_password, with_probe
from tests.db_fixtures import copy_sqlite_template


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.config.update(API_RATE_LIMIT="3 per minute", LOGIN_RATE_LIMIT="2 per minute",
                      LOGIN_ADDRESS_RATE_LIMIT="3 per minute")
    return with_probe(app).test_client()


def assert_rate_limited(response: Any) -> None:
    assert response.status_code == 429
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"] == "tag:anchorline.dev,2026:problems/rate-limited"
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_a_principal_has_one_budget_across_every_route(client: FlaskClient, db_session: Any) -> None:
    credentials = issue_api_key()
    headers = credentials.headers

    first = client.get("/api/v1/session", headers=headers)
    client.get("/api/v1/probe/organisations", headers=headers)
    client.post("/api/v1/probe/notes", headers=headers, json={"note": "hello"})
    over = client.get("/api/v1/session", headers=headers)

    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "2"
    assert_rate_limited(over)
    assert over.headers["X-RateLimit-Remaining"] == "0"


def test_principals_do_not_share_a_budget(client: FlaskClient, db_session: Any) -> None:
    spender, other = issue_api_key(), issue_api_key()
    for _ in range(3):
        client.get("/api/v1/session", headers=spender.headers)

    assert client.get("/api/v1/session", headers=spender.headers).status_code == 429
    assert client.get("/api/v1/session", headers=other.headers).status_code == 200


def test_requests_without_credentials_spend_their_address_budget(client: FlaskClient, db_session: Any) -> None:
    credentials = issue_api_key()
    for _ in range(3):
        assert client.get("/api/v1/session", headers={"Authorization": "Bearer guessed"}).status_code == 401

    assert_rate_limited(client.get("/api/v1/openapi.json"))
    assert client.get("/api/v1/session", headers=credentials.headers).status_code == 200


@pytest.fixture
def login_client(app: Flask, client: FlaskClient) -> FlaskClient:
    """The client, with room in the API's budget for the sign-in limits to bite first."""
    app.config["API_RATE_LIMIT"] = "100 per minute"
    return client


def test_sign_in_attempts_are_limited_per_login_name(app: Flask, login_client: FlaskClient,
                                                     db_session: Any) -> None:
    app.config["LOGIN_ADDRESS_RATE_LIMIT"] = "10 per minute"
    client = login_client
    person = user_with_password(email="ada@example.com")
    sign_in(client, "ada@example.com", "wrong password")
    sign_in(client, "ADA@example.com", "wrong password")  # the same name, however written

    over = sign_in(client, "ada@example.com")

    assert_rate_limited(over)
    assert "Set-Cookie" not in over.headers
    from_elsewhere = client.post("/api/v1/session", json={"email": "ada@example.com", "password": PASSWORD},
                                 environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert_rate_limited(from_elsewhere)
    assert person.last_login_at is None
    assert sign_in(client, user_with_password().email).status_code == 204  # another name is unaffected


def test_sign_ins_spend_the_address_budget_of_the_api_too(client: FlaskClient, db_session: Any) -> None:
    for n in range(3):
        client.get("/api/v1/openapi.json")

    assert_rate_limited(sign_in(client, "ada@example.com"))


def test_sign_in_attempts_are_limited_per_address(login_client: FlaskClient, db_session: Any) -> None:
    client = login_client
    for n in range(3):
        assert sign_in(client, f"guess{n}@example.com", PASSWORD).status_code == 401

    assert_rate_limited(sign_in(client, "guess3@example.com", PASSWORD))
    other_address = client.post("/api/v1/session", json={"email": "guess4@example.com", "password": PASSWORD},
                                environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other_address.status_code == 401


def test_malformed_sign_in_attempts_count_too(login_client: FlaskClient, db_session: Any) -> None:
    client = login_client
    for _ in range(2):
        assert client.post("/api/v1/session", json={"email": "ada@example.com"}).status_code == 422

    assert_rate_limited(sign_in(client, "ada@example.com"))


def test_a_rate_limit_store_that_is_down_costs_no_request(
    migrated_sqlite_template: Any, instance_dir: Any, unused_port: Any
) -> None:
    """With the counters in a Redis that does not answer (several server processes share their
    counters there), requests are still served, neither failed with a 500 nor held up."""
    database_url = copy_sqlite_template(migrated_sqlite_template, instance_dir)
    app = create_app({"DATABASE_URL": database_url, "TESTING": True,
                      "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{unused_port()}/1"})
    with app.app_context():
        headers = issue_api_key().headers
    client = app.test_client()
    started = time.monotonic()
    assert [client.get("/api/v1/session", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    assert time.monotonic() - started < 5
