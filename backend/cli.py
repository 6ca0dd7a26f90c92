"""The `anchorline` console script: one click group, one sub-command module per area."""
from __future__ import annotations

import click

from backend.commands.admin import admin
from backend.commands.contracts import contracts
from backend.commands.demo import demo
from backend.commands.deploy import deploy
from backend.commands.devnet import devnet
from backend.commands.reindex import reindex
from backend.commands.serve import serve
from backend.commands.status import status
from backend.commands.up import up
from backend.commands.workers import beat, redis, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Anchorline: supply-chain finance on a permissioned ledger."""


main.add_command(contracts)
main.add_command(devnet)
main.add_command(deploy)
main.add_command(up)
main.add_command(admin)
main.add_command(serve)
main.add_command(demo)
main.add_command(status)
main.add_command(worker)
main.add_command(beat)
main.add_command(redis)
main.add_command(reindex)


if __name__ == "__main__":
    main()
