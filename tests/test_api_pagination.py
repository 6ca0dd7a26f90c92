"""Cursor pagination: a stable order through ties, on both database backends; the last page; the
Link header; limit bounds; cursors that were tampered with or belong to another list."""
from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from backend.extensions import db
from backend.models import Organisation, Role
from tests import domain_factories as factories
from tests.api_support import Credentials, issue_api_key, with_probe

BY_NAME = "/api/v1/probe/organisations"
BY_DATE = "/api/v1/probe/organisations/by-date"
MIDNIGHT = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return with_probe(app).test_client()


@pytest.fixture
def credentials(db_session: Any) -> Credentials:
    return issue_api_key(factories.organisation(Role.FINANCIER, name="A"))


def seed(names_and_minutes: list[tuple[str, int]]) -> None:
    """Organisations with these names, created these minutes after MIDNIGHT (ties on purpose)."""
    for name, minutes in names_and_minutes:
        org = factories.organisation(Role.SUPPLIER, name=name)
        org.created_at = MIDNIGHT + timedelta(minutes=minutes)
    db.session.commit()


def all_pages(client: FlaskClient, credentials: Credentials, url: str, limit: int) -> list[list[int]]:
    """The ids on each page, following next_cursor to the end."""
    pages: list[list[int]] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get(url, query_string=query, headers=credentials.headers)
        assert response.status_code == 200
        body = response.get_json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            assert "Link" not in response.headers
            return pages
        assert len(pages) < 100, "the pages never end"


TIED = [("B", 3), ("A", 1), ("C", 2), ("A", 1), ("B", 0), ("A", 2), ("B", 3)]


def test_pages_follow_the_sort_then_the_id_through_ties(client: FlaskClient, credentials: Credentials) -> None:
    seed(TIED)
    expected = db.session.scalars(select(Organisation.id).order_by(Organisation.name, Organisation.id)).all()

    pages = all_pages(client, credentials, BY_NAME, limit=2)

    assert [len(page) for page in pages] == [2, 2, 2, 2]  # 8 organisations: the last page is full
    assert [item for page in pages for item in page] == expected


@pytest.fixture
def backend_client(app_on_each_backend: Flask) -> Iterator[tuple[FlaskClient, Credentials]]:
    with app_on_each_backend.app_context():
        credentials = issue_api_key(factories.organisation(Role.FINANCIER, name="A"))
        yield with_probe(app_on_each_backend).test_client(), credentials
        db.session.rollback()


def test_timestamp_cursors_page_through_ties_on_each_backend(backend_client: tuple[FlaskClient, Credentials]) -> None:
    client, credentials = backend_client
    seed(TIED)
    expected = db.session.scalars(select(Organisation.id).order_by(Organisation.created_at, Organisation.id)).all()

    pages = all_pages(client, credentials, BY_DATE, limit=3)

    assert [item for page in pages for item in page] == expected
    assert [len(page) for page in pages] == [3, 3, 2]


def test_a_row_added_behind_the_cursor_does_not_shift_the_pages(client: FlaskClient,
                                                                 credentials: Credentials) -> None:
    seed([("B", 0), ("C", 0), ("D", 0)])
    first = client.get(BY_NAME, query_string={"limit": 2}, headers=credentials.headers).get_json()
    seed([("AA", 0)])  # sorts before the cursor

    second = client.get(BY_NAME, query_string={"limit": 2, "cursor": first["next_cursor"]},
                        headers=credentials.headers).get_json()

    names = [item["name"] for item in first["items"] + second["items"]]
    assert names == ["A", "B", "C", "D"]


def test_a_page_with_a_next_page_links_to_it_keeping_the_query(client: FlaskClient, credentials: Credentials) -> None:
    seed([("B", 0), ("C", 0)])

    response = client.get(BY_NAME, query_string={"limit": 1}, headers=credentials.headers)

    cursor = response.get_json()["next_cursor"]
    assert response.headers["Link"] == f'<http://localhost{BY_NAME}?limit=1&cursor={cursor}>; rel="next"'


def test_the_default_page_holds_fifty(client: FlaskClient, credentials: Credentials) -> None:
    seed([(f"org {n:02}", 0) for n in range(50)])  # 51 with the caller's own

    body = client.get(BY_NAME, headers=credentials.headers).get_json()

    assert len(body["items"]) == 50
    assert body["next_cursor"] is not None


@pytest.mark.parametrize("limit", [0, -1, 201])
def test_a_limit_out_of_bounds_is_invalid_input(client: FlaskClient, credentials: Credentials, limit: int) -> None:
    response = client.get(BY_NAME, query_string={"limit": limit}, headers=credentials.headers)

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"limit"}


@pytest.mark.parametrize("limit", [1, 200])
def test_the_limits_bounds_are_allowed(client: FlaskClient, credentials: Credentials, limit: int) -> None:
    assert client.get(BY_NAME, query_string={"limit": limit}, headers=credentials.headers).status_code == 200


def _tamper(cursor: str) -> str:
    """The cursor with its payload changed (the next id) and its MAC kept."""
    payload, mac = cursor.split(".")
    values = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    values[-1] += 1
    forged = base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{forged}.{mac}"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_tamper, id="payload changed"),
        pytest.param(lambda cursor: cursor[:-2], id="mac cut short"),
        pytest.param(lambda cursor: "not-a-cursor", id="garbage"),
        pytest.param(lambda cursor: "a.b.c", id="too many parts"),
        pytest.param(lambda cursor: "ü.ü", id="not base64"),
    ],
)
def test_a_tampered_cursor_is_invalid_input_on_the_cursor(client: FlaskClient, credentials: Credentials,
                                                          spoil: Any) -> None:
    seed([("B", 0), ("C", 0)])
    cursor = client.get(BY_NAME, query_string={"limit": 1}, headers=credentials.headers).get_json()["next_cursor"]

    response = client.get(BY_NAME, query_string={"cursor": spoil(cursor)}, headers=credentials.headers)

    assert response.status_code == 422
    problem = response.get_json()
    assert problem["type"] == "tag:anchorline.dev,2026:problems/invalid-input"
    assert set(problem["errors"]) == {"cursor"}


def test_a_cursor_of_another_list_is_refused(client: FlaskClient, credentials: Credentials) -> None:
    seed([("B", 0), ("C", 0)])
    cursor = client.get(BY_NAME, query_string={"limit": 1}, headers=credentials.headers).get_json()["next_cursor"]

    response = client.get(BY_DATE, query_string={"cursor": cursor}, headers=credentials.headers)

    assert response.status_code == 422


def test_a_cursor_signed_under_another_secret_key_is_refused(app: Flask, client: FlaskClient,
                                                             credentials: Credentials) -> None:
    seed([("B", 0), ("C", 0)])
    cursor = client.get(BY_NAME, query_string={"limit": 1}, headers=credentials.headers).get_json()["next_cursor"]
    app.config["SECRET_KEY"] = "rotated"

    response = client.get(BY_NAME, query_string={"cursor": cursor}, headers=credentials.headers)

    assert response.status_code == 422
