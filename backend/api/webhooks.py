"""Webhooks: financiers' and buyers' endpoints for the ledger's events, and their deliveries.

An endpoint's signing secret is in the answer to its POST and to rotate-secret, once; no other
answer holds it. Dead-lettered deliveries (status `dead`) are listed per endpoint and may be
sent again with redeliver. How receivers verify a delivery: docs/webhooks.md.
"""
from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from backend.api.auth import SECURITY, current_actor
from backend.api.fields import ROW_ID
from backend.api.pagination import CursorArgs, Page, page_schema, paginate
from backend.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from backend.services import webhooks
from backend.services.webhooks import EVENT_TYPES, MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/api/v1/webhooks",
    description="Webhook endpoints for the ledger's events, and their deliveries (financiers and buyers).",
)

EVENT_TYPE_FIELD = fields.String(validate=validate.OneOf(sorted(EVENT_TYPES)))


class WebhookEndpointSchema(Schema):
    id = fields.Integer(required=True)
    organisation_id = fields.Integer(required=True)
    url = fields.String(required=True)
    event_types = fields.List(EVENT_TYPE_FIELD, required=True)
    description = fields.String(required=True, allow_none=True)
    active = fields.Boolean(required=True, metadata={"description": "Only active endpoints receive deliveries"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class WebhookEndpointWithSecretSchema(WebhookEndpointSchema):
    secret = fields.String(required=True, metadata={
        "description": "The HMAC-SHA256 key deliveries are signed with (64 hex digits), shown this once"})


class NewWebhookEndpointSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(max=MAX_URL_LENGTH), metadata={
        "description": "Where events are POSTed: an https URL (plain http only to localhost)"})
    event_types = fields.List(EVENT_TYPE_FIELD, required=True, validate=validate.Length(min=1),
                              metadata={"description": "The event types to receive"})
    description = fields.String(validate=validate.Length(max=MAX_DESCRIPTION_LENGTH), allow_none=True)


class WebhookEndpointChangesSchema(Schema):
    url = fields.String(validate=validate.Length(max=MAX_URL_LENGTH))
    event_types = fields.List(EVENT_TYPE_FIELD, validate=validate.Length(min=1))
    description = fields.String(validate=validate.Length(max=MAX_DESCRIPTION_LENGTH), allow_none=True)
    active = fields.Boolean(metadata={"description": "false: deliveries wait, pending, until it is true again"})


class WebhookDeliverySchema(Schema):
    id = fields.Integer(required=True)
    endpoint_id = fields.Integer(required=True)
    event_id = fields.String(required=True, metadata={"description": "Receivers dedupe on it"})
    event_type = fields.String(required=True)
    payload = fields.Raw(required=True, metadata={"description": "The event's data, as delivered"})
    occurred_at = fields.DateTime(required=True)
    status = fields.Enum(WebhookDeliveryStatus, by_value=True, required=True,
                         metadata={"description": "dead: every attempt failed; it can be redelivered"})
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(required=True)
    last_attempt_at = fields.DateTime(required=True, allow_none=True)
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)


class DeliveryArgs(CursorArgs):
    status = fields.Enum(WebhookDeliveryStatus, by_value=True)


# ---------------------------------------------------------------- endpoints


@blp.route("", methods=["GET"])
@blp.arguments(CursorArgs, location="query")
@blp.response(200, page_schema(WebhookEndpointSchema))
@blp.doc(security=SECURITY)
def list_endpoints(args: dict[str, Any]) -> Page[WebhookEndpoint]:
    """The caller's organisation's endpoints, oldest first (the operator's staff: everyone's)"""
    return paginate(webhooks.endpoints(current_actor()), args)


