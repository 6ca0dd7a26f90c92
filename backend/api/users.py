"""Users: people who sign in for an organisation, created by the operator."""
from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import row_id
from backend.models import User
from backend.security.passwords import MAX_PASSWORD_LENGTH
from backend.services import accounts, organisations
from backend.services.accounts import MAX_DISPLAY_NAME_LENGTH, MAX_EMAIL_LENGTH

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users, created by the operator.")


class NewUserSchema(Schema):
    organisation_id = row_id(required=True)
    email = fields.String(required=True, validate=validate.Length(max=MAX_EMAIL_LENGTH))
    display_name = fields.String(required=True, validate=validate.Length(max=MAX_DISPLAY_NAME_LENGTH))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=MAX_PASSWORD_LENGTH),
                             metadata={"description": "At least 12 characters"})


class UserSchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    is_active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


@blp.route("", methods=["POST"])
@blp.arguments(NewUserSchema)
@blp.response(201, UserSchema)
@blp.doc(security=SECURITY)
def create_user(details: dict[str, Any]) -> User:
    """Create a user of an organisation (operator)"""
    actor = current_actor()
    organisation = organisations.get_organisation(actor, details.pop("organisation_id"))
    return accounts.create_user(actor, organisation, **details)
