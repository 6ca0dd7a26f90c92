"""`anchorline deploy`: the contracts onto the chain at ETH_RPC_URL (by default the devnet)."""
from __future__ import annotations

import click
from web3 import Web3

from backend.chain import deploy as chain_deploy
from backend.chain.compiler import CompilationError
from backend.chain.connection import ChainError, connect, deployer_account
from backend.chain.transactions import TransactionReverted


def ensure_deployed(
    w3: Web3,
    *,
    force: bool = False,
    redeploy_stale: bool = False,
    settings: chain_deploy.DeploySettings | None = None,
) -> tuple[chain_deploy.Deployment, bool]:
    """The deployment on the connected chain: the recorded one if its contracts are live there
    and were built from today's sources (unless `force`), else a new one, recorded in
    deployments/<chain-id>.json. A live deployment of other sources is replaced only with
    `redeploy_stale` (the devnet), otherwise refused. Returns it and whether this deployed it."""
    existing = chain_deploy.load_deployment(w3.eth.chain_id)
    if existing and not force and chain_deploy.is_live(w3, existing):
        current = chain_deploy.current_build_hash()
        if existing.build_hash == current:
            return existing, False
        if not redeploy_stale:
            raise chain_deploy.DeploymentError(
                f"the contracts on chain {existing.chain_id} were built from other sources "
                f"({existing.build_hash[:12]}…, now {current[:12]}…); deploy the current ones with --force"
            )
    deployment = chain_deploy.deploy_contracts(w3, deployer_account(w3), settings)
    chain_deploy.save_deployment(deployment)
    return deployment, True


def summary(w3: Web3, deployment: chain_deploy.Deployment) -> list[str]:
    """Lines describing a deployment, for `deploy`, `up` and `status`."""
    lines = [
        f"chain id {deployment.chain_id}, block height {w3.eth.block_number}, "
        f"deployed at block {deployment.deploy_block}",
        f"admin {deployment.admin}, operator {deployment.operator}",
    ]
    lines += [f"  {name:<20} {deployment.addresses[name]}" for name in chain_deploy.CONTRACT_NAMES]
    lines.append(f"build {deployment.build_hash[:16]}… (solc {deployment.compiler_version})")
    return lines


@click.command()
@click.option("--rpc-url", envvar="ETH_RPC_URL", help="JSON-RPC URL (default: the local devnet).")
@click.option("--force", is_flag=True, help="Deploy anew even if a live deployment is recorded.")
@click.option("--currency", default="CNY", show_default=True, help="ISO 4217 code of the settlement token.")
@click.option("--token-decimals", type=click.IntRange(0, 18), default=2, show_default=True)
@click.option("--grace-days", type=click.IntRange(0, 3650), default=5, show_default=True,
              help="Days after the due date before a receivable may be marked overdue.")
@click.option("--default-days", type=click.IntRange(0, 3650), default=30, show_default=True,
              help="Days after the grace period before an overdue receivable may be defaulted.")
@click.option("--admin", help="Default admin address (default: the deployer).")
@click.option("--operator", help="Operator address (default: the deployer).")
def deploy(rpc_url: str | None, force: bool, currency: str, token_decimals: int, grace_days: int,
           default_days: int, admin: str | None, operator: str | None) -> None:
    """Deploy the Anchorline contracts and record them in deployments/<chain-id>.json.

    A second run against the same chain reports the recorded deployment and deploys nothing,
    unless --force.
    """
    try:
        settings = chain_deploy.DeploySettings(
            currency=currency.upper(),
            token_decimals=token_decimals,
            token_name=f"Anchorline Settlement {currency.upper()}",
            token_symbol=f"a{currency.upper()}",
            grace_period=grace_days * chain_deploy.DAY,
            default_period=default_days * chain_deploy.DAY,
            admin=admin,
            operator=operator,
        )
        w3 = connect(rpc_url)
        deployment, deployed = ensure_deployed(w3, force=force, settings=settings)
    except (ChainError, chain_deploy.DeploymentError, TransactionReverted) as exc:
        raise click.ClickException(str(exc)) from exc
    except CompilationError as exc:
        raise click.ClickException("the contracts do not compile:\n" + "\n".join(exc.lines)) from exc
    if deployed:
        click.echo(f"deployed Anchorline, recorded in {chain_deploy.deployment_path(deployment.chain_id)}")
    else:
        click.echo("Anchorline is already deployed on this chain; nothing deployed (use --force to deploy anew)")
    for line in summary(w3, deployment):
        click.echo(line)
