"""Fixtures for the indexer's tests: Anchorline freshly deployed on the session's anvil, the
database rows the services would have written for what the tests then do on the chain, and the
indexer pointed at both.

`indexed_chain` deploys anew for every test (so a test sees only its own events), switches the
session's anvil to mining each transaction at once, and at the end reverts the chain to where
the test found it (anvil's evm_snapshot/evm_revert, a test-only method) and restores interval
mining: tests that move the chain back and forth leave nothing behind for other modules.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from eth_account.signers.local import LocalAccount
from flask import Flask
from sqlalchemy import select
from web3 import Web3

from backend.chain import devnet, runtime
from backend.chain.client import invoice_number_hash, ledger_date, receivable_id, registration
from backend.chain.deploy import DeploySettings, deploy_contracts, save_deployment
from backend.extensions import db
from backend.models import (
    ChainEvent,
    FinancingRequest,
    IndexedBlock,
    IndexerCursor,
    Invoice,
    InvoiceStatus,
    Offer,
    Organisation,
    Repayment,
    Role,
    TokenBalance,
    TokenOperation,
)
from tests import domain_factories
from tests.factories import Ledger
from workers import indexer

if TYPE_CHECKING:
    from tests.conftest import AnvilNode

# Deployed with no grace or default period: a receivable is overdue, and then defaultable, the
# second after it is due.
SETTINGS = DeploySettings(admin_transfer_delay=0, grace_period=0, default_period=0)


@dataclass
class IndexedChain:
    """A deployment on anvil, the app whose database mirrors it, and helpers to act on both."""

    app: Flask
    anvil: AnvilNode
    ledger: Ledger
    accounts: dict[int, LocalAccount] = field(default_factory=dict)  # organisation id -> its key

    # ------------------------------------------------------------------ the chain
    def rpc(self, method: str, *params: Any) -> Any:
        response = self.anvil.w3.provider.make_request(method, list(params))
        assert "error" not in response, response
        return response["result"]

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str) -> None:
        assert self.rpc("evm_revert", snapshot_id) is True

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def travel_past(self, timestamp: int) -> None:
        """The next block is mined after `timestamp` (the chain's clock only moves forward)."""
        self.rpc("evm_setNextBlockTimestamp", hex(max(timestamp + 1, self.ledger.now() + 1)))
        self.mine()

    def send(self, org: Organisation, call: Any) -> Any:
        """Signs and sends `call` with the key of `org`'s ledger address."""
        return self.ledger.send(self.accounts[org.id], call)

    # ------------------------------------------------------------------ the database and the chain
    def organisation(self, roles: Role, *, onboard: bool = True) -> Organisation:
        """An organisation (committed) whose chain address is a new funded account, onboarded
        on the ledger unless told not to; its participant id comes from the indexer."""
        account = self.ledger.new_account()
        org = domain_factories.organisation(roles)
        org.chain_address, org.participant_id = account.address, None
        db.session.commit()
        self.accounts[org.id] = account
        if onboard:
            self.ledger.onboard_participant(self.ledger.operator, account.address, int(roles & ~Role.OPERATOR),
                                            b"\x01" * 32)
        return org

    def pending_invoice(self, supplier: Organisation, buyer: Organisation, *, amount_minor: int = 1_000_000,
                        due_in_days: int = 60) -> Invoice:
        """An invoice as the services leave it: PENDING, with its derived receivable id."""
        row = domain_factories.invoice(supplier, buyer, status=InvoiceStatus.REGISTERED, amount_minor=amount_minor,
                                       due_in_days=due_in_days)
        row.status = InvoiceStatus.PENDING
        db.session.commit()
        return row

    def register(self, invoice: Invoice) -> int:
        """Registers `invoice` on the ledger, signed by its supplier; returns the receivable id."""
        entry = registration(
            invoice.buyer.chain_address, amount=invoice.amount_minor, currency=invoice.currency,
            issue_date=ledger_date(invoice.issue_date), due_date=ledger_date(invoice.due_date),
            invoice_number=invoice.invoice_number,
            document_sha256=hashlib.sha256(invoice.invoice_number.encode()).digest(),
        )
        self.send(invoice.supplier, self.ledger.registry.functions.register(entry))
        derived = receivable_id(invoice.supplier.chain_address, invoice.buyer.chain_address,
                                invoice_number_hash(invoice.invoice_number))
        assert invoice.receivable_id == f"0x{derived:064x}"
        return derived

    def confirmed_invoice(self, supplier: Organisation, buyer: Organisation, **options: Any) -> tuple[Invoice, int]:
        invoice = self.pending_invoice(supplier, buyer, **options)
        receivable = self.register(invoice)
        self.send(buyer, self.ledger.registry.functions.confirm(receivable))
        return invoice, receivable

    def mint(self, org: Organisation, amount: int, reference: bytes) -> None:
        self.ledger.mint_tokens(self.ledger.operator, org.chain_address, amount, reference)

    # ------------------------------------------------------------------ the indexer
    def index(self) -> int:
        """Runs the indexer once and starts the session afresh, as the next task would."""
        stored = indexer.index_once(ledger=self.ledger)
        db.session.expire_all()
        return stored

    def events(self, name: str | None = None) -> list[ChainEvent]:
        query = select(ChainEvent).order_by(ChainEvent.block_number, ChainEvent.log_index)
        if name is not None:
            query = query.where(ChainEvent.event == name)
        return list(db.session.scalars(query))


@pytest.fixture
def indexed_chain(
    app: Flask, anvil: AnvilNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IndexedChain]:
    """A fresh deployment on anvil (recorded in a temporary deployments folder, which the app's
    ETH_RPC_URL finds through backend.chain.runtime), inside the app's context."""
    w3 = anvil.w3
    chain_snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    w3.provider.make_request("evm_setAutomine", [True])
    monkeypatch.setattr("backend.paths.DEPLOYMENTS_DIR", tmp_path / "deployments")
    deployment = deploy_contracts(w3, anvil.accounts[0], SETTINGS)
    save_deployment(deployment)
    runtime.forget()
    app.config["ETH_RPC_URL"] = anvil.rpc_url
    ledger = Ledger(w3, deployment, operator=anvil.accounts[0], funder=anvil.accounts[1])
    try:
        with app.app_context():
            yield IndexedChain(app, anvil, ledger)
            db.session.rollback()
    finally:
        runtime.forget()
        w3.provider.make_request("evm_revert", [chain_snapshot])
        w3.provider.make_request("evm_setIntervalMining", [int(devnet.load_config().block_time_seconds)])


# Columns that say when a row was written, or its surrogate key where rows are made anew.
NOT_COMPARED = {"updated_at", "applied_at"}
REBUILT_TABLES = (ChainEvent, TokenBalance, IndexedBlock, IndexerCursor)
PROJECTIONS = (Invoice, FinancingRequest, Offer, Repayment, TokenOperation, Organisation, *REBUILT_TABLES)


def projection_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows, as sorted tuples of their compared columns."""
    db.session.expire_all()
    state = {}
    for model in PROJECTIONS:
        columns = [column for column in model.__table__.columns
                   if column.name not in NOT_COMPARED and not (model in REBUILT_TABLES and column.name == "id")]
        rows = db.session.execute(select(*columns)).all()
        state[model.__tablename__] = sorted((tuple(row) for row in rows), key=repr)
    return state


def token_reference(text: str) -> bytes:
    return Web3.keccak(text=text)
