"""Shared fixtures: an in-process chain with Anchorline deployed (eth-tester) and a real anvil."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from backend.chain import devnet
from backend.chain.connection import connect, dev_accounts
from backend.chain.deploy import DeploySettings, deploy_contracts
from tests.factories import AUDITOR, BUYER, FINANCIER, SUPPLIER, Ledger

# Database fixtures (an app migrated to head on SQLite, a throw-away PostgreSQL database).
pytest_plugins = ["tests.db_fixtures", "tests.indexer_fixtures", "tests.outbox_fixtures"]


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


def _cast(ledger: Ledger) -> Actors:
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


@pytest.fixture
def actors(ledger) -> Actors:
    """One active participant per role, financiers and buyer holding settlement tokens."""
    return _cast(ledger)


# ---------------------------------------------------------------------- a real anvil


@dataclass(frozen=True)
class AnvilNode:
    rpc_url: str
    chain_id: int
    w3: Web3
    accounts: list[LocalAccount]  # the funded dev accounts, in anvil's order
    directory: Path  # its pid, log (anvil.log) and state


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the `anvil` fixture, so `-m "not anvil"` always deselects it."""
    for item in items:
        if "anvil" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.anvil)


@pytest.fixture
def unused_port() -> Callable[[], int]:
    """A function returning a TCP port on 127.0.0.1 that nothing listens on right now."""
    return lambda: devnet.free_port("127.0.0.1")


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    """One private devnet for the session, started by backend/chain/devnet.py (the code behind
    `anchorline devnet start`) on a free port in a temporary directory: the suite never touches
    a developer's devnet on 8545 nor inherits its chain. Skipped only if anvil is not installed."""
    try:
        devnet.anvil_binary()
    except devnet.AnvilNotFound as exc:
        pytest.skip(str(exc))
    config = devnet.load_config()
    with devnet.temporary(config) as node:
        yield AnvilNode(
            rpc_url=node.rpc_url,
            chain_id=config.chain_id,
            w3=connect(node.rpc_url),
            accounts=dev_accounts(config.accounts),
            directory=node.directory,
        )


# ---------------------------------------------------------------------- eth-tester: module-wide setup, speed, clock


@pytest.fixture(scope="module")
def module_ledger(evm_chain) -> Iterator[Ledger]:
    """A Ledger for setup every test of a module starts from (onboarding, receivables at some
    stage), done once before the module's first test and rolled back after its last. A test
    using it must also use `ledger`: that per-test snapshot, taken on top of the module's
    setup, is what rolls the test's own transactions back."""
    tester, w3, deployment, deployer, funder = evm_chain
    snapshot = tester.take_snapshot()
    yield Ledger(w3, deployment, operator=deployer, funder=funder)
    tester.revert_to_snapshot(snapshot)


@pytest.fixture
def reused_ledger(evm_chain, module_ledger) -> Iterator[Ledger]:
    """`module_ledger` lent to one test and rolled back after it, as `ledger` is. For modules
    of many short tests, where building a Ledger per test (it hashes the sources to find the
    artifacts) costs more than the test itself: such a module overrides `ledger` with it."""
    tester = evm_chain[0]
    snapshot = tester.take_snapshot()
    yield module_ledger
    tester.revert_to_snapshot(snapshot)


@pytest.fixture(scope="module")
def module_actors(module_ledger) -> Actors:
    """The cast of `actors`, onboarded and funded once per module (see `module_ledger`)."""
    return _cast(module_ledger)


def _quick_gas_estimate(state, transaction) -> int:
    """py-evm's gas estimate in two runs instead of its binary search's dozen or so: one at the
    block gas limit (whose error, if any, is the revert the caller sees, as with py-evm's own
    estimator), then one checking the gas it used plus a tenth. Should that check fail,
    py-evm's search decides."""
    from eth.estimators.gas import binary_gas_search_intrinsic_tolerance
    from eth.vm.spoof import SpoofTransaction

    def run(gas: int):
        snapshot = state.snapshot()
        try:
            return state.apply_transaction(SpoofTransaction(transaction, gas=gas, gas_price=0))
        finally:
            state.revert(snapshot)

    computation = run(state.gas_limit)
    if computation.is_error:
        raise computation.error
    estimate = min(state.gas_limit, (state.gas_limit - computation.get_gas_remaining()) * 11 // 10)
    if not run(estimate).is_error:
        return estimate
    return binary_gas_search_intrinsic_tolerance(state, transaction)


@pytest.fixture(scope="module")
def quick_gas_estimates(evm_chain) -> Iterator[None]:
    """For modules sending many transactions: eth-tester's gas estimate (part of every
    `transactions.send`) re-runs a transaction a dozen times; this estimates in two runs and
    surfaces reverts the same way. Restored after the module."""
    chain = evm_chain[0].backend.chain
    original = chain.gas_estimator
    chain.gas_estimator = _quick_gas_estimate
    yield
    chain.gas_estimator = original


@pytest.fixture
def travel_to(evm_chain, ledger) -> Callable[[int], None]:
    """Set the chain's clock so the next transaction runs at `timestamp` (which must be ahead
    of the chain): on eth-tester its gas estimate, where a revert shows, and its mining both
    run in the block after the latest, whose timestamp this sets. Calls (views) still run in
    the latest block, at `timestamp - 1`."""
    tester = evm_chain[0]

    def travel(timestamp: int) -> None:
        tester.time_travel(timestamp)
        assert ledger.now() == timestamp - 1

    return travel
