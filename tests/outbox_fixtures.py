"""Fixtures for the outbox sender's tests: Anchorline deployed on the session's anvil, the
application pointed at it, participants whose sealed keys sign, and helpers that queue rows,
run the passes until the ledger answers, and read the chain back.

The participants' accounts are onboarded on the chain once per session; each test makes its
own organisations in its own (emptied) database around those accounts, with keystores sealed at
a trivial scrypt cost. tests/conftest.py loads this module as a plugin.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from flask import Flask
from sqlalchemy import select

from backend import paths
from backend.chain import runtime, transactions
from backend.chain.client import BUYER, FINANCIER, SUPPLIER, invoice_number_hash, ledger_date
from backend.chain.deploy import DeploySettings, deploy_contracts, save_deployment
from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus, ContractName, Organisation, Role, SigningKey
from backend.security.keystore import MASTER_SECRET_ENV
from backend.services import outbox as outbox_service
from tests import domain_factories as factories
from tests.conftest import AnvilNode
from tests.factories import Ledger
from workers import outbox

# The master secret every test's signing keys are sealed under (and a worker process unseals with).
TEST_MASTER_SECRET = "outbox-tests-master-secret-" + "0" * 32
# How long a test waits for the ledger to answer a row (the devnet mines a block a second).
ANSWER_TIMEOUT_SECONDS = 30.0
ANSWERED = (ChainTransactionStatus.MINED, ChainTransactionStatus.REVERTED, ChainTransactionStatus.FAILED)


@dataclass(frozen=True)
class OutboxChain:
    """Anchorline on the session's anvil, and accounts onboarded there."""

    node: AnvilNode
    ledger: Ledger
    deployments_dir: Path
    suppliers: list[LocalAccount]
    buyer: LocalAccount
    financier: LocalAccount

    @property
    def operator(self) -> LocalAccount:
        return self.ledger.operator


@pytest.fixture(scope="session")
def outbox_chain(anvil: AnvilNode, tmp_path_factory: pytest.TempPathFactory) -> OutboxChain:
    """Deploys Anchorline on the session's anvil and onboards three suppliers, a buyer and a
    financier (their onboarding sent together, then awaited). The deployment is recorded in a
    folder of its own, never over a developer's deployments/."""
    operator = anvil.accounts[0]
    deployment = deploy_contracts(anvil.w3, operator, DeploySettings(admin_transfer_delay=0))
    folder = tmp_path_factory.mktemp("outbox-deployments")
    save_deployment(deployment, folder)
    ledger = Ledger(anvil.w3, deployment, operator=operator, funder=anvil.accounts[1])
    suppliers = [Account.create() for _ in range(3)]
    buyer, financier = Account.create(), Account.create()
    start = anvil.w3.eth.get_transaction_count(operator.address, "pending")
    roles = [(account, SUPPLIER) for account in suppliers] + [(buyer, BUYER), (financier, FINANCIER)]
    hashes = []
    for offset, (account, role) in enumerate(roles):
        call = transactions.call_data(ledger.participants.functions.onboard(account.address, role, b"\x01" * 32))
        fields = transactions.build_fields(anvil.w3, operator, call, start + offset)
        hashes.append(anvil.w3.eth.send_raw_transaction(transactions.sign(operator, fields)))
    for tx_hash in hashes:
        assert anvil.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)["status"] == 1
    return OutboxChain(anvil, ledger, folder, suppliers, buyer, financier)


