"""Every error the API answers is an `application/problem+json` document (RFC 9457).

A problem's `type` is `tag:anchorline.dev,2026:problems/<code>`, where the code is stable and
machine-readable: a service error's `code`, or one named here for the HTTP layer's own errors.
`title` names the kind of problem, `detail` says what went wrong this time, `instance` is the
request's path, and `errors` maps a field (dotted for nested ones) to what is wrong with it.
An unexpected failure is a 500 `internal-error` without detail: it is logged with the request
id, and its text never reaches the client.

Errors outside /api/v1 are left to Flask's defaults (and, later, the portal's own pages).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException

from backend.api.auth import request_id
from backend.api.responses import is_api_request
from backend.services.errors import (
    AuthenticationFailed,
    Duplicate,
    InvalidInput,
    InvalidState,
    NotFound,
    OrganisationInactive,
    PermissionDenied,
    ServiceError,
)

PROBLEM_TYPE_PREFIX = "tag:anchorline.dev,2026:problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
# Where field errors about a request body as a whole go (marshmallow's name for them).
WHOLE_BODY_FIELD = "_schema"

# The HTTP status of each kind of service error (a subclass answers as its nearest listed base).
SERVICE_ERROR_STATUS: Mapping[type[ServiceError], int] = {
    AuthenticationFailed: 401,
    OrganisationInactive: 403,
    PermissionDenied: 403,
    NotFound: 404,
    InvalidInput: 422,
    InvalidState: 409,
    Duplicate: 409,
}
# Problem codes of the HTTP layer's own errors; any other status is named after its phrase.
HTTP_ERROR_CODES: Mapping[int, str] = {
    401: AuthenticationFailed.code,
    403: PermissionDenied.code,
    404: NotFound.code,
    413: "request-too-large",
    422: InvalidInput.code,
    429: "rate-limited",
}
INTERNAL_ERROR = "internal-error"
# The title of each problem type; types not listed take their HTTP status's phrase.
TITLES: Mapping[str, str] = {
    AuthenticationFailed.code: "Authentication failed",
    PermissionDenied.code: "Permission denied",
    OrganisationInactive.code: "Organisation inactive",
    NotFound.code: "Not found",
    InvalidInput.code: "Invalid input",
    InvalidState.code: "Invalid state",
    Duplicate.code: "Duplicate",
    "idempotency-key-reused": "Idempotency key reused",
    "idempotency-request-in-progress": "Idempotent request in progress",
    "request-too-large": "Request too large",
    "rate-limited": "Rate limited",
    INTERNAL_ERROR: "Internal error",
}
# Every 401 says how to authenticate (RFC 9110): with an API key as a bearer token.
AUTHENTICATE_HEADERS = {"WWW-Authenticate": "Bearer"}

logger = logging.getLogger(__name__)


class ProblemSchema(Schema):
    """An error (RFC 9457 problem details)."""

    type = fields.String(required=True, metadata={"description": "tag:anchorline.dev,2026:problems/<code>"})
    title = fields.String(required=True, metadata={"description": "The kind of problem, the same for every occurrence"})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code"})
    detail = fields.String(metadata={"description": "What went wrong this time, for people"})
    instance = fields.String(required=True, metadata={"description": "The path of the request"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "What is wrong with each field (dotted paths for nested fields)"},
    )


def install(app: Flask) -> None:
    """Makes every error under /api/v1 a problem document. Called after flask-smorest's
    init_app, whose JSON handler of HTTP errors this replaces."""
    app.register_error_handler(ServiceError, _service_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


def problem(
    status: int,
    code: str,
    detail: str | None = None,
    *,
    errors: Mapping[str, list[str]] | None = None,
    headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": TITLES.get(code) or HTTPStatus(status).phrase.capitalize(),
        "status": status,
        "instance": request.path,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = dict(errors)
    response = current_app.response_class(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.extend(headers)
    if status == 401:
        response.headers.update(AUTHENTICATE_HEADERS)
    return response


def flatten_field_errors(messages: Mapping[str, Any]) -> dict[str, list[str]]:
    """webargs's validation messages, {location: {field: [message] or nested}}, as
    {"field.nested": [message]}: where a value came from is plain from its name, and a client
    finds every field's messages at one level."""
    flat: dict[str, list[str]] = {}

    def walk(path: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for name, inner in value.items():
                walk(f"{path}.{name}" if path else str(name), inner)
        else:
            items = value if isinstance(value, list) else [value]
            flat.setdefault(path or WHOLE_BODY_FIELD, []).extend(str(item) for item in items)

    for location_messages in messages.values():
        walk("", location_messages)
    return flat


def _service_error(error: ServiceError) -> Response:
    if not is_api_request():
        raise error
    status = next((SERVICE_ERROR_STATUS[kind] for kind in type(error).__mro__ if kind in SERVICE_ERROR_STATUS), 400)
    return problem(status, error.code, error.detail, errors=error.errors)


def _http_error(error: HTTPException) -> Response | HTTPException:
    if not is_api_request():
        return error
    status = error.code or 500
    if status == 500:  # an InternalServerError wraps the exception nothing else handled
        return _internal_error(getattr(error, "original_exception", None) or error)
    # Content-Type would describe werkzeug's HTML page; Allow (405) and the like are kept.
    headers = [(name, value) for name, value in error.get_headers() if name.lower() != "content-type"]
    data = getattr(error, "data", None) or {}  # webargs and flask_smorest.abort put details here
    messages = data.get("messages")
    errors = flatten_field_errors(messages) if isinstance(messages, Mapping) else None
    return problem(status, _http_error_code(status), _http_error_detail(error, data, errors), errors=errors,
                   headers=headers)


def _http_error_code(status: int) -> str:
    return HTTP_ERROR_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "-")


def _http_error_detail(error: HTTPException, data: Mapping[str, Any], errors: Mapping[str, list[str]] | None) -> str:
    if data.get("message"):
        return str(data["message"])
    if errors:
        if errors.keys() == {WHOLE_BODY_FIELD}:  # the body as a whole: not JSON, not an object
            return " ".join(errors[WHOLE_BODY_FIELD])
        return "some fields of the request are not valid"
    if error.code == 413:
        return f"the request is larger than the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    if error.code == 429:
        return f"too many requests (the limit is {error.description}): Retry-After says when to try again"
    return error.description or HTTPStatus(error.code or 400).phrase


def _unexpected_error(error: Exception) -> Response:
    if not is_api_request():
        raise error
    return _internal_error(error)


def _internal_error(error: BaseException) -> Response:
    logger.error(
        "unexpected error answering %s %s (request %s)",
        request.method,
        request.path,
        request_id(),
        exc_info=error,
    )
    return problem(500, INTERNAL_ERROR)
