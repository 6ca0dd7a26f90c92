"""`anchorline reindex`: rebuild every projection from the chain.

Every chain-derived field (invoice statuses, holders, repayments, delinquency, financing
requests and offers, token operations and balances, participant ids) goes back to its value
before any ledger event, the stored events, block hashes and cursors are forgotten, and the
indexer reads the chain again from the deployment block. The result equals incremental indexing
exactly (workers/indexer.py). Stop the workers first: it refuses to run beside an indexer.
"""
from __future__ import annotations

import click

from backend.app import create_app
from backend.chain.connection import ChainError
from workers.indexer import ReorgTooDeep
from workers.indexer import reindex as rebuild


@click.command()
def reindex() -> None:
    """Rebuild the database's projections from the ledger's events."""
    app = create_app()
    try:
        stored = rebuild(app)
    except (ChainError, ReorgTooDeep, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"reindexed: {stored} ledger events applied from the deployment block on")