@pytest.fixture
def outbox_app(app: Flask, outbox_chain: OutboxChain, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The `app` fixture (SQLite, then PostgreSQL) talking to the outbox chain, unsealing keys
    under TEST_MASTER_SECRET."""
    monkeypatch.setattr(paths, "DEPLOYMENTS_DIR", outbox_chain.deployments_dir)
    monkeypatch.setenv(MASTER_SECRET_ENV, TEST_MASTER_SECRET)
    app.config["ETH_RPC_URL"] = outbox_chain.node.rpc_url
    runtime.forget()
    yield app
    runtime.forget()


@dataclass
class Participants:
    """Organisations of one test, each signing with an account onboarded on the chain."""

    suppliers: list[Organisation]
    buyer: Organisation
    financier: Organisation


@pytest.fixture
def participants(outbox_app: Flask, outbox_chain: OutboxChain) -> Iterator[Participants]:
    with outbox_app.app_context():
        made = Participants(
            suppliers=[signing_organisation(Role.SUPPLIER, account) for account in outbox_chain.suppliers],
            buyer=signing_organisation(Role.BUYER, outbox_chain.buyer),
            financier=signing_organisation(Role.FINANCIER, outbox_chain.financier),
        )
        db.session.commit()
        yield made


def signing_organisation(roles: Role, account: LocalAccount) -> Organisation:
    """An approved organisation whose sealed signing key is `account`'s."""
    organisation = factories.organisation(roles)
    organisation.chain_address = account.address
    sealed = Account.encrypt(account.key, TEST_MASTER_SECRET, kdf="scrypt", iterations=2)
    db.session.add(SigningKey(organisation=organisation, address=account.address, keystore_json=json.dumps(sealed)))
    db.session.flush()
    return organisation


# ---------------------------------------------------------------- rows


def registration_args(buyer: Organisation, *, number: str | None = None, amount: int = 1_000_000) -> list[Any]:
    """A `ReceivableRegistry.register` argument list as services queue it (bytes as 0x-hex,
    dates as Unix seconds), for a fresh invoice number unless one is given."""
    number = number or f"OUTBOX-{uuid.uuid4().hex[:12]}"
    today = date.today()
    return [[
        buyer.chain_address,
        amount,
        "0x" + b"CNY".hex(),
        ledger_date(today - timedelta(days=1)),
        ledger_date(today + timedelta(days=90)),
        "0x" + invoice_number_hash(number).hex(),
        "0x" + hashlib.sha256(number.encode()).hexdigest(),
    ]]


def queue(
    signer: Organisation | None,
    contract: ContractName,
    function: str,
    args: list[Any],
    **options: Any,
) -> ChainTransaction:
    """A queued outbox row, as a service adds it (not committed)."""
    return outbox_service.enqueue(
        intent_key=options.pop("intent_key", f"test:{uuid.uuid4().hex}"),
        signer=signer,
        contract=contract,
        function=function,
        args=args,
        **options,
    )


def queue_registration(supplier: Organisation, buyer: Organisation, **options: Any) -> ChainTransaction:
    number = options.pop("number", None)
    return queue(supplier, ContractName.RECEIVABLE_REGISTRY, "register", registration_args(buyer, number=number),
                 **options)


def queue_mint(recipient: Organisation, amount: int = 1_000) -> ChainTransaction:
    """An operator-signed mint to `recipient` against a fresh deposit reference."""
    reference = "0x" + hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    return queue(None, ContractName.SETTLEMENT_TOKEN, "mint", [recipient.chain_address, amount, reference])


def rows_by_id(ids: list[int]) -> list[ChainTransaction]:
    db.session.expire_all()
    return list(db.session.scalars(select(ChainTransaction).where(ChainTransaction.id.in_(ids))
                                   .order_by(ChainTransaction.id)))


def run_until_answered(app: Flask, ids: list[int], *, timeout: float = ANSWER_TIMEOUT_SECONDS) -> list[ChainTransaction]:
    """Run submitter and tracker passes in-process until every row of `ids` is answered (or,
    if batched, its carrier is); returns the rows, re-read."""
    deadline = time.monotonic() + timeout
    while True:
        outbox.submit_queued_once(app)
        outbox.track_receipts_once(app)
        rows = rows_by_id(ids)
        if all(_answered(row) for row in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"not answered within {timeout} s: {rows}")
        time.sleep(0.2)


def _answered(row: ChainTransaction) -> bool:
    if row.status == ChainTransactionStatus.BATCHED:
        return row.carried_by is not None and row.carried_by.status in ANSWERED
    return row.status in ANSWERED


def wait_until(condition: Callable[[], Any], *, timeout: float = ANSWER_TIMEOUT_SECONDS, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.2)
    return value


class Mining:
    """The devnet's block production, paused and resumed by a test (anvil methods; restored
    to a block a second afterwards)."""

    def __init__(self, node: AnvilNode) -> None:
        self.node = node

    def pause(self) -> None:
        self._call("evm_setIntervalMining", [0])

    def resume(self) -> None:
        self._call("evm_setIntervalMining", [1])

    def drop(self, tx_hash: str) -> None:
        self._call("anvil_dropTransaction", [tx_hash])

    def pool_has(self, tx_hash: str) -> bool:
        content = self._call("txpool_content", [])
        return any(tx["hash"].lower() == tx_hash.lower()
                   for section in content.values() for by_nonce in section.values() for tx in by_nonce.values())

    def _call(self, method: str, params: list[Any]) -> Any:
        response = self.node.w3.provider.make_request(method, params)
        if "error" in response:
            raise AssertionError(f"{method}: {response['error']}")
        return response.get("result")


@pytest.fixture
def mining(outbox_chain: OutboxChain) -> Iterator[Mining]:
    control = Mining(outbox_chain.node)
    yield control
    control.resume()
