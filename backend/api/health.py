"""The stack's health, for people and monitors: GET /api/v1/health.

It answers without credentials (like /healthz and /metrics, it says how the service runs, not
what is in it): 200 when the database, the chain, the queue (Redis) and the workers' heartbeat
all answer, 503 naming the failing parts otherwise, with the figures in both cases. The reading
is workers/monitoring.py's, taken at request time; /metrics serves the same as Prometheus gauges.
"""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from workers import monitoring

blp = Blueprint(
    "health",
    __name__,
    url_prefix="/api/v1/health",
    description="The stack's health: chain height, indexer lag, outbox, queue and worker heartbeat.",
)


class ChainHealthSchema(Schema):
    chain_id = fields.Integer(required=True, allow_none=True)
    height = fields.Integer(required=True, allow_none=True, metadata={"description": "The latest block number"})


class IndexerHealthSchema(Schema):
    lag_blocks = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Blocks between the chain's head and what the indexer has read; null before it has read any"})


class QueueHealthSchema(Schema):
    depth = fields.Integer(required=True, allow_none=True, metadata={"description": "Tasks waiting for a worker"})


class WorkerHealthSchema(Schema):
    heartbeat_age_seconds = fields.Float(required=True, allow_none=True, metadata={
        "description": "Since a worker last ran the heartbeat task; null when none has lately"})


class WebhookHealthSchema(Schema):
    dead_deliveries = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Deliveries that exhausted their attempts (listed for redelivery)"})


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})
    problems = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "Each failing part (database, chain, queue, worker) and what is wrong with it"})
    chain = fields.Nested(ChainHealthSchema, required=True)
    indexer = fields.Nested(IndexerHealthSchema, required=True)
    outbox = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, allow_none=True,
                         metadata={"description": "Outbox transactions by status"})
    stuck_transactions = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Ledger writes signed or sent longer than OUTBOX_STUCK_SECONDS ago and still without a receipt"})
    queue = fields.Nested(QueueHealthSchema, required=True)
    worker = fields.Nested(WorkerHealthSchema, required=True)
    webhooks = fields.Nested(WebhookHealthSchema, required=True)


@blp.route("", methods=["GET"])
@blp.response(200, HealthSchema, description="Every part answers")
@blp.alt_response(503, schema=HealthSchema, description="Some part fails: `problems` names it",
                  success=True)
@blp.doc(security=[])
def get_health() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The stack's health"""
    status = monitoring.collect(current_app._get_current_object())  # type: ignore[attr-defined]
    # A health reading is stale the moment it is taken; no cache may serve it again.
    return status.as_json(), 200 if status.healthy else 503, {"Cache-Control": "no-store"}