@blp.route("", methods=["POST"])
@blp.arguments(NewWebhookEndpointSchema)
@blp.response(201, WebhookEndpointWithSecretSchema)
@blp.doc(security=SECURITY)
def create_endpoint(details: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Register an endpoint: the answer holds its signing secret, once"""
    endpoint, secret = webhooks.create_endpoint(current_actor(), **details)
    return _with_secret(endpoint, secret), 201, {"Location": _location(endpoint)}


@blp.route(f"/<{ROW_ID}:endpoint_id>", methods=["GET"])
@blp.response(200, WebhookEndpointSchema)
@blp.doc(security=SECURITY)
def get_endpoint(endpoint_id: int) -> WebhookEndpoint:
    """One endpoint"""
    return webhooks.get_endpoint(current_actor(), endpoint_id)


@blp.route(f"/<{ROW_ID}:endpoint_id>", methods=["PATCH"])
@blp.arguments(WebhookEndpointChangesSchema)
@blp.response(200, WebhookEndpointSchema)
@blp.doc(security=SECURITY)
def update_endpoint(changes: dict[str, Any], endpoint_id: int) -> WebhookEndpoint:
    """Change an endpoint's URL, event types or description, or (de)activate it"""
    return webhooks.update_endpoint(current_actor(), endpoint_id, **changes)


@blp.route(f"/<{ROW_ID}:endpoint_id>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=SECURITY)
def delete_endpoint(endpoint_id: int) -> None:
    """Remove an endpoint and its deliveries"""
    webhooks.delete_endpoint(current_actor(), endpoint_id)


@blp.route(f"/<{ROW_ID}:endpoint_id>/rotate-secret", methods=["POST"])
@blp.response(200, WebhookEndpointWithSecretSchema)
@blp.doc(security=SECURITY)
def rotate_secret(endpoint_id: int) -> dict[str, Any]:
    """A new signing secret, shown this once; every delivery from now on is signed with it"""
    endpoint, secret = webhooks.rotate_secret(current_actor(), endpoint_id)
    return _with_secret(endpoint, secret)


# ---------------------------------------------------------------- deliveries


@blp.route(f"/<{ROW_ID}:endpoint_id>/deliveries", methods=["GET"])
@blp.arguments(DeliveryArgs, location="query")
@blp.response(200, page_schema(WebhookDeliverySchema))
@blp.doc(security=SECURITY)
def list_deliveries(args: dict[str, Any], endpoint_id: int) -> Page[WebhookDelivery]:
    """An endpoint's deliveries, oldest first; status=dead lists the dead-lettered ones"""
    return paginate(webhooks.deliveries(current_actor(), endpoint_id, status=args.get("status")), args)


@blp.route(f"/<{ROW_ID}:endpoint_id>/deliveries/<{ROW_ID}:delivery_id>", methods=["GET"])
@blp.response(200, WebhookDeliverySchema)
@blp.doc(security=SECURITY)
def get_delivery(endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """One delivery"""
    return webhooks.get_delivery(current_actor(), endpoint_id, delivery_id)


@blp.route(f"/<{ROW_ID}:endpoint_id>/deliveries/<{ROW_ID}:delivery_id>/redeliver", methods=["POST"])
@blp.response(202, WebhookDeliverySchema, description="Pending again: its first attempt is due now")
@blp.doc(security=SECURITY)
def redeliver(endpoint_id: int, delivery_id: int) -> tuple[WebhookDelivery, int, dict[str, str]]:
    """Send a dead-lettered (or delivered) event again, as a fresh series of attempts"""
    delivery = webhooks.redeliver(current_actor(), endpoint_id, delivery_id)
    location = url_for(f"{blp.name}.get_delivery", endpoint_id=endpoint_id, delivery_id=delivery.id)
    return delivery, 202, {"Location": location}


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> dict[str, Any]:
    return {name: getattr(endpoint, name) for name in WebhookEndpointSchema().fields} | {"secret": secret}


def _location(endpoint: WebhookEndpoint) -> str:
    return url_for(f"{blp.name}.get_endpoint", endpoint_id=endpoint.id)
