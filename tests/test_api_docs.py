"""The OpenAPI document (valid OpenAPI 3.1, errors documented as problems, both ways to
authenticate) and Swagger UI served without the internet; schemathesis checks that what the
API answers is what the document says."""
from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from backend.config import SWAGGER_UI_ASSETS_URL
from tests.api_support import issue_api_key, user_with_password, with_probe

PROBLEM_RESPONSE = {"$ref": "#/components/responses/DEFAULT_ERROR"}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return with_probe(app).test_client()


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method != "parameters"]


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()


def test_both_ways_to_authenticate_are_documented(app: Flask, document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"] == {**schemes["cookieAuth"], "type": "apiKey", "in": "cookie",
                                     "name": app.config["SESSION_COOKIE_NAME"]}
    session = document["paths"]["/api/v1/session"]
    assert session["get"]["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    assert session["post"]["security"] == []


def test_every_error_is_documented_as_a_problem(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        assert operation["responses"]["default"] == PROBLEM_RESPONSE, (method, path)
    responses = document["components"]["responses"]
    for name in ("DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"):
        assert responses[name]["content"] == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert {"type", "title", "status", "instance"} <= set(document["components"]["schemas"]["Problem"]["required"])


def test_posts_that_need_a_caller_document_the_idempotency_key(document: dict[str, Any]) -> None:
    def takes_key(operation: dict[str, Any]) -> bool:
        return any(parameter.get("name") == "Idempotency-Key" and parameter["in"] == "header"
                   for parameter in operation.get("parameters", []))

    assert takes_key(document["paths"]["/api/v1/probe/notes"]["post"])
    assert not takes_key(document["paths"]["/api/v1/session"]["post"])
    assert not takes_key(document["paths"]["/api/v1/session"]["get"])


def test_swagger_ui_works_without_the_internet(client: FlaskClient) -> None:
    page = client.get("/api/v1/docs")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {f"{SWAGGER_UI_ASSETS_URL}swagger-ui-bundle.js", f"{SWAGGER_UI_ASSETS_URL}swagger-ui.css"} <= set(assets)
    for asset in assets:
        assert asset.startswith(SWAGGER_UI_ASSETS_URL), asset
        assert client.get(asset).status_code == 200, asset
    assert "http://" not in html and "https://" not in html
    assert '"validatorUrl": null' in html  # no badge fetched from validator.swagger.io


def test_responses_conform_to_the_document(app: Flask, client: FlaskClient, db_session: Any) -> None:
    app.config.update(API_RATE_LIMIT="100000 per minute", LOGIN_RATE_LIMIT="100000 per minute",
                      LOGIN_ADDRESS_RATE_LIMIT="100000 per minute")
    credentials = issue_api_key()
    user_with_password(email="ada@example.com")
    schema = (
        schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
        # The infrastructure's own routes; the areas' are their own tests' business.
        .include(path_regex=r"^/api/v1/(session|probe/)")
        # By design these answer errors to valid requests (a crash, failures on demand).
        .exclude(path_regex=r"^/api/v1/probe/(crash|failures/)")
    )

    @given(case=schema.as_strategy(GenerationMode.POSITIVE) | schema.as_strategy(GenerationMode.NEGATIVE))
    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    def conforms(case: schemathesis.Case) -> None:
        # A value can fit the document and still be refused: a cursor this server never gave out.
        case.call_and_validate(headers=credentials.headers, excluded_checks=[positive_data_acceptance])

    conforms()
