"""Deployment (`anchorline deploy`) and the whole receivable lifecycle on a real
anvil: signed raw transactions over HTTP JSON-RPC, reverts decoded from a real node."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account.signers.local import LocalAccount

from backend.chain import devnet
from backend.chain.deploy import CONTRACT_NAMES, DeploySettings, deploy_contracts
from backend.commands.deploy import deploy as deploy_cli
from tests.conftest import AnvilNode
from tests.factories import BUYER, FINANCIER, SUPPLIER, Ledger, reverts


@pytest.fixture
def deployments_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Deployment records go to a temporary folder, never over a developer's deployments/."""
    folder = tmp_path / "deployments"
    monkeypatch.setattr("backend.paths.DEPLOYMENTS_DIR", folder)
    return folder


def test_deploy_records_live_contracts_and_a_second_run_deploys_nothing(anvil: AnvilNode, deployments_dir: Path):
    first = CliRunner().invoke(deploy_cli, ["--rpc-url", anvil.rpc_url], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "deployed Anchorline" in first.output
    record = json.loads((deployments_dir / f"{anvil.chain_id}.json").read_text())
    assert sorted(record["addresses"]) == sorted(CONTRACT_NAMES)
    assert all(len(anvil.w3.eth.get_code(address)) > 0 for address in record["addresses"].values())
    assert record["deployer"] == anvil.accounts[0].address
    assert set(record["bytecode_hashes"]) == set(CONTRACT_NAMES) and record["build_hash"]

    nonce = anvil.w3.eth.get_transaction_count(anvil.accounts[0].address)
    second = CliRunner().invoke(deploy_cli, ["--rpc-url", anvil.rpc_url], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "nothing deployed" in second.output
    assert anvil.w3.eth.get_transaction_count(anvil.accounts[0].address) == nonce
    assert json.loads((deployments_dir / f"{anvil.chain_id}.json").read_text()) == record

    # A record of contracts built from other sources is not silently reused.
    stale = {**record, "build_hash": "0" * 64}
    (deployments_dir / f"{anvil.chain_id}.json").write_text(json.dumps(stale))
    refused = CliRunner().invoke(deploy_cli, ["--rpc-url", anvil.rpc_url])
    assert refused.exit_code != 0 and "--force" in refused.output
    assert anvil.w3.eth.get_transaction_count(anvil.accounts[0].address) == nonce

    forced = CliRunner().invoke(deploy_cli, ["--rpc-url", anvil.rpc_url, "--force"], catch_exceptions=False)
    assert forced.exit_code == 0, forced.output
    again = json.loads((deployments_dir / f"{anvil.chain_id}.json").read_text())
    assert set(again["addresses"].values()).isdisjoint(record["addresses"].values())


def test_deploy_refuses_bad_settings_and_unreachable_nodes(anvil: AnvilNode, deployments_dir: Path):
    bad_currency = CliRunner().invoke(deploy_cli, ["--rpc-url", anvil.rpc_url, "--currency", "yuan"])
    assert bad_currency.exit_code != 0 and "ISO 4217" in bad_currency.output
    port = devnet.free_port("127.0.0.1")
    unreachable = CliRunner().invoke(deploy_cli, ["--rpc-url", f"http://127.0.0.1:{port}"])
    assert unreachable.exit_code != 0 and f"127.0.0.1:{port}" in unreachable.output
    assert not deployments_dir.exists()


@pytest.fixture(scope="module")
def anvil_ledger(anvil: AnvilNode) -> Ledger:
    operator, funder = anvil.accounts[0], anvil.accounts[1]
    deployment = deploy_contracts(anvil.w3, operator, DeploySettings(admin_transfer_delay=0))
    return Ledger(anvil.w3, deployment, operator=operator, funder=funder)


def onboard(ledger: Ledger, roles: int, tokens: int = 0) -> LocalAccount:
    account = ledger.participant(roles)
    if tokens:
        ledger.mint(account, tokens)
    return account


def test_lifecycle_on_anvil_moves_money_and_receivable_together(anvil_ledger: Ledger):
    ledger = anvil_ledger
    supplier, buyer = onboard(ledger, SUPPLIER), onboard(ledger, BUYER, tokens=5_000_00)
    financier = onboard(ledger, FINANCIER, tokens=10_000_00)

    batch = [ledger.registration(buyer, amount=1_000_00) for _ in range(3)]
    ledger.send(supplier, ledger.registry.functions.registerBatch(batch))
    ids = [ledger.receivable_id(supplier, entry) for entry in batch]
    assert [ledger.status(i) for i in ids] == ["Registered"] * 3
    with reverts("DuplicateReceivable"):
        ledger.send(supplier, ledger.registry.functions.register(batch[0]))

    ledger.send(buyer, ledger.registry.functions.confirmBatch(ids))
    receivable = ids[0]
    ledger.request(supplier, receivable, 900_00)
    ledger.offer(financier, receivable, 950_00)
    ledger.accept_offer(supplier, receivable, financier)
    assert ledger.receivable(receivable)["holder"] == financier.address
    assert ledger.balance(supplier) == 950_00
    assert ledger.balance(financier) == 10_000_00 - 950_00

    ledger.send(buyer, ledger.financing.functions.repay(receivable, 400_00))
    ledger.send(buyer, ledger.financing.functions.repay(receivable, 600_00))
    assert ledger.status(receivable) == "Repaid"
    assert ledger.balance(financier) == 10_000_00 - 950_00 + 1_000_00
    assert ledger.balance(buyer) == 5_000_00 - 1_000_00


def test_a_financing_that_cannot_pay_moves_nothing_on_anvil(anvil_ledger: Ledger):
    ledger = anvil_ledger
    supplier, buyer = onboard(ledger, SUPPLIER), onboard(ledger, BUYER)
    poor_financier = onboard(ledger, FINANCIER, tokens=100)
    receivable = ledger.confirmed(supplier, buyer, amount=1_000_00)
    ledger.request(supplier, receivable, 900_00)
    ledger.offer(poor_financier, receivable, 900_00)
    with reverts("ERC20InsufficientBalance"):
        ledger.accept_offer(supplier, receivable, poor_financier)
    assert ledger.receivable(receivable)["holder"] == supplier.address
    assert ledger.balance(supplier) == 0 and ledger.balance(poor_financier) == 100
