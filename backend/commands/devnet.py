"""`anchorline devnet start|stop|status`: the local anvil chain (hardhat-free-devnet/README.md)."""
from __future__ import annotations

from pathlib import Path

import click

from backend.chain import devnet as chain_devnet
from backend.chain.connection import RPC_URL_ENV, ChainUnreachable, connect

instance_option = click.option(
    "--instance-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ANCHORLINE_INSTANCE",
    help="Instance folder; the devnet keeps its pid, log and state in <instance>/devnet.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def devnet() -> None:
    """The local development chain (anvil, chain parameters in hardhat-free-devnet/devnet.json)."""


@devnet.command()
@instance_option
@click.option("--port", type=click.IntRange(1, 65535), help="RPC port (default: devnet.json's).")
@click.option("--timeout", type=float, default=chain_devnet.START_TIMEOUT_SECONDS, show_default=True,
              help="Seconds to wait for the RPC to answer.")
def start(instance_dir: Path | None, port: int | None, timeout: float) -> None:
    """Start anvil in the background; a no-op if this devnet is already running."""
    directory = chain_devnet.default_directory(instance_dir)
    try:
        node, started = chain_devnet.start(directory, port=port, timeout=timeout)
    except chain_devnet.DevnetError as exc:
        raise click.ClickException(str(exc)) from exc
    if not started:
        click.echo(f"devnet already running at {node.rpc_url} (pid {node.pid}); nothing to do")
        return
    click.echo(f"devnet started at {node.rpc_url} (pid {node.pid})")
    click.echo(f"  log:   {chain_devnet.log_file(directory)}")
    click.echo(f"  state: {chain_devnet.state_file(directory)}")
    if node.rpc_url != chain_devnet.load_config().rpc_url:
        click.echo(f"  not the default URL: export {RPC_URL_ENV}={node.rpc_url}")


@devnet.command()
@instance_option
def stop(instance_dir: Path | None) -> None:
    """Stop the anvil that `devnet start` started (its state is saved first)."""
    directory = chain_devnet.default_directory(instance_dir)
    try:
        result = chain_devnet.stop(directory)
    except chain_devnet.DevnetError as exc:
        raise click.ClickException(str(exc)) from exc
    if result.outcome is chain_devnet.StopOutcome.STOPPED:
        click.echo(f"devnet stopped (pid {result.pid}); chain saved in {chain_devnet.state_file(directory)}")
    elif result.outcome is chain_devnet.StopOutcome.STALE_PID_FILE:
        click.echo(f"devnet not running; removed a stale pid file (pid {result.pid} is not its anvil)")
    else:
        click.echo("devnet not running")


@devnet.command()
@instance_option
def status(instance_dir: Path | None) -> None:
    """Print the RPC URL and block height; exit status 1 if the devnet is not running."""
    node = chain_devnet.running(chain_devnet.default_directory(instance_dir))
    if node is None:
        click.echo("devnet not running")
        raise SystemExit(1)
    try:
        w3 = connect(node.rpc_url)
    except ChainUnreachable as exc:
        raise click.ClickException(f"anvil is running (pid {node.pid}) but does not answer: {exc}") from exc
    click.echo(
        f"devnet running at {node.rpc_url} (pid {node.pid}): "
        f"chain id {w3.eth.chain_id}, block {w3.eth.block_number}"
    )


if __name__ == "__main__":
    # hardhat-free-devnet/*.sh run this module directly, so they work before the rest of the CLI exists.
    devnet(prog_name="anchorline devnet")
