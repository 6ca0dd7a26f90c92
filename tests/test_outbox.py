"""The outbox sender on a real anvil (SQLite and PostgreSQL): queued rows become signed, sent
and mined transactions; reverts are recorded with their custom errors; registrations are
batched; nonces are consecutive; stored bytes are re-sent, never re-signed; the watcher
re-broadcasts, bumps fees and fills dead nonces; RPC errors back off; commits nudge the workers."""
from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from flask import Flask
from sqlalchemy import select
from web3 import HTTPProvider, Web3

from backend.chain import runtime, transactions
from backend.chain.client import LedgerClient
from backend.extensions import db
from backend.models import (
    ChainTransaction,
    ChainTransactionStatus,
    ContractName,
    Repayment,
    RepaymentStatus,
    Role,
    SenderNonce,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.models.types import utcnow
from backend.services.servicing import REPAYMENT_SUBJECT
from tests import domain_factories as factories
from tests.outbox_fixtures import (
    Mining,
    OutboxChain,
    Participants,
    queue,
    queue_mint,
    queue_registration,
    registration_args,
    rows_by_id,
    run_until_answered,
    wait_until,
)
from workers import outbox, redis_server
from workers.celery_app import FOLLOW_UP_KEY_PREFIX, QUEUE, TransientError

Status = ChainTransactionStatus


def receivable_status(chain: OutboxChain, supplier_address: str, row_args: list) -> int:
    entry = row_args[0]
    receivable = chain.ledger.registry.functions.receivableId(supplier_address, entry[0], entry[5]).call()
    return chain.ledger.receivable(receivable)["status"]


def test_a_queued_write_is_signed_stored_sent_and_mined(outbox_app: Flask, outbox_chain: OutboxChain,
                                                        participants: Participants):
    supplier = participants.suppliers[0]
    before = outbox_chain.ledger.w3.eth.get_transaction_count(supplier.chain_address)
    row = queue_registration(supplier, participants.buyer)
    db.session.commit()

    (mined,) = run_until_answered(outbox_app, [row.id])

    assert mined.status == Status.MINED and mined.error is None
    assert mined.sender == supplier.chain_address and mined.chain_id == outbox_chain.node.chain_id
    assert mined.nonce == before and mined.attempts == 1
    assert mined.tx_hash == "0x" + Web3.keccak(hexstr=mined.raw_tx).hex().removeprefix("0x")
    receipt = outbox_chain.ledger.w3.eth.get_transaction_receipt(mined.tx_hash)
    assert receipt["status"] == 1 and receipt["blockNumber"] == mined.block_number
    assert mined.sent_at is not None and mined.mined_at is not None
    assert receivable_status(outbox_chain, supplier.chain_address, mined.args) == 1  # Registered
    nonce_row = db.session.scalar(select(SenderNonce).where(SenderNonce.address == supplier.chain_address))
    assert nonce_row.next_nonce == before + 1


def test_a_write_refused_at_its_estimate_is_reverted_with_the_named_error_and_takes_no_nonce(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants):
    buyer = participants.buyer
    endpoint = WebhookEndpoint(organisation=buyer, url="https://example.com/hook", secret="s" * 64,
                               event_types=["transaction.reverted"])
    db.session.add(endpoint)
    unknown = "0x" + "ab" * 32
    invoice = factories.invoice(participants.suppliers[0], buyer)
    repayment = Repayment(invoice=invoice, payer=buyer, amount_minor=10, status=RepaymentStatus.PENDING)
    db.session.add(repayment)
    db.session.flush()
    confirm = queue(buyer, ContractName.RECEIVABLE_REGISTRY, "confirm", [unknown])
    repay = queue(buyer, ContractName.FINANCING, "repay", [unknown, 10],
                  subject_type=REPAYMENT_SUBJECT, subject_id=repayment.id)
    db.session.commit()

    rows = run_until_answered(outbox_app, [confirm.id, repay.id])

    # The registry asks whether the receivable exists; Financing's repay checks the caller is its buyer.
    assert [row.error_name for row in rows] == ["UnknownReceivable", "NotBuyer"], [row.error for row in rows]
    for row in rows:
        assert row.status == Status.REVERTED and "refused at its gas estimate" in row.error
        assert row.nonce is None and row.raw_tx is None and row.tx_hash is None
    assert db.session.get(Repayment, repayment.id).status == RepaymentStatus.FAILED
    deliveries = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.event_type, d.payload["transaction_id"], d.payload["error_name"]) for d in deliveries] == [
        ("transaction.reverted", confirm.id, "UnknownReceivable"),
        ("transaction.reverted", repay.id, "NotBuyer"),
    ]
    assert db.session.scalar(select(SenderNonce).where(SenderNonce.address == buyer.chain_address)) is None


