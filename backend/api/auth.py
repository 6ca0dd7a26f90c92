"""Who is calling the API, and the request id that follows a request through logs and audit.

A caller authenticates with an API key, `Authorization: Bearer al_<prefix>_<secret>`, or with
the session cookie that `POST /api/v1/session` sets; a bearer token wins over a cookie. The
caller is resolved once per request, when first asked for (by the rate limiter, idempotency or
a view), and kept with the request. (Not on `flask.g`: g belongs to the application context,
which a test holding one open shares between its requests.)
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from flask import Flask, Response, request, session
from flask_limiter.util import get_remote_address

from backend.services.actors import Actor
from backend.services.authentication import actor_for_api_key, actor_for_user
from backend.services.errors import AuthenticationFailed

# The OpenAPI security requirement of every view that needs a caller: either scheme will do.
SECURITY = [{"bearerAuth": []}, {"cookieAuth": []}]
# The Flask session key holding the signed-in user's id (set by POST /api/v1/session).
SESSION_USER_KEY = "user_id"
REQUEST_ID_HEADER = "X-Request-ID"
# A client's own request id is kept only if it is short and harmless in logs and headers.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BEARER = re.compile(r"Bearer +(?P<token>\S+) *", re.IGNORECASE)
# Where the request's caller and id are kept (WSGI environ keys are per request).
_AUTHENTICATION = "anchorline.authentication"
_REQUEST_ID = "anchorline.request_id"
MISSING_CREDENTIALS = "authentication required: send an API key (Authorization: Bearer ...) or sign in"
MALFORMED_AUTHORIZATION = "malformed Authorization header: expected Bearer and an API key"


@dataclass(frozen=True)
class _Authentication:
    """What the request's credentials came to: an actor, none sent, or a refusal."""

    actor: Actor | None
    failure: AuthenticationFailed | None = None


def current_actor() -> Actor:
    """The authenticated caller; AuthenticationFailed (a 401 problem) when there is none."""
    actor = authenticated_actor()
    if actor is None:
        raise AuthenticationFailed(MISSING_CREDENTIALS)
    return actor


def authenticated_actor() -> Actor | None:
    """The caller, or None when the request carries no credentials at all; AuthenticationFailed
    when it carries bad ones."""
    outcome: _Authentication | None = request.environ.get(_AUTHENTICATION)
    if outcome is None:
        try:
            outcome = _Authentication(_authenticate())
        except AuthenticationFailed as failure:
            outcome = _Authentication(None, failure)
        request.environ[_AUTHENTICATION] = outcome
    if outcome.failure is not None:
        raise outcome.failure
    return outcome.actor


def _authenticate() -> Actor | None:
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        bearer = _BEARER.fullmatch(authorization)
        if bearer is None:
            raise AuthenticationFailed(MALFORMED_AUTHORIZATION)
        return actor_for_api_key(bearer["token"], request_id=request_id())
    user_id = session.get(SESSION_USER_KEY)
    if user_id is None:
        return None
    return actor_for_user(user_id, request_id=request_id())


def rate_limit_key() -> str:
    """Whose budget a request spends: its principal's, or its address's when it has none (no
    credentials, or bad ones: guessing keys is rate limited too)."""
    try:
        actor = authenticated_actor()
    except AuthenticationFailed:
        actor = None
    return actor.principal if actor is not None else f"address:{get_remote_address()}"


def security_schemes(session_cookie_name: str) -> dict[str, dict[str, str]]:
    """The OpenAPI security schemes that SECURITY names."""
    return {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: Authorization: Bearer al_<prefix>_<secret>",
        },
        "cookieAuth": {
            "type": "apiKey",
            "in": "cookie",
            "name": session_cookie_name,
            "description": "The session cookie that POST /api/v1/session sets",
        },
    }


def request_id() -> str:
    """The request's id: the client's X-Request-ID if it is a sane token, else a fresh one."""
    if _REQUEST_ID not in request.environ:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        request.environ[_REQUEST_ID] = offered if _CLIENT_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    return request.environ[_REQUEST_ID]


def install(app: Flask) -> None:
    """Echoes every response's request id, so a client can quote it when reporting a problem."""

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = request_id()
        return response
