"""What the running stack is doing: the workers' heartbeat, and the status that `anchorline
status`, `GET /api/v1/health` and `/metrics` report.

The heartbeat is a beat task: every HEARTBEAT_INTERVAL_SECONDS Celery beat queues it and a
worker runs it, writing the time into Redis under HEARTBEAT_KEY with a TTL. Its age therefore
proves the whole loop works (beat schedules, the queue carries, a worker takes tasks); no key
means no worker has run it for HEARTBEAT_TTL_SECONDS.

`collect(app)` reads everything at the moment it is called (nothing is cached): the chain's
height, the indexer's lag behind it, outbox rows by state, the queue's depth, the heartbeat's
age and the dead webhook deliveries. Each part that cannot be read, or reads as broken, is named
in `StackStatus.problems`; the stack is healthy when there are none.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from backend.chain.connection import ChainError, connect, rpc_url
from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus, IndexerCursor
from backend.models.webhooks import WebhookDelivery, WebhookDeliveryStatus
from workers import outbox
from workers.celery_app import QUEUE, resolve_broker_url, worker_task

HEARTBEAT_KEY = "anchorline:worker-heartbeat"
HEARTBEAT_INTERVAL_SECONDS = 5.0
# Six missed beats: a busy worker may take a while to reach the heartbeat in the queue.
HEARTBEAT_TTL_SECONDS = 30
# A status read must answer quickly even when a part hangs: health checks have deadlines.
PROBE_TIMEOUT_SECONDS = 2.0


@worker_task(name="workers.monitoring.heartbeat")
def heartbeat() -> None:
    """Record that a worker is taking tasks now."""
    client = _redis_client(resolve_broker_url(current_app))
    try:
        client.set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_TTL_SECONDS)
    finally:
        client.close()


def periodic_tasks(config: Any) -> dict[str, dict[str, Any]]:
    # A heartbeat nobody ran in time is worthless: let it expire in the queue rather than have a
    # returning worker run a backlog of them.
    return {
        "heartbeat": {
            "task": "workers.monitoring.heartbeat",
            "schedule": HEARTBEAT_INTERVAL_SECONDS,
            "options": {"expires": HEARTBEAT_INTERVAL_SECONDS * 2},
        }
    }


@dataclass
class StackStatus:
    """One reading of the stack; None where a figure could not be read (see `problems`)."""

    chain_id: int | None = None
    chain_height: int | None = None
    # Blocks between the chain's head and the least advanced indexer cursor; None before the
    # indexer has read anything (or without a chain).
    indexer_lag_blocks: int | None = None
    outbox: dict[str, int] | None = None  # rows by status, every status listed
    # Signed or sent longer than OUTBOX_STUCK_SECONDS ago and still without a receipt.
    stuck_transactions: int | None = None
    queue_depth: int | None = None  # messages waiting in the `anchorline` queue
    heartbeat_age_seconds: float | None = None
    dead_webhook_deliveries: int | None = None
    problems: dict[str, str] = field(default_factory=dict)  # part -> what is wrong

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "unavailable",
            "problems": self.problems,
            "chain": {"chain_id": self.chain_id, "height": self.chain_height},
            "indexer": {"lag_blocks": self.indexer_lag_blocks},
            "outbox": self.outbox,
            "stuck_transactions": self.stuck_transactions,
            "queue": {"depth": self.queue_depth},
            "worker": {"heartbeat_age_seconds": self.heartbeat_age_seconds},
            "webhooks": {"dead_deliveries": self.dead_webhook_deliveries},
        }


def collect(app: Flask) -> StackStatus:
    """Read the stack's status now. Needs an application context of `app`."""
    status = StackStatus()
    cursor_blocks = _read_database(status)
    _read_chain(app, status, cursor_blocks)
    _read_queue(app, status)
    return status