def test_a_mined_revert_is_decoded_by_replaying_it(outbox_app: Flask, outbox_chain: OutboxChain,
                                                    participants: Participants):
    # The same registration twice, sent before either is mined: both estimates pass, and the
    # second is mined after the first, so it reverts on the chain. (attempts=1: not batched.)
    supplier, buyer = participants.suppliers[0], participants.buyer
    args = registration_args(buyer)
    first = queue(supplier, ContractName.RECEIVABLE_REGISTRY, "register", args)
    second = queue(supplier, ContractName.RECEIVABLE_REGISTRY, "register", args)
    first.attempts = second.attempts = 1
    db.session.commit()

    first, second = run_until_answered(outbox_app, [first.id, second.id])

    assert first.status == Status.MINED
    assert second.status == Status.REVERTED and second.error_name == "DuplicateReceivable"
    assert second.nonce == first.nonce + 1 and second.block_number is not None
    assert outbox_chain.ledger.w3.eth.get_transaction_receipt(second.tx_hash)["status"] == 0


def test_single_registrations_of_one_supplier_go_out_as_one_batch_transaction(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants):
    supplier, other = participants.suppliers[0], participants.suppliers[1]
    before = outbox_chain.ledger.w3.eth.get_transaction_count(supplier.chain_address)
    members = [queue_registration(supplier, participants.buyer) for _ in range(5)]
    alone = queue_registration(other, participants.buyer)
    db.session.commit()

    rows = run_until_answered(outbox_app, [row.id for row in (*members, alone)])

    *members, alone = rows
    carrier = members[0].carried_by
    assert carrier.function == "registerBatch" and carrier.status == Status.MINED
    assert carrier.intent_key == f"carrier:register:{members[0].id}-{members[-1].id}"
    assert carrier.args == [[member.args[0] for member in members]]
    assert all(m.status == Status.BATCHED and m.carried_by_id == carrier.id for m in members)
    assert all(m.block_number == carrier.block_number and m.tx_hash is None for m in members)
    assert alone.status == Status.MINED and alone.function == "register"  # a lone row goes as it is
    assert outbox_chain.ledger.w3.eth.get_transaction_count(supplier.chain_address) == before + 1
    assert all(receivable_status(outbox_chain, supplier.chain_address, m.args) == 1 for m in members)


def test_a_batch_queued_as_one_row_is_sent_as_it_is(outbox_app: Flask, outbox_chain: OutboxChain,
                                                    participants: Participants):
    supplier = participants.suppliers[1]
    entries = [registration_args(participants.buyer)[0] for _ in range(3)]
    row = queue(supplier, ContractName.RECEIVABLE_REGISTRY, "registerBatch", [entries],
                intent_key="invoice-batch:1-3:register", subject_type="invoice-batch", subject_id=1)
    db.session.commit()

    (mined,) = run_until_answered(outbox_app, [row.id])

    assert mined.status == Status.MINED and mined.args == [entries] and mined.carried_by_id is None
    assert db.session.scalar(select(ChainTransaction).where(ChainTransaction.id != row.id)) is None
    assert all(receivable_status(outbox_chain, supplier.chain_address, [entry]) == 1 for entry in entries)


