"""Every error under /api/v1 is an RFC 9457 problem document with a stable type; errors
elsewhere keep Flask's defaults."""
from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from backend.api.problems import flatten_field_errors
from tests.api_support import Credentials, issue_api_key, with_probe

PROBLEMS = "tag:anchorline.dev,2026:problems/"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return with_probe(app).test_client()


@pytest.fixture
def credentials(db_session: Any) -> Credentials:
    return issue_api_key()


def problem_of(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The response's problem document, checked for the fields every problem has."""
    assert response.status_code == status
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == PROBLEMS + code
    assert problem["status"] == status
    assert problem["title"]
    assert problem["instance"] == response.request.path
    return problem


@pytest.mark.parametrize(
    ("code", "status", "title"),
    [
        ("not-found", 404, "Not found"),
        ("permission-denied", 403, "Permission denied"),
        ("organisation-inactive", 403, "Organisation inactive"),
        ("invalid-input", 422, "Invalid input"),
        ("invalid-state", 409, "Invalid state"),
        ("duplicate", 409, "Duplicate"),
        ("authentication-failed", 401, "Authentication failed"),
    ],
)
def test_each_service_error_has_its_status_and_type(client: FlaskClient, credentials: Credentials, code: str,
                                                    status: int, title: str) -> None:
    response = client.get(f"/api/v1/probe/failures/service/{code}", headers=credentials.headers)

    problem = problem_of(response, status, code)
    assert problem["title"] == title
    assert problem["detail"] == f"probe {code}"


def test_field_errors_of_a_service_error_are_passed_on(client: FlaskClient, credentials: Credentials) -> None:
    response = client.get("/api/v1/probe/failures/service/invalid-input", headers=credentials.headers)

    assert problem_of(response, 422, "invalid-input")["errors"] == {"field": ["what is wrong with it"]}


def test_a_problem_without_field_errors_has_no_errors_member(client: FlaskClient, credentials: Credentials) -> None:
    response = client.get("/api/v1/probe/failures/service/not-found", headers=credentials.headers)

    assert "errors" not in problem_of(response, 404, "not-found")


def test_body_validation_errors_are_flattened_to_dotted_fields(client: FlaskClient, credentials: Credentials) -> None:
    response = client.post("/api/v1/probe/orders", headers=credentials.headers,
                           json={"amount": {"value": "lots"}, "lines": [{"description": "ok"}, {}]})

    problem = problem_of(response, 422, "invalid-input")
    assert problem["errors"] == {
        "amount.value": ["Not a decimal."],
        "amount.currency": ["Missing data for required field."],
        "lines.1.description": ["Missing data for required field."],
    }
    assert problem["detail"] == "some fields of the request are not valid"


def test_query_validation_errors_name_the_parameter(client: FlaskClient, credentials: Credentials) -> None:
    response = client.get("/api/v1/probe/organisations?limit=many", headers=credentials.headers)

    assert problem_of(response, 422, "invalid-input")["errors"] == {"limit": ["Not a valid integer."]}


def test_a_body_that_is_not_json_is_a_bad_request(client: FlaskClient, credentials: Credentials) -> None:
    response = client.post("/api/v1/probe/orders", headers=credentials.headers, data="{not json",
                           content_type="application/json")

    problem = problem_of(response, 400, "bad-request")
    assert problem["errors"] == {"_schema": ["Invalid JSON body."]}
    assert problem["detail"] == "Invalid JSON body."


def test_flattening_keeps_every_message_of_every_location() -> None:
    messages = {
        "json": {"a": ["one"], "b": {"c": ["two", "three"]}, "_schema": ["whole"]},
        "query": {"limit": ["four"]},
        "headers": ["five"],
    }

    assert flatten_field_errors(messages) == {
        "a": ["one"],
        "b.c": ["two", "three"],
        "_schema": ["whole", "five"],
        "limit": ["four"],
    }


def test_an_unknown_route_is_a_not_found_problem(client: FlaskClient) -> None:
    problem_of(client.get("/api/v1/no-such-thing"), 404, "not-found")


def test_a_wrong_method_is_a_problem_that_says_which_are_allowed(client: FlaskClient) -> None:
    response = client.put("/api/v1/session")

    problem_of(response, 405, "method-not-allowed")
    assert {"GET", "POST", "DELETE"} <= set(response.headers["Allow"].split(", "))


@pytest.mark.parametrize(
    ("status", "code", "title"),
    [
        (415, "unsupported-media-type", "Unsupported media type"),
        (409, "conflict", "Conflict"),
        (503, "service-unavailable", "Service unavailable"),
    ],
)
def test_other_http_errors_are_named_after_their_status(client: FlaskClient, credentials: Credentials, status: int,
                                                        code: str, title: str) -> None:
    response = client.get(f"/api/v1/probe/failures/http/{status}", headers=credentials.headers)

    assert problem_of(response, status, code)["title"] == title


def test_a_request_larger_than_the_limit_is_refused(app: Flask, client: FlaskClient, credentials: Credentials) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 64

    response = client.post("/api/v1/probe/notes", headers=credentials.headers, json={"note": "x" * 100})

    problem = problem_of(response, 413, "request-too-large")
    assert "64 bytes" in problem["detail"]


def test_an_unexpected_error_is_logged_with_the_request_id_but_never_shown(
    client: FlaskClient, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="backend.api.problems"):
        response = client.post("/api/v1/probe/crash", headers={**credentials.headers, "X-Request-ID": "trace-me"},
                               json={"note": "the database password"})

    problem = problem_of(response, 500, "internal-error")
    assert "detail" not in problem
    assert "secret" not in response.get_data(as_text=True)
    assert "database password" not in response.get_data(as_text=True)
    (record,) = caplog.records
    assert "trace-me" in record.getMessage()
    assert record.exc_info is not None and "secret internals" in str(record.exc_info[1])


def test_errors_outside_the_api_keep_flasks_pages(client: FlaskClient) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.content_type.startswith("text/html")


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"query_string": {"name": "Acme\x00"}}, "name"),
        ({"json": {"parts": [{"note": "ok"}, {"note": "bad\x00"}]}}, "parts.1.note"),
        ({"data": {"reason": "x\x00y"}}, "reason"),
    ],
)
def test_text_with_a_nul_character_is_refused_before_any_view_reads_it(app, request_kwargs, field):
    """PostgreSQL text cannot hold NUL: it is bad input wherever it appears, not a database error."""
    method = "get" if "query_string" in request_kwargs else "post"
    response = getattr(app.test_client(), method)("/api/v1/organisations", **request_kwargs)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("/invalid-input")
    assert response.json["errors"] == {field: ["contains the NUL character (U+0000)"]}
