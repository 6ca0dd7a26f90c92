"""`anchorline contracts ...`: the Solidity build."""
from __future__ import annotations

from pathlib import Path

import click

from backend.chain.compiler import MAX_DEPLOYED_BYTECODE_SIZE, CompilationError, build_contracts
from backend.chain.solc import SolcNotFoundError
from backend.paths import BUILD_DIR, CONTRACTS_DIR


@click.group()
def contracts() -> None:
    """Compile the Solidity contracts."""


@contracts.command()
@click.option("--force", is_flag=True, help="Recompile even if sources, settings and compiler are unchanged.")
@click.option("--contracts-dir", type=click.Path(file_okay=False, path_type=Path), default=CONTRACTS_DIR,
              show_default=True, help="Directory of .sol files to compile.")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=BUILD_DIR,
              show_default=True, help="Artifacts go to <build-dir>/contracts/<Name>.json.")
def build(force: bool, contracts_dir: Path, build_dir: Path) -> None:
    """Compile every contract into one JSON artifact each, unless already up to date."""
    try:
        result = build_contracts(contracts_dir, build_dir, force=force)
    except SolcNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    except CompilationError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        raise click.ClickException("compilation failed") from exc

    click.echo(f"solc {result.compiler_version}: {result.solc_path} (found via {result.how_found})")
    for warning in result.warnings:
        click.echo(warning, err=True)
    out_dir = build_dir / "contracts"
    if result.compiled:
        count = len(result.artifacts)
        click.echo(f"compiled {count} contract{'' if count == 1 else 's'} into {out_dir}")
    else:
        click.echo(f"{out_dir} is up to date")
    for name, artifact in sorted(result.artifacts.items()):
        size = (len(artifact["deployedBytecode"]) - 2) // 2
        click.echo(f"  {name:<32} {size:>6} bytes")
        if size > MAX_DEPLOYED_BYTECODE_SIZE:
            click.echo(
                f"warning: {name} has {size} bytes of deployed code, over the EIP-170 limit of "
                f"{MAX_DEPLOYED_BYTECODE_SIZE}; chains that enforce it will refuse to deploy it",
                err=True,
            )