def test_a_refused_batch_sends_its_members_again_one_by_one(outbox_app: Flask, outbox_chain: OutboxChain,
                                                           participants: Participants):
    supplier, buyer = participants.suppliers[0], participants.buyer
    registered = queue_registration(supplier, buyer)
    db.session.commit()
    run_until_answered(outbox_app, [registered.id])
    good = [queue_registration(supplier, buyer) for _ in range(2)]
    duplicate = queue(supplier, ContractName.RECEIVABLE_REGISTRY, "register", registered.args)
    db.session.commit()
    ids = [good[0].id, good[1].id, duplicate.id]

    outbox.submit_queued_once(outbox_app)  # the batch is refused at its estimate
    carrier = db.session.scalar(select(ChainTransaction).where(ChainTransaction.function == "registerBatch"))
    assert carrier.status == Status.REVERTED and carrier.error_name == "DuplicateReceivable"
    rows = run_until_answered(outbox_app, ids)

    first, second, dup = rows
    assert first.status == second.status == Status.MINED and first.carried_by_id is None
    assert dup.status == Status.REVERTED and dup.error_name == "DuplicateReceivable"
    assert first.attempts == 2  # once in the batch, once on its own



def test_nonces_of_one_sender_are_consecutive_without_gaps(outbox_app: Flask, outbox_chain: OutboxChain,
                                                          participants: Participants):
    operator = outbox_chain.operator.address
    before = outbox_chain.ledger.w3.eth.get_transaction_count(operator, "pending")
    mints = [queue_mint(participants.financier) for _ in range(8)]
    db.session.commit()

    rows = run_until_answered(outbox_app, [row.id for row in mints])

    assert all(row.status == Status.MINED and row.sender == operator for row in rows)
    assert sorted(row.nonce for row in rows) == list(range(before, before + 8))
    assert [row.nonce for row in rows] == sorted(row.nonce for row in rows)  # in the order queued
    assert outbox_chain.ledger.w3.eth.get_transaction_count(operator) == before + 8


def test_sending_stored_bytes_again_makes_no_second_transaction(outbox_app: Flask, outbox_chain: OutboxChain,
                                                               participants: Participants):
    operator = outbox_chain.operator.address
    before = outbox_chain.ledger.w3.eth.get_transaction_count(operator, "pending")
    row_id = _committed_id(queue_mint(participants.financier))
    report = outbox.OutboxReport()
    with outbox_app.app_context():
        assert outbox.sign_queued(runtime.ledger(outbox_app.config), report) == [row_id]
    (signed,) = rows_by_id([row_id])
    assert signed.status == Status.SIGNED and signed.raw_tx and signed.sent_at is None
    stored = (signed.raw_tx, signed.tx_hash, signed.nonce)

    for _ in range(2):  # a worker that died after sending but before recording it, twice
        outbox.submit_queued_once(outbox_app)
        (sent,) = rows_by_id([row_id])
        assert sent.status == Status.SENT
        sent.status = Status.SIGNED
        db.session.commit()
    (mined,) = run_until_answered(outbox_app, [row_id])
    mined.status = Status.SIGNED  # and once more after it was mined: "nonce too low", its receipt exists
    db.session.commit()
    (mined,) = run_until_answered(outbox_app, [row_id])

    assert mined.status == Status.MINED and (mined.raw_tx, mined.tx_hash, mined.nonce) == stored
    assert mined.replaced_tx_hashes == []
    assert outbox_chain.ledger.w3.eth.get_transaction_count(operator) == before + 1


def test_a_transaction_dropped_by_the_node_is_broadcast_again(outbox_app: Flask, outbox_chain: OutboxChain,
                                                              participants: Participants, mining: Mining):
    mining.pause()
    row_id = _committed_id(queue_mint(participants.financier))
    outbox.submit_queued_once(outbox_app)
    (sent,) = rows_by_id([row_id])
    assert sent.status == Status.SENT and mining.pool_has(sent.tx_hash)
    mining.drop(sent.tx_hash)
    assert not mining.pool_has(sent.tx_hash)

    assert outbox.rebroadcast_stale_once(outbox_app).rebroadcast == 0  # not stale yet
    outbox_app.config["OUTBOX_REBROADCAST_SECONDS"] = 0
    report = outbox.rebroadcast_stale_once(outbox_app)

    assert (report.rebroadcast, report.replaced) == (1, 0)  # free gas: the same bytes
    assert mining.pool_has(sent.tx_hash)
    mining.resume()
    (mined,) = run_until_answered(outbox_app, [row_id])
    assert mined.status == Status.MINED and mined.tx_hash == sent.tx_hash and mined.replaced_tx_hashes == []


