"""Shared fixtures: an in-process chain with Anchorline deployed (eth-tester) and a real anvil."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from backend.chain.deploy import DeploySettings, deploy_contracts
from tests.factories import AUDITOR, BUYER, FINANCIER, SUPPLIER, Ledger


# ---------------------------------------------------------------------- contracts on eth-tester


@pytest.fixture(scope="session")
def evm_chain():
    """One in-process chain (eth-tester on py-evm) with Anchorline deployed, for the session."""
    tester = EthereumTester(PyEVMBackend())
    w3 = Web3(EthereumTesterProvider(tester))
    keys = tester.backend.account_keys
    deployer = Account.from_key(keys[0].to_bytes())
    deployment = deploy_contracts(w3, deployer, DeploySettings(admin_transfer_delay=0))
    return tester, w3, deployment, deployer, Account.from_key(keys[1].to_bytes())


@pytest.fixture
def ledger(evm_chain) -> Iterator[Ledger]:
    """The deployed contracts, with every test's transactions rolled back after it."""
    tester, w3, deployment, deployer, funder = evm_chain
    snapshot = tester.take_snapshot()
    yield Ledger(w3, deployment, operator=deployer, funder=funder)
    tester.revert_to_snapshot(snapshot)


@pytest.fixture
def time_travel(evm_chain, ledger) -> Callable[[int], None]:
    """Move the chain's clock forward by some seconds (eth-tester only; a test fixture)."""
    tester = evm_chain[0]

    def travel(seconds: int) -> None:
        tester.time_travel(ledger.now() + seconds)

    return travel


@dataclass
class Actors:
    supplier: LocalAccount
    buyer: LocalAccount
    financier: LocalAccount
    sub_supplier: LocalAccount  # a lower-tier supplier of `supplier`
    rival_financier: LocalAccount
    auditor: LocalAccount


@pytest.fixture
def actors(ledger) -> Actors:
    """One active participant per role, financiers and buyer holding settlement tokens."""
    actors = Actors(
        supplier=ledger.participant(SUPPLIER),
        buyer=ledger.participant(BUYER),
        financier=ledger.participant(FINANCIER),
        sub_supplier=ledger.participant(SUPPLIER),
        rival_financier=ledger.participant(FINANCIER),
        auditor=ledger.participant(AUDITOR),
    )
    for account in (actors.buyer, actors.financier, actors.rival_financier):
        ledger.mint(account, 100_000_000)
    return actors
