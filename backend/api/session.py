"""Signing in with a password (for the portal's pages and people trying the API in a browser),
signing out, and who the caller is.

A sign-in sets the session cookie (HttpOnly, SameSite=Lax, Secure outside development); machine
clients use API keys instead. Sign-in attempts are rate limited per login name and per client
address, on top of the API's own limit.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, request, session
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api import idempotency
from backend.api.auth import SECURITY, SESSION_USER_KEY, current_actor
from backend.extensions import limiter
from backend.security.passwords import MAX_PASSWORD_LENGTH
from backend.services.authentication import authenticate_user
from backend.services.organisations import role_names

blp = Blueprint(
    "session",
    __name__,
    url_prefix="/api/v1/session",
    description="Signing in with a password (a session cookie), signing out, and who the caller is.",
)


class LoginSchema(Schema):
    email = fields.Email(required=True)
    password = fields.String(required=True, validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH))


class OrganisationSummarySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    roles = fields.List(fields.String(), required=True, metadata={"description": "supplier, buyer, ..."})


class UserSummarySchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)


class ApiKeySummarySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True)
    scopes = fields.List(fields.String(), required=True)


class WhoAmISchema(Schema):
    """The caller: its organisation, and the user or API key it acts through."""

    organisation = fields.Nested(OrganisationSummarySchema, required=True)
    user = fields.Nested(UserSummarySchema, required=True, allow_none=True)
    api_key = fields.Nested(ApiKeySummarySchema, required=True, allow_none=True)


def login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def login_address_rate_limit() -> str:
    return current_app.config["LOGIN_ADDRESS_RATE_LIMIT"]


def login_name() -> str:
    """The address an attempt signs in as, however it is written (the limit's key)."""
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"login-name:{email.strip().lower() if isinstance(email, str) else ''}"


def client_address() -> str:
    return f"address:{get_remote_address()}"


@blp.route("", methods=["POST"])
@idempotency.exempt
# Checked before the body is validated, so malformed attempts count as well.
@limiter.limit(login_rate_limit, key_func=login_name, override_defaults=False)
@limiter.limit(login_address_rate_limit, key_func=client_address, override_defaults=False)
@blp.arguments(LoginSchema)
@blp.response(204)
@blp.doc(security=[])
def create_session(credentials: dict[str, str]) -> None:
    """Sign in: sets the session cookie"""
    user = authenticate_user(credentials["email"], credentials["password"])
    session.clear()  # nothing of an earlier session survives into this one
    session.permanent = True  # the cookie expires PERMANENT_SESSION_LIFETIME after the last request
    session[SESSION_USER_KEY] = user.id


@blp.route("", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=[])
def delete_session() -> None:
    """Sign out: ends the session the cookie holds, if any"""
    session.clear()


@blp.route("", methods=["GET"])
@blp.response(200, WhoAmISchema)
@blp.doc(security=SECURITY)
def get_session() -> dict[str, Any]:
    """Who the caller is"""
    actor = current_actor()
    organisation = actor.organisation
    return {
        "organisation": {
            "id": organisation.id,
            "name": organisation.name,
            "roles": role_names(organisation.roles),
        },
        "user": actor.user,
        "api_key": actor.api_key,
    }
