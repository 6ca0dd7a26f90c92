"""`anchorline up` (what `make run` calls): the whole stack, as far as it exists, in the foreground.

Today that is the devnet (unless ETH_RPC_URL points elsewhere) and the deployed contracts.
Everything `up` starts it stops again on Ctrl-C; a devnet that was already running is left so.
"""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import click

from backend.chain import devnet as chain_devnet
from backend.chain.connection import RPC_URL_ENV, ChainError, connect, dev_accounts
from backend.chain.deploy import DeploymentError
from backend.chain.transactions import TransactionReverted
from backend.commands.deploy import ensure_deployed, summary


@click.command()
@click.option("--detach", is_flag=True, help="Return after start-up and leave the devnet running.")
def up(detach: bool) -> None:
    """Start the devnet, deploy the contracts, print a summary, and run until Ctrl-C."""
    started_devnet = None
    try:
        if not os.environ.get(RPC_URL_ENV):
            directory = chain_devnet.default_directory()
            node, started = chain_devnet.start(directory)
            started_devnet = directory if started else None
            click.echo(f"devnet {'started' if started else 'already running'} at {node.rpc_url} (pid {node.pid})")
        w3 = connect()
        deployment, deployed = ensure_deployed(w3)
    except (chain_devnet.DevnetError, ChainError, DeploymentError, TransactionReverted) as exc:
        _stop(started_devnet)
        raise click.ClickException(str(exc)) from exc
    click.echo(("deployed" if deployed else "found the existing deployment of") + " Anchorline:")
    for line in summary(w3, deployment):
        click.echo(f"  {line}")
    if not os.environ.get(RPC_URL_ENV):
        click.echo("  development accounts (public mnemonic, see hardhat-free-devnet/README.md):")
        for index, account in enumerate(dev_accounts(4)):
            click.echo(f"    #{index} {account.address}")
    if detach:
        click.echo("detached: stop the devnet with `anchorline devnet stop`")
        return
    click.echo("running; press Ctrl-C to stop")
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    _stop(started_devnet)
    click.echo("stopped")


def _stop(devnet_directory: Path | None) -> None:
    if devnet_directory is not None:
        result = chain_devnet.stop(devnet_directory)
        click.echo(f"devnet: {result.outcome.value}")