def test_where_the_chain_charges_fees_a_stale_transaction_is_replaced_with_higher_fees(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants, mining: Mining):
    operator = outbox_chain.operator.address
    mining.pause()
    try:
        mining._call("anvil_setNextBlockBaseFeePerGas", [hex(Web3.to_wei(1, "gwei"))])
        mining._call("evm_mine", [])
        before = outbox_chain.ledger.w3.eth.get_transaction_count(operator, "pending")
        row_id = _committed_id(queue_mint(participants.financier))
        outbox.submit_queued_once(outbox_app)
        (sent,) = rows_by_id([row_id])
        old_hash, old_fees = sent.tx_hash, outbox_chain.ledger.w3.eth.get_transaction(sent.tx_hash)
        outbox_app.config["OUTBOX_REBROADCAST_SECONDS"] = 0

        report = outbox.rebroadcast_stale_once(outbox_app)

        (replaced,) = rows_by_id([row_id])
        assert (report.rebroadcast, report.replaced) == (1, 1)
        assert replaced.tx_hash != old_hash and replaced.replaced_tx_hashes == [old_hash]
        assert replaced.nonce == sent.nonce == before
        new_fees = outbox_chain.ledger.w3.eth.get_transaction(replaced.tx_hash)
        for fee in ("maxFeePerGas", "maxPriorityFeePerGas"):
            assert new_fees[fee] * 10 >= old_fees[fee] * 11, fee
        assert mining.pool_has(replaced.tx_hash) and not mining.pool_has(old_hash)
    finally:
        mining._call("anvil_setNextBlockBaseFeePerGas", ["0x0"])
        mining.resume()
    (mined,) = run_until_answered(outbox_app, [row_id])
    assert mined.status == Status.MINED and mined.tx_hash == replaced.tx_hash
    assert outbox_chain.ledger.w3.eth.get_transaction_count(operator) == before + 1


def test_a_transaction_the_node_refuses_for_good_has_its_nonce_filled(outbox_app: Flask, outbox_chain: OutboxChain,
                                                                      participants: Participants):
    w3, operator = outbox_chain.ledger.w3, outbox_chain.operator
    doomed_id = _committed_id(queue_mint(participants.financier))
    next_id = _committed_id(queue_mint(participants.financier))
    with outbox_app.app_context():
        outbox.sign_queued(runtime.ledger(outbox_app.config), outbox.OutboxReport())
    doomed, following = rows_by_id([doomed_id, next_id])
    # Stored bytes no node takes (less gas than any transaction needs), at the row's nonce.
    refused = transactions.sign(operator, {"to": operator.address, "value": 0, "gas": 20_000, "gasPrice": 0,
                                           "nonce": doomed.nonce, "chainId": doomed.chain_id})
    doomed.raw_tx, doomed.tx_hash = "0x" + refused.hex(), Web3.keccak(refused).to_0x_hex()
    refused_hash = doomed.tx_hash
    db.session.commit()

    rows = run_until_answered(outbox_app, [doomed_id, next_id])
    wait_until(lambda: outbox.track_receipts_once(outbox_app) and rows_by_id([doomed_id])[0].block_number,
               what="the nonce filler to be mined")

    doomed, following = rows_by_id([doomed_id, next_id])
    assert doomed.status == Status.FAILED and "intrinsic gas too low" in doomed.error
    assert "filled by a no-op transfer" in doomed.error and doomed.replaced_tx_hashes == [refused_hash]
    filler = w3.eth.get_transaction(doomed.tx_hash)
    assert (filler["from"], filler["to"], filler["value"], filler["nonce"]) == (
        operator.address, operator.address, 0, doomed.nonce)
    assert following.status == Status.MINED and following.nonce == doomed.nonce + 1


