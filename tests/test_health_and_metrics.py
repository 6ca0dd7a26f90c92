"""The stack's status (workers/monitoring.py) as GET /api/v1/health, /metrics and `anchorline
status` show it: on a database without chain or Redis (503, the failing parts named), and with
a real anvil, the bundled Redis and a worker heartbeat (200)."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from backend.chain.devnet import free_port
from backend.commands.status import status as status_cli
from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus, ContractName, IndexerCursor, Role
from backend.models.webhooks import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from backend.models.types import utcnow
from tests import domain_factories as make
from tests.conftest import AnvilNode
from workers import monitoring, redis_server
from workers.celery_app import QUEUE, beat_schedule


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def bundled_redis() -> Iterator[redis_server.RunningRedis]:
    with redis_server.temporary() as server:
        yield server


@pytest.fixture
def live_stack(app: Flask, anvil: AnvilNode, bundled_redis: redis_server.RunningRedis) -> Iterator[redis.Redis]:
    """`app` pointed at the anvil and the bundled Redis (emptied first); its client."""
    app.config.update(ETH_RPC_URL=anvil.rpc_url, REDIS_URL=bundled_redis.url)
    client = redis.Redis.from_url(bundled_redis.url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def seed_rows(app: Flask) -> None:
    """Two queued and one mined outbox row; one dead and one delivered webhook delivery."""
    with app.app_context():
        supplier = make.organisation(Role.SUPPLIER)
        for n in (1, 2):
            db.session.add(ChainTransaction(intent_key=f"probe:{n}", signer=supplier, contract=ContractName.FINANCING,
                                            function="onboard", args=[]))
        db.session.add(ChainTransaction(
            intent_key="probe:mined", signer=supplier, contract=ContractName.FINANCING, function="onboard", args=[],
            status=ChainTransactionStatus.MINED, nonce=0, raw_tx="0x00", tx_hash="0x" + "ab" * 32,
            chain_id=31337, sender=supplier.chain_address, block_number=7))
        endpoint = WebhookEndpoint(organisation=supplier, url="https://example.com/hook", event_types=["*"],
                                   secret="s" * 32)
        for n, state in enumerate((WebhookDeliveryStatus.DEAD, WebhookDeliveryStatus.DELIVERED)):
            db.session.add(WebhookDelivery(endpoint=endpoint, event_id=f"00000000-0000-0000-0000-00000000000{n}",
                                           event_type="invoice.registered", payload={}, occurred_at=utcnow(),
                                           status=state))
        db.session.commit()


def metrics(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.content_type.startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(answer.get_data(as_text=True)) for sample in family.samples}


def test_without_a_chain_or_redis_health_is_503_naming_the_failing_parts(app: Flask, client: FlaskClient) -> None:
    app.config["ETH_RPC_URL"] = f"http://127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    seed_rows(app)

    answer = client.get("/api/v1/health")  # no credentials needed

    assert answer.status_code == 503
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json
    assert body["status"] == "unavailable"
    assert set(body["problems"]) == {"chain", "queue", "worker"}
    assert "no Ethereum JSON-RPC node answers" in body["problems"]["chain"]
    assert body["chain"] == {"chain_id": None, "height": None}
    assert body["indexer"]["lag_blocks"] is None and body["queue"]["depth"] is None
    # the database answers, so its figures are there
    assert body["outbox"] == {"queued": 2, "signed": 0, "sent": 0, "mined": 1, "reverted": 0, "failed": 0, "batched": 0}
    assert body["webhooks"]["dead_deliveries"] == 1


def test_metrics_show_the_same_reading_as_gauges(app: Flask, client: FlaskClient) -> None:
    app.config["ETH_RPC_URL"] = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    seed_rows(app)

    samples = metrics(client)

    assert samples[("anchorline_up", (("part", "database"),))] == 1
    for part in ("chain", "queue", "worker"):
        assert samples[("anchorline_up", (("part", part),))] == 0
    assert samples[("anchorline_outbox_transactions", (("status", "queued"),))] == 2
    assert samples[("anchorline_outbox_transactions", (("status", "mined"),))] == 1
    assert samples[("anchorline_webhook_deliveries_dead", ())] == 1
    # what could not be read is left out rather than reported as 0
    assert not any(name in ("anchorline_chain_height", "anchorline_queue_depth") for name, _ in samples)


def test_with_chain_redis_and_a_heartbeat_the_stack_is_healthy(
    app: Flask, client: FlaskClient, anvil: AnvilNode, live_stack: redis.Redis
) -> None:
    height = anvil.w3.eth.block_number
    with app.app_context():
        db.session.add_all([
            IndexerCursor(chain_id=anvil.chain_id, contract=ContractName.FINANCING, block_number=height - 3,
                          block_hash="0x" + "11" * 32),
            IndexerCursor(chain_id=anvil.chain_id, contract=ContractName.SETTLEMENT_TOKEN, block_number=height,
                          block_hash="0x" + "22" * 32),
            # another chain's cursor does not count
            IndexerCursor(chain_id=1, contract=ContractName.FINANCING, block_number=0, block_hash="0x" + "33" * 32),
        ])
        db.session.commit()
        monitoring.heartbeat.run()  # what a worker runs on beat's schedule
    live_stack.lpush(QUEUE, "task one", "task two")

    answer = client.get("/api/v1/health")

    assert answer.status_code == 200, answer.json
    body = answer.json
    assert body["status"] == "ok" and body["problems"] == {}
    assert body["chain"]["chain_id"] == anvil.chain_id and body["chain"]["height"] >= height
    # measured against the least advanced cursor of this chain
    assert body["indexer"]["lag_blocks"] == body["chain"]["height"] - (height - 3)
    assert body["queue"]["depth"] == 2
    assert 0 <= body["worker"]["heartbeat_age_seconds"] < 5

    samples = metrics(client)
    assert all(samples[("anchorline_up", (("part", part),))] == 1 for part in monitoring.PARTS)
    assert samples[("anchorline_queue_depth", ())] == 2
    assert samples[("anchorline_chain_height", ())] >= height
    assert samples[("anchorline_indexer_lag_blocks", ())] >= 3
    assert 0 <= samples[("anchorline_worker_heartbeat_age_seconds", ())] < 5


def test_without_a_recent_heartbeat_the_worker_is_reported_down(
    app: Flask, client: FlaskClient, live_stack: redis.Redis
) -> None:
    with app.app_context():
        monitoring.heartbeat.run()
    assert client.get("/api/v1/health").status_code == 200
    assert 0 < live_stack.ttl(monitoring.HEARTBEAT_KEY) <= monitoring.HEARTBEAT_TTL_SECONDS

    live_stack.delete(monitoring.HEARTBEAT_KEY)  # what its TTL does when no worker runs it
    answer = client.get("/api/v1/health")

    assert answer.status_code == 503
    assert list(answer.json["problems"]) == ["worker"]
    assert answer.json["worker"]["heartbeat_age_seconds"] is None


def test_beat_runs_the_heartbeat_often_and_drops_ones_nobody_ran(app: Flask) -> None:
    entry = beat_schedule(app.config)["heartbeat"]

    assert entry["task"] == monitoring.heartbeat.name
    assert entry["schedule"] <= 5
    assert entry["options"]["expires"] < monitoring.HEARTBEAT_TTL_SECONDS


def _status(monkeypatch: pytest.MonkeyPatch, app: Flask, *args: str) -> Any:
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    for name in ("ETH_RPC_URL", "REDIS_URL"):
        if app.config.get(name):
            monkeypatch.setenv(name, app.config[name])
    return CliRunner().invoke(status_cli, list(args), catch_exceptions=False)


def test_status_prints_the_reading_and_exits_1_when_a_part_fails(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["ETH_RPC_URL"] = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    seed_rows(app)

    result = _status(monkeypatch, app)

    assert result.exit_code == 1
    assert "outbox       queued 2, mined 1" in result.output
    assert "dead hooks   1" in result.output
    assert "status       unavailable" in result.output and "  chain: no Ethereum JSON-RPC node" in result.output


def test_status_of_a_healthy_stack_exits_0_and_speaks_json(
    app: Flask, anvil: AnvilNode, live_stack: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        monitoring.heartbeat.run()

    text = _status(monkeypatch, app)
    document = _status(monkeypatch, app, "--json")

    assert text.exit_code == 0, text.output
    assert f"(chain id {anvil.chain_id})" in text.output and "status       ok" in text.output
    assert document.exit_code == 0
    reading = json.loads(document.output)
    assert reading["status"] == "ok" and reading["queue"]["depth"] == 0 and reading["outbox"]["queued"] == 0