def _read_database(status: StackStatus) -> dict[int, int] | None:
    """Outbox counts and dead deliveries into `status`; returns the least advanced indexer
    cursor per chain id."""
    try:
        counts = dict(db.session.execute(
            select(ChainTransaction.status, func.count()).group_by(ChainTransaction.status)
        ).all())
        status.outbox = {str(state): counts.get(state, 0) for state in ChainTransactionStatus}
        status.stuck_transactions = len(outbox.stuck_rows())
        status.dead_webhook_deliveries = db.session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == WebhookDeliveryStatus.DEAD)
        )
        cursors = db.session.execute(
            select(IndexerCursor.chain_id, func.min(IndexerCursor.block_number)).group_by(IndexerCursor.chain_id)
        ).all()
        return dict(cursors)
    except SQLAlchemyError as exc:
        db.session.rollback()
        status.problems["database"] = f"unreachable: {type(exc).__name__}"
        return None


def _read_chain(app: Flask, status: StackStatus, cursor_blocks: dict[int, int] | None) -> None:
    url = app.config.get("ETH_RPC_URL") or rpc_url()
    try:
        w3 = connect(url, timeout=PROBE_TIMEOUT_SECONDS)
        status.chain_id = w3.eth.chain_id
        status.chain_height = w3.eth.block_number
    except (ChainError, OSError, ValueError) as exc:
        # ChainUnreachable's message names the URL without credentials.
        status.problems["chain"] = str(exc) if isinstance(exc, ChainError) else f"unreachable: {type(exc).__name__}"
        return
    if cursor_blocks and status.chain_id in cursor_blocks:
        status.indexer_lag_blocks = max(0, status.chain_height - cursor_blocks[status.chain_id])


def _read_queue(app: Flask, status: StackStatus) -> None:
    url = resolve_broker_url(app)
    if url is None:
        status.problems["queue"] = "no Redis: set REDIS_URL or start the stack with `anchorline up`"
        status.problems["worker"] = "no heartbeat: there is no Redis to carry tasks"
        return
    client = _redis_client(url)
    try:
        # Tasks are sent without priorities, so kombu keeps the whole queue in this one list.
        status.queue_depth, beat = client.pipeline().llen(QUEUE).get(HEARTBEAT_KEY).execute()
    except redis.RedisError as exc:
        status.problems["queue"] = f"Redis unreachable: {type(exc).__name__}"
        status.problems["worker"] = "no heartbeat: Redis is unreachable"
        return
    finally:
        client.close()
    if beat is None:
        status.problems["worker"] = f"no worker heartbeat in the last {HEARTBEAT_TTL_SECONDS}s"
    else:
        status.heartbeat_age_seconds = round(max(0.0, time.time() - float(beat)), 3)


def _redis_client(url: str | None) -> redis.Redis:
    if url is None:
        raise redis.ConnectionError("no Redis is configured")
    return redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS, socket_timeout=PROBE_TIMEOUT_SECONDS)


# The parts `problems` may name; each is a 0/1 gauge in /metrics.
PARTS = ("database", "chain", "queue", "worker")


class StackCollector(Collector):
    """/metrics: the same reading as Prometheus gauges, taken at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.app.app_context():
            status = collect(self.app)
        up = GaugeMetricFamily("anchorline_up", "1 if the part works, 0 if not (see /api/v1/health)", labels=["part"])
        for part in PARTS:
            up.add_metric([part], 0 if part in status.problems else 1)
        yield up
        singles = (
            ("anchorline_chain_height", "The chain's latest block number", status.chain_height),
            ("anchorline_indexer_lag_blocks", "Blocks the indexer is behind the chain's head", status.indexer_lag_blocks),
            ("anchorline_outbox_stuck_transactions", "Ledger writes sent long ago and still without a receipt",
             status.stuck_transactions),
            ("anchorline_queue_depth", "Tasks waiting in the anchorline queue", status.queue_depth),
            ("anchorline_worker_heartbeat_age_seconds", "Seconds since a worker last ran the heartbeat task",
             status.heartbeat_age_seconds),
            ("anchorline_webhook_deliveries_dead", "Webhook deliveries that exhausted their attempts",
             status.dead_webhook_deliveries),
        )
        for name, documentation, value in singles:
            if value is not None:
                yield GaugeMetricFamily(name, documentation, value=value)
        if status.outbox is not None:
            outbox = GaugeMetricFamily("anchorline_outbox_transactions", "Outbox rows by status", labels=["status"])
            for state, count in status.outbox.items():
                outbox.add_metric([state], count)
            yield outbox