def test_arguments_that_do_not_fit_the_abi_fail_the_row_without_a_nonce(outbox_app: Flask,
                                                                        outbox_chain: OutboxChain,
                                                                        participants: Participants):
    buyer = participants.buyer
    rows = [
        queue(buyer, ContractName.RECEIVABLE_REGISTRY, "confirm", ["not a number"]),
        queue(buyer, ContractName.RECEIVABLE_REGISTRY, "confirm", []),
        queue(buyer, ContractName.RECEIVABLE_REGISTRY, "noSuchFunction", [1]),
        queue(None, ContractName.SETTLEMENT_TOKEN, "mint", ["0x1234", 1, "0x" + "00" * 32]),
    ]
    db.session.commit()

    failed = run_until_answered(outbox_app, [row.id for row in rows])

    assert [row.status for row in failed] == [Status.FAILED] * 4
    assert all(row.nonce is None and row.tx_hash is None for row in failed)
    assert "id: expected an integer or 0x-hex string for uint256" in failed[0].error
    assert "takes 1 argument(s)" in failed[1].error
    assert "no function 'noSuchFunction'" in failed[2].error
    assert "to: not an address" in failed[3].error


def test_rpc_errors_are_transient_and_the_rows_wait(outbox_app: Flask, outbox_chain: OutboxChain,
                                                   participants: Participants, unused_port,
                                                   monkeypatch: pytest.MonkeyPatch):
    deployment = outbox_chain.ledger.deployment
    unreachable = LedgerClient(Web3(HTTPProvider(f"http://127.0.0.1:{unused_port()}")), deployment)
    reachable = runtime.ledger
    monkeypatch.setattr(runtime, "ledger", lambda config: unreachable)
    row_id = _committed_id(queue_mint(participants.financier))

    with pytest.raises(TransientError, match="could not be reached"):
        outbox.submit_queued_once(outbox_app)

    (waiting,) = rows_by_id([row_id])
    assert waiting.status == Status.QUEUED and waiting.attempts == 1 and waiting.nonce is None
    assert waiting.next_attempt_at > utcnow() and "could not be reached" in waiting.error
    assert outbox.submit_queued_once(outbox_app).signed == 0  # not due yet: no RPC, no error
    monkeypatch.setattr(runtime, "ledger", reachable)  # the node is back
    waiting.next_attempt_at = None
    db.session.commit()
    (mined,) = run_until_answered(outbox_app, [row_id])
    assert mined.status == Status.MINED and mined.error is None


def test_stuck_rows_are_the_ones_in_flight_longer_than_the_limit(app: Flask):
    with app.app_context():
        old, fresh = (ChainTransaction(intent_key=f"stuck:{n}", contract=ContractName.FINANCING, function="repay",
                                       args=[], status=Status.SENT, raw_tx="0x00", tx_hash=f"0x{n:064x}", nonce=n,
                                       chain_id=1, sender="0x" + "11" * 20) for n in (1, 2))
        old.created_at = utcnow() - timedelta(seconds=app.config["OUTBOX_STUCK_SECONDS"] + 1)
        queued = ChainTransaction(intent_key="stuck:queued", contract=ContractName.FINANCING, function="repay",
                                  args=[], created_at=old.created_at)
        db.session.add_all([old, fresh, queued])
        db.session.commit()

        assert outbox.stuck_rows() == [old]


def _committed_id(row: ChainTransaction) -> int:
    db.session.commit()
    return row.id


