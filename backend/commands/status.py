"""`anchorline status`: what the stack is doing now, read as GET /api/v1/health reads it
(workers/monitoring.py), from this instance folder's settings: REDIS_URL or its bundled Redis,
ETH_RPC_URL or its devnet. Exit status 1 when a part fails."""
from __future__ import annotations

import json
import os

import click

from backend.app import create_app
from backend.chain import devnet as chain_devnet
from backend.chain.connection import RPC_URL_ENV
from workers import monitoring


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the health document as JSON.")
def status(as_json: bool) -> None:
    """Chain height, indexer lag, outbox rows by state, queue depth, worker heartbeat, dead webhooks."""
    # Without ETH_RPC_URL, the devnet this instance folder runs (on whatever port `up` gave it).
    node = None if os.environ.get(RPC_URL_ENV) else chain_devnet.running(chain_devnet.default_directory())
    app = create_app({RPC_URL_ENV: node.rpc_url} if node else None)
    with app.app_context():
        reading = monitoring.collect(app)
    if as_json:
        click.echo(json.dumps(reading.as_json(), indent=2, sort_keys=True))
    else:
        for line in describe(reading):
            click.echo(line)
    if not reading.healthy:
        raise SystemExit(1)


def describe(reading: monitoring.StackStatus) -> list[str]:
    def shown(value: object, unit: str = "") -> str:
        return "unknown" if value is None else f"{value}{unit}"

    outbox = ", ".join(f"{state} {count}" for state, count in (reading.outbox or {}).items() if count) or (
        "empty" if reading.outbox is not None else "unknown")
    lines = [
        f"chain        {shown(reading.chain_height)} (chain id {shown(reading.chain_id)})",
        f"indexer lag  {shown(reading.indexer_lag_blocks, ' blocks')}",
        f"outbox       {outbox}",
        f"stuck        {shown(reading.stuck_transactions, ' transactions without a receipt')}",
        f"queue depth  {shown(reading.queue_depth)}",
        f"heartbeat    {shown(reading.heartbeat_age_seconds, 's ago')}",
        f"dead hooks   {shown(reading.dead_webhook_deliveries)}",
    ]
    if reading.healthy:
        lines.append("status       ok")
    else:
        lines.append("status       unavailable")
        lines += [f"  {part}: {problem}" for part, problem in reading.problems.items()]
    return lines
