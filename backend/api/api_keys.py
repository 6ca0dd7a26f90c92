"""The caller's organisation's API keys: listing, issuing and revoking them.

An issued key's token is in the answer to its POST, once; no other answer holds it or its hash.
"""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.models import ApiKey
from backend.security.api_keys import Scope
from backend.services import accounts
from backend.services.accounts import MAX_KEY_NAME_LENGTH

blp = Blueprint(
    "api_keys",
    __name__,
    url_prefix="/api/v1/api-keys",
    description="The caller's organisation's API keys for machine clients.",
)

SCOPE_NAMES = [scope.value for scope in Scope]


class ApiKeySchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "The public part of the token, naming the key"})
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPE_NAMES)), required=True)
    created_by_id = fields.Integer(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True, allow_none=True)
    expires_at = fields.DateTime(required=True, allow_none=True)
    revoked_at = fields.DateTime(required=True, allow_none=True)


class IssuedApiKeySchema(ApiKeySchema):
    token = fields.String(required=True, metadata={
        "description": "The bearer token (Authorization: Bearer ...), shown this once: only its hash is kept"})


class NewApiKeySchema(Schema):
    name = fields.String(required=True, validate=validate.Length(max=MAX_KEY_NAME_LENGTH),
                         metadata={"description": "Which client uses the key"})
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPE_NAMES)), required=True,
                         metadata={"description": "read, and write to change anything (auditors: read only)"})
    expires_at = fields.AwareDateTime(metadata={"description": "When the key stops working (none: never)"})


@blp.route("", methods=["GET"])
@blp.arguments(CursorArgs, location="query")
@blp.response(200, page_schema(ApiKeySchema))
@blp.doc(security=SECURITY)
def list_api_keys(args: dict[str, Any]) -> Page[ApiKey]:
    """The caller's organisation's API keys, oldest first (revoked and expired ones too)"""
    return paginate(accounts.api_keys_of_own_organisation(current_actor()), args, sort=(ApiKey.created_at,))


@blp.route("", methods=["POST"])
@blp.arguments(NewApiKeySchema)
@blp.response(201, IssuedApiKeySchema)
@blp.doc(security=SECURITY)
def issue_api_key(details: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Issue an API key for the caller's organisation: the answer holds its token, once"""
    key, token = accounts.issue_api_key(current_actor(), **details)
    issued = {name: getattr(key, name) for name in ApiKeySchema().fields} | {"token": token}
    return issued, 201, {"Location": f"{blp.url_prefix}/{key.id}"}


@blp.route(f"/<{ROW_ID}:key_id>", methods=["GET"])
@blp.response(200, ApiKeySchema)
@blp.doc(security=SECURITY)
def get_api_key(key_id: int) -> ApiKey:
    """One of the caller's organisation's API keys"""
    return accounts.get_api_key(current_actor(), key_id)


@blp.route(f"/<{ROW_ID}:key_id>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=SECURITY)
def revoke_api_key(key_id: int) -> None:
    """Revoke one of the caller's organisation's API keys: it authenticates nothing from now on"""
    actor = current_actor()
    accounts.revoke_api_key(actor, accounts.get_api_key(actor, key_id))