# ---------------------------------------------------------------- the commit nudge


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A real Redis (the bundled redis-server) for the nudge tests."""
    with redis_server.temporary() as server:
        yield server.url


def queued_task_names(url: str) -> list[str]:
    messages = redis.Redis.from_url(url).lrange(QUEUE, 0, -1)
    return [json.loads(message)["headers"]["task"] for message in messages]


def test_a_commit_that_queues_a_write_nudges_the_submitter_and_a_rollback_does_not(app: Flask, redis_url: str):
    redis.Redis.from_url(redis_url).delete(QUEUE)
    app.config["REDIS_URL"] = redis_url
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        db.session.commit()
        assert queued_task_names(redis_url) == []  # a commit that queued nothing

        queue_registration(supplier, buyer)
        db.session.rollback()
        db.session.commit()
        assert queued_task_names(redis_url) == []  # what was rolled back was never queued

        queue_registration(supplier, buyer)
        db.session.commit()
        assert queued_task_names(redis_url) == ["workers.outbox.submit_queued"]

        app.config["WORKER_NUDGES"] = False
        queue_registration(supplier, buyer)
        db.session.commit()
        assert queued_task_names(redis_url) == ["workers.outbox.submit_queued"]


def test_while_a_sent_write_awaits_its_receipt_one_receipt_pass_at_a_time_follows_up_shortly(
        outbox_app: Flask, participants: Participants, mining: Mining, redis_url: str,
        monkeypatch: pytest.MonkeyPatch):
    follow_up_seconds = 1.0  # long enough for the passes below to fall inside one follow-up's mark
    monkeypatch.setattr(outbox, "RECEIPT_FOLLOW_UP_SECONDS", follow_up_seconds)
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE, FOLLOW_UP_KEY_PREFIX + outbox.TRACK_TASK)
    outbox_app.config["REDIS_URL"] = redis_url
    mining.pause()
    row_id = _committed_id(queue_mint(participants.financier))
    client.delete(QUEUE)  # the commit's nudge

    assert outbox.submit_queued_once(outbox_app).sent == 1
    assert outbox.track_receipts_once(outbox_app).mined == 0  # still waiting, but a follow-up is scheduled

    (follow_up,) = [json.loads(message)["headers"] for message in client.lrange(QUEUE, 0, -1)]
    assert follow_up["task"] == outbox.TRACK_TASK and follow_up["eta"] is not None  # a countdown, not at once
    time.sleep(follow_up_seconds + 0.1)
    outbox.track_receipts_once(outbox_app)  # still waiting, and the last follow-up is due: another
    assert queued_task_names(redis_url) == [outbox.TRACK_TASK] * 2

    mining.resume()
    wait_until(lambda: outbox.track_receipts_once(outbox_app).mined, what="the receipt")
    assert rows_by_id([row_id])[0].status == Status.MINED
    assert outbox.INDEXER_TASK in queued_task_names(redis_url)
    client.delete(QUEUE)
    time.sleep(follow_up_seconds + 0.1)
    outbox.track_receipts_once(outbox_app)
    assert queued_task_names(redis_url) == []  # nothing in flight: no follow-up


def test_on_sqlite_a_pass_that_finds_the_outbox_lock_taken_is_skipped_and_follows_itself_up(
        outbox_app: Flask, participants: Participants, redis_url: str):
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        pytest.skip("PostgreSQL passes share the outbox through row locks")
    client = redis.Redis.from_url(redis_url)
    client.delete(QUEUE, *(FOLLOW_UP_KEY_PREFIX + task for task in (outbox.SUBMIT_TASK, outbox.TRACK_TASK)))
    outbox_app.config["REDIS_URL"] = redis_url
    row_id = _committed_id(queue_mint(participants.financier))
    client.delete(QUEUE)  # the commit's nudge

    with open(url.database + outbox.SQLITE_LOCK_SUFFIX, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process's pass
        assert outbox.submit_queued_once(outbox_app).skipped
        assert outbox.track_receipts_once(outbox_app).skipped
        fcntl.flock(lock_file, fcntl.LOCK_UN)

    follow_ups = [json.loads(message)["headers"] for message in client.lrange(QUEUE, 0, -1)]
    assert sorted(headers["task"] for headers in follow_ups) == [outbox.SUBMIT_TASK, outbox.TRACK_TASK]
    assert all(headers["eta"] is not None for headers in follow_ups)
    assert rows_by_id([row_id])[0].status == Status.QUEUED  # untouched until the follow-up's pass
    assert outbox.submit_queued_once(outbox_app).sent == 1


def test_a_commit_succeeds_at_once_when_redis_is_down(app: Flask, unused_port):
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{unused_port()}/0"
    with app.app_context():
        supplier, buyer = factories.organisation(Role.SUPPLIER), factories.organisation(Role.BUYER)
        row = queue_registration(supplier, buyer)
        started = time.monotonic()
        db.session.commit()
        assert time.monotonic() - started < 1.5
        assert db.session.get(ChainTransaction, row.id).status == Status.QUEUED
