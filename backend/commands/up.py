"""`anchorline up` (what `make run` calls): the whole stack, as far as it exists, in the foreground.

Today that is the devnet (unless ETH_RPC_URL points elsewhere), the deployed contracts and the
REST API (`anchorline serve`'s server, on a fresh database with an operator to sign in as).
Everything `up` starts it stops again on Ctrl-C; a devnet that was already running is left so.
"""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import click

from backend.chain import devnet as chain_devnet
from backend.chain.client import LedgerClient
from backend.chain.compiler import CompilationError
from backend.chain.connection import RPC_URL_ENV, ChainError, connect, dev_accounts
from backend.chain.demo import run_lifecycle
from backend.chain.deploy import DeploymentError
from backend.chain.transactions import TransactionReverted
from backend.commands.deploy import ensure_deployed, summary
from backend.commands.serve import DEFAULT_HOST, DEFAULT_PORT, ensure_local_operator, prepared_app, web_server


@click.command()
@click.option("--detach", is_flag=True, help="Return after start-up and leave the devnet running.")
@click.option("--port", type=click.IntRange(1, 65535), help="Devnet RPC port (default: devnet.json's).")
@click.option("--demo/--no-demo", default=True, show_default=True,
              help="On the devnet, run one receivable through its whole lifecycle and print the timeline.")
@click.option("--api-port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port of the REST API.")
def up(detach: bool, port: int | None, demo: bool, api_port: int) -> None:
    """Start the devnet, deploy the contracts, print a summary, serve the API, and run until Ctrl-C."""
    # From the first moment, Ctrl-C (or SIGTERM) means "stop what was started": a signal during
    # start-up lets start-up finish, then everything is stopped again.
    stopping = threading.Event()
    if not detach:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
    started_devnet = None
    rpc_url = os.environ.get(RPC_URL_ENV)
    on_devnet = not rpc_url
    if port and not on_devnet:
        raise click.UsageError(f"--port is for the local devnet; {RPC_URL_ENV} is set, so no devnet is started")
    try:
        if on_devnet:
            directory = chain_devnet.default_directory()
            node, started = chain_devnet.start(directory, port=port)
            started_devnet = directory if started else None
            rpc_url = node.rpc_url
            click.echo(f"devnet {'started' if started else 'already running'} at {node.rpc_url} (pid {node.pid})")
        w3 = connect(rpc_url)
        # On the devnet, edited contracts are simply deployed anew; elsewhere that needs `deploy --force`.
        deployment, deployed = ensure_deployed(w3, redeploy_stale=on_devnet)
    except BaseException as exc:
        _stop(started_devnet)  # nothing `up` started outlives a failed start-up
        if isinstance(exc, (chain_devnet.DevnetError, ChainError, DeploymentError, TransactionReverted, CompilationError)):
            raise click.ClickException(str(exc)) from exc
        raise
    click.echo(("deployed" if deployed else "found the existing deployment of") + " Anchorline:")
    for line in summary(w3, deployment):
        click.echo(f"  {line}")
    if on_devnet:
        accounts = dev_accounts(4)
        click.echo("  development accounts (public mnemonic, see hardhat-free-devnet/README.md):")
        for index, (account, role) in enumerate(zip(accounts, ("admin, operator", "supplier", "buyer", "financier"))):
            click.echo(f"    #{index} {account.address}  {role}")
        if demo:
            click.echo("demo: one invoice through its whole lifecycle")
            try:
                for step in run_lifecycle(LedgerClient(w3, deployment), *accounts):
                    click.echo(f"  block {step.block:>5}  {step.tx_hash}  {step.what}")
            except TransactionReverted as exc:
                _stop(started_devnet)
                raise click.ClickException(f"the demo failed: {exc}") from exc
    if detach:
        if on_devnet:
            click.echo("detached: stop the devnet with `anchorline devnet stop`")
        click.echo("the API runs in the foreground only: start it with `anchorline serve`")
        return
    try:
        app = prepared_app()
        operator_sign_in = ensure_local_operator(app)
        server = web_server(app, DEFAULT_HOST, api_port)
    except BaseException as exc:
        _stop(started_devnet)
        if isinstance(exc, OSError):  # the port is taken, most likely
            raise click.ClickException(f"cannot serve the API on {DEFAULT_HOST}:{api_port}: {exc}") from exc
        raise
    threading.Thread(target=server.run, name="api", daemon=True).start()
    click.echo(f"API at http://{DEFAULT_HOST}:{server.effective_port}/api/v1 (interactive docs at /api/v1/docs)")
    if operator_sign_in is not None:
        email, password = operator_sign_in
        click.echo(f"  operator sign-in, shown this once: {email} / {password}")
    click.echo("running; press Ctrl-C to stop")
    stopping.wait()
    server.close()
    _stop(started_devnet)
    click.echo("stopped")


def _stop(devnet_directory: Path | None) -> None:
    if devnet_directory is not None:
        result = chain_devnet.stop(devnet_directory)
        click.echo(f"devnet: {result.outcome.value}")
