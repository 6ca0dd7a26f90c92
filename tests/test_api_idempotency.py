"""Idempotency-Key: a retried POST gets the first answer and writes nothing twice; a key reused
for another request, or still in flight, is a conflict; keys are per principal and expire."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import IDEMPOTENCY_RETENTION, IdempotencyRecord, utcnow
from backend.services.idempotency import (
    ABANDONED_CLAIM_AGE,
    IdempotencyKeyReused,
    IdempotentRequestInProgress,
    StoredResponse,
    claim_key,
    purge_expired_idempotency_records,
    remember_response,
)
from tests.api_support import Credentials, issue_api_key, note_count, sign_in, user_with_password, with_probe

PROBLEMS = "tag:anchorline.dev,2026:problems/"
NOTES = "/api/v1/probe/notes"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return with_probe(app).test_client()


@pytest.fixture
def credentials(db_session: Any) -> Credentials:
    return issue_api_key()


def post_note(client: FlaskClient, credentials: Credentials, key: str | None, note: str = "hello") -> Any:
    headers = {**credentials.headers, **({"Idempotency-Key": key} if key is not None else {})}
    return client.post(NOTES, headers=headers, json={"note": note})


def record_count() -> int:
    return db.session.scalar(select(func.count()).select_from(IdempotencyRecord))


def test_a_retry_gets_the_first_answer_and_writes_nothing_twice(client: FlaskClient, credentials: Credentials) -> None:
    first = post_note(client, credentials, "order-1")
    retry = post_note(client, credentials, "order-1")

    assert first.status_code == retry.status_code == 202
    assert retry.get_data() == first.get_data()
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.headers["Content-Type"] == first.headers["Content-Type"]
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert note_count() == 1


def test_without_a_key_every_post_is_a_new_request(client: FlaskClient, credentials: Credentials) -> None:
    post_note(client, credentials, None)
    post_note(client, credentials, None)

    assert note_count() == 2
    assert record_count() == 0


def test_a_key_reused_for_another_request_is_a_conflict(client: FlaskClient, credentials: Credentials) -> None:
    post_note(client, credentials, "order-1", note="hello")

    response = post_note(client, credentials, "order-1", note="goodbye")

    assert response.status_code == 409
    assert response.get_json()["type"] == PROBLEMS + "idempotency-key-reused"
    assert note_count() == 1


def test_the_query_string_is_part_of_the_request(client: FlaskClient, credentials: Credentials) -> None:
    headers = {**credentials.headers, "Idempotency-Key": "order-1"}
    client.post(NOTES, headers=headers, json={"note": "hello"})

    response = client.post(f"{NOTES}?copy=2", headers=headers, json={"note": "hello"})

    assert response.status_code == 409


def test_a_key_whose_first_request_is_in_flight_is_a_conflict(client: FlaskClient, credentials: Credentials) -> None:
    post_note(client, credentials, "order-1")
    record = db.session.scalar(select(IdempotencyRecord))
    record.response_status = None  # as while the first request is still being handled
    db.session.commit()

    response = post_note(client, credentials, "order-1")

    assert response.status_code == 409
    assert response.get_json()["type"] == PROBLEMS + "idempotency-request-in-progress"
    assert note_count() == 1


def test_two_principals_may_use_the_same_key(client: FlaskClient, credentials: Credentials) -> None:
    other = issue_api_key()

    post_note(client, credentials, "order-1")
    response = post_note(client, other, "order-1")

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response.headers
    assert note_count() == 2


def test_a_signed_in_user_is_a_principal_too(client: FlaskClient, db_session: Any) -> None:
    person = user_with_password()
    sign_in(client, person.email)

    first = client.post(NOTES, headers={"Idempotency-Key": "k"}, json={"note": "hello"})
    retry = client.post(NOTES, headers={"Idempotency-Key": "k"}, json={"note": "hello"})

    assert first.status_code == 202
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(select(IdempotencyRecord.principal)) == f"user:{person.id}"
    assert note_count() == 1


def test_a_client_error_is_remembered_too(client: FlaskClient, credentials: Credentials) -> None:
    first = client.post(NOTES, headers={**credentials.headers, "Idempotency-Key": "k"}, json={"note": ""})
    retry = client.post(NOTES, headers={**credentials.headers, "Idempotency-Key": "k"}, json={"note": ""})

    assert first.status_code == retry.status_code == 422
    assert retry.get_json() == first.get_json()
    assert retry.headers["Content-Type"] == "application/problem+json"
    assert retry.headers["Idempotent-Replayed"] == "true"


def test_a_server_error_gives_the_key_back_so_a_retry_runs(client: FlaskClient, credentials: Credentials) -> None:
    headers = {**credentials.headers, "Idempotency-Key": "k"}

    assert client.post("/api/v1/probe/crash", headers=headers, json={"note": "x"}).status_code == 500
    assert record_count() == 0

    retry = client.post("/api/v1/probe/crash", headers=headers, json={"note": "x"})
    assert retry.status_code == 500
    assert "Idempotent-Replayed" not in retry.headers


def test_an_expired_key_starts_afresh(client: FlaskClient, credentials: Credentials) -> None:
    post_note(client, credentials, "order-1")
    record = db.session.scalar(select(IdempotencyRecord))
    record.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    response = post_note(client, credentials, "order-1", note="a different request, now allowed")

    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response.headers
    assert note_count() == 2
    assert record_count() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tinside", "ключ"])
def test_a_malformed_key_is_invalid_input(client: FlaskClient, credentials: Credentials, key: str) -> None:
    headers = {**credentials.headers, "Idempotency-Key": key}
    response = client.post(NOTES, headers=headers, json={"note": "hello"})

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"Idempotency-Key"}
    assert note_count() == 0


def test_the_longest_printable_key_is_accepted(client: FlaskClient, credentials: Credentials) -> None:
    assert post_note(client, credentials, "~ key with spaces " + "k" * 237).status_code == 202


def test_a_key_without_credentials_is_an_authentication_failure(client: FlaskClient, db_session: Any) -> None:
    response = client.post(NOTES, headers={"Idempotency-Key": "k"}, json={"note": "hello"})

    assert response.status_code == 401
    assert record_count() == 0


def test_signing_in_takes_no_key(client: FlaskClient, db_session: Any) -> None:
    person = user_with_password()

    response = client.post("/api/v1/session", headers={"Idempotency-Key": "k"},
                           json={"email": person.email, "password": "correct horse battery staple"})

    assert response.status_code == 204
    assert record_count() == 0


# ---------------------------------------------------------------- the service


@pytest.fixture
def on_each_backend(app_on_each_backend: Flask) -> Iterator[None]:
    """An application context on SQLite, then on PostgreSQL (the claim relies on each one's
    unique constraint)."""
    with app_on_each_backend.app_context():
        yield
        db.session.rollback()


def test_a_concurrent_claim_of_the_same_key_waits_for_the_first(on_each_backend: None) -> None:
    now = utcnow()
    assert claim_key("apikey:1", "k", "fingerprint", now=now) is None

    with pytest.raises(IdempotentRequestInProgress):
        claim_key("apikey:1", "k", "fingerprint", now=now)
    with pytest.raises(IdempotencyKeyReused):
        claim_key("apikey:1", "k", "another fingerprint", now=now)


def test_an_answered_claim_is_replayed(on_each_backend: None) -> None:
    now = utcnow()
    claim_key("apikey:1", "k", "fingerprint", now=now)
    answer = StoredResponse(201, '{"id": 1}', {"Location": ["/x/1"]})
    remember_response("apikey:1", "k", answer)

    assert claim_key("apikey:1", "k", "fingerprint", now=now) == answer


def test_a_claim_abandoned_by_a_dead_request_is_taken_over_once(on_each_backend: None) -> None:
    then = utcnow()
    claim_key("apikey:1", "k", "fingerprint", now=then)
    later = then + ABANDONED_CLAIM_AGE

    assert claim_key("apikey:1", "k", "fingerprint", now=later) is None
    with pytest.raises(IdempotentRequestInProgress):
        claim_key("apikey:1", "k", "fingerprint", now=later)


def test_expired_records_are_purged(on_each_backend: None) -> None:
    now = utcnow()
    claim_key("apikey:1", "old", "fingerprint", now=now - IDEMPOTENCY_RETENTION)
    claim_key("apikey:1", "new", "fingerprint", now=now)

    assert purge_expired_idempotency_records(now) == 1

    assert db.session.scalars(select(IdempotencyRecord.key)).all() == ["new"]
