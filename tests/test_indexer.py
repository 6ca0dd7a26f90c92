"""The event indexer on a real anvil: every event stored once and applied once, read in block
ranges at a confirmation depth, resumed after a crash, reorganisations rolled back, and a
reorganisation deeper than the window refused."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text

from backend.extensions import db
from backend.models import (
    ChainEvent,
    ContractName,
    IndexedBlock,
    IndexerCursor,
    InvoiceStatus,
    Role,
    TokenBalance,
)
from tests.indexer_fixtures import IndexedChain, token_reference
from workers import indexer, monitoring, projections


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(ChainEvent))


def cursor_blocks() -> set[int]:
    return set(db.session.scalars(select(IndexerCursor.block_number)))


def test_stores_every_event_once_with_json_safe_arguments(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice = chain.pending_invoice(supplier, buyer)
    receivable = chain.register(invoice)

    stored = chain.index()

    assert stored == event_count() > 0
    (registered,) = chain.events("ReceivableRegistered")
    assert registered.contract == ContractName.RECEIVABLE_REGISTRY
    assert registered.args["id"] == str(receivable)  # beyond 2**53: a decimal string
    assert registered.args["amount"] == 1_000_000  # within 2**53: a number
    assert registered.args["currency"] == "0x434e59"  # bytes3 "CNY" as 0x-hex
    assert registered.args["supplier"] == supplier.chain_address  # checksummed
    # AccessControl events are stored too, though nothing projects them.
    assert {event.event for event in chain.events()} >= {"RoleGranted", "ParticipantOnboarded", "Transfer"}
    assert invoice.status == InvoiceStatus.REGISTERED
    assert cursor_blocks() == {chain.ledger.w3.eth.block_number}
    assert db.session.scalar(select(func.count()).select_from(IndexerCursor)) == len(ContractName)

    assert chain.index() == 0  # nothing new


def test_an_event_delivered_twice_is_applied_once(indexed_chain: IndexedChain):
    chain = indexed_chain
    buyer = chain.organisation(Role.BUYER)
    chain.mint(buyer, 500, token_reference("deposit twice"))
    chain.index()
    before = event_count()

    # The indexer forgets how far it read: every log of the deployment is delivered again.
    db.session.execute(delete(IndexerCursor))
    db.session.execute(delete(IndexedBlock))
    db.session.commit()
    assert chain.index() == 0

    assert event_count() == before
    balance = db.session.scalar(select(TokenBalance).where(TokenBalance.address == buyer.chain_address))
    assert balance.balance_minor == 500  # the mint's Transfer was not added a second time


def test_resumes_after_a_crash_without_losing_or_repeating_events(
    indexed_chain: IndexedChain, monkeypatch: pytest.MonkeyPatch
):
    chain = indexed_chain
    chain.app.config["INDEXER_BLOCK_RANGE"] = 1
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    first, second = chain.pending_invoice(supplier, buyer), chain.pending_invoice(supplier, buyer)
    chain.register(first)
    crash_block = chain.ledger.w3.eth.block_number + 1
    chain.register(second)

    apply = projections.Projections.apply

    def crash_on_second(view: projections.Projections, event: ChainEvent) -> None:
        if event.block_number == crash_block:
            raise RuntimeError("worker killed")
        apply(view, event)

    monkeypatch.setattr(projections.Projections, "apply", crash_on_second)
    with pytest.raises(RuntimeError, match="worker killed"):
        chain.index()
    db.session.expire_all()
    # Every range before the crash is committed; nothing of the range it interrupted is.
    assert first.status == InvoiceStatus.REGISTERED and second.status == InvoiceStatus.PENDING
    assert cursor_blocks() == {crash_block - 1}
    assert not db.session.scalars(select(ChainEvent).where(ChainEvent.block_number == crash_block)).all()

    monkeypatch.setattr(projections.Projections, "apply", apply)  # the worker restarts
    chain.index()

    assert second.status == InvoiceStatus.REGISTERED
    logs = chain.ledger.w3.eth.get_logs({"fromBlock": chain.ledger.deployment.deploy_block, "toBlock": "latest",
                                         "address": list(chain.ledger.deployment.addresses.values())})
    assert event_count() == len(logs)


def test_reads_block_ranges_at_the_confirmation_depth(indexed_chain: IndexedChain, monkeypatch: pytest.MonkeyPatch):
    chain = indexed_chain
    chain.app.config.update(INDEXER_BLOCK_RANGE=3, CONFIRMATION_DEPTH=2)
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice = chain.pending_invoice(supplier, buyer)
    chain.register(invoice)
    queries: list[tuple[int, int]] = []
    get_logs = indexer.Indexer._get_logs

    def counted(self: indexer.Indexer, start: int, end: int) -> list[dict]:
        queries.append((start, end))
        return get_logs(self, start, end)

    monkeypatch.setattr(indexer.Indexer, "_get_logs", counted)

    chain.index()

    head = chain.ledger.w3.eth.block_number
    assert cursor_blocks() == {head - 2}
    assert invoice.status == InvoiceStatus.PENDING  # mined, but not yet two blocks deep
    deploy_block = chain.ledger.deployment.deploy_block
    assert queries == [(first, min(first + 2, head - 2)) for first in range(deploy_block, head - 1, 3)]

    chain.mine(2)
    chain.index()
    assert invoice.status == InvoiceStatus.REGISTERED


def test_a_reorganisation_is_rolled_back_and_the_new_chain_applied(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice = chain.pending_invoice(supplier, buyer)
    receivable = chain.register(invoice)
    chain.index()
    fork = chain.snapshot()

    chain.send(buyer, chain.ledger.registry.functions.confirm(receivable))
    chain.mine(3)
    chain.index()
    assert invoice.status == InvoiceStatus.CONFIRMED
    orphaned_block = chain.events("ReceivableConfirmed")[0].block_hash

    # The chain is reorganised: the confirmation is gone; on the new branch the buyer disputes.
    chain.revert(fork)
    chain.send(buyer, chain.ledger.registry.functions.dispute(receivable, 1))
    chain.index()

    assert invoice.status == InvoiceStatus.DISPUTED
    assert chain.events("ReceivableConfirmed") == []
    assert len(chain.events("ReceivableDisputed")) == 1
    assert orphaned_block not in {event.block_hash for event in chain.events()}
    head = chain.ledger.w3.eth.get_block("latest")
    cursor = db.session.scalars(select(IndexerCursor)).first()
    assert (cursor.block_number, cursor.block_hash) == (head["number"], "0x" + head["hash"].hex().removeprefix("0x"))


def test_a_reorganisation_between_the_check_and_the_read_is_caught_by_the_parent_hash(
    indexed_chain: IndexedChain, monkeypatch: pytest.MonkeyPatch
):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice = chain.pending_invoice(supplier, buyer)
    receivable = chain.register(invoice)
    fork = chain.snapshot()
    chain.send(buyer, chain.ledger.registry.functions.confirm(receivable))
    chain.index()
    assert invoice.status == InvoiceStatus.CONFIRMED
    chain.revert(fork)
    chain.send(buyer, chain.ledger.registry.functions.dispute(receivable, 1))
    chain.mine(2)

    # The reorganisation check ran before the chain moved (here: it is skipped) ...
    with monkeypatch.context() as patched:
        patched.setattr(indexer.Indexer, "_roll_back_reorganisation", lambda self: None)
        with pytest.raises(indexer.ChainMoved, match="does not follow the indexed block"):
            chain.index()
    db.session.expire_all()
    assert invoice.status == InvoiceStatus.CONFIRMED and chain.events("ReceivableDisputed") == []

    # ... and the next pass rolls the orphaned confirmation back and applies the new branch.
    chain.index()
    assert invoice.status == InvoiceStatus.DISPUTED and chain.events("ReceivableConfirmed") == []


def test_a_reorganisation_deeper_than_the_window_stops_the_indexer(indexed_chain: IndexedChain):
    chain = indexed_chain
    chain.app.config["REORG_WINDOW_BLOCKS"] = 3
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice = chain.pending_invoice(supplier, buyer)
    fork = chain.snapshot()
    chain.register(invoice)
    chain.mine(5)
    chain.index()
    indexed_to = cursor_blocks()
    events = event_count()

    chain.revert(fork)
    chain.mine(8)
    with pytest.raises(indexer.ReorgTooDeep, match="deeper than the window of 3 blocks"):
        chain.index()

    db.session.expire_all()
    assert cursor_blocks() == indexed_to and event_count() == events  # nothing guessed
    assert invoice.status == InvoiceStatus.REGISTERED


def test_one_indexer_at_a_time_on_postgresql(indexed_chain: IndexedChain):
    chain = indexed_chain
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has a single writer: the first statement of each range takes its write lock")
    chain.organisation(Role.SUPPLIER)
    with db.engine.connect() as other_indexer:
        other_indexer.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": indexer.INDEXER_LOCK_KEY})
        assert chain.index() == 0  # the other one holds the lock: this one leaves the work to it
        assert event_count() == 0
        other_indexer.rollback()
    assert chain.index() > 0


def test_the_celery_task_indexes_the_configured_chain_and_reports_no_lag(indexed_chain: IndexedChain):
    chain = indexed_chain
    supplier, buyer = chain.organisation(Role.SUPPLIER), chain.organisation(Role.BUYER)
    invoice = chain.pending_invoice(supplier, buyer)
    chain.register(invoice)
    assert monitoring.collect(chain.app).indexer_lag_blocks is None  # nothing indexed yet

    indexer.index_new_blocks()  # run inline: the ledger comes from ETH_RPC_URL and the deployment record

    db.session.expire_all()
    assert invoice.status == InvoiceStatus.REGISTERED
    assert monitoring.collect(chain.app).indexer_lag_blocks == 0
    schedule = indexer.periodic_tasks(chain.app.config)
    assert [entry["task"] for entry in schedule.values()] == ["workers.indexer.index_new_blocks"]
    assert all(entry["schedule"] <= 5 for entry in schedule.values())


def test_json_safe_arguments():
    assert indexer.json_safe(2**53) == 2**53
    assert indexer.json_safe(2**53 + 1) == str(2**53 + 1)
    assert indexer.json_safe(b"\x01\xff") == "0x01ff"
    assert indexer.json_safe([1, 2**64, b"\x00"]) == [1, str(2**64), "0x00"]
    assert indexer.json_safe(True) is True
