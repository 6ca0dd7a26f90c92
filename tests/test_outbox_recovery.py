"""The outbox sender when things go wrong, on a real anvil (SQLite and PostgreSQL): a write
whose re-broadcast the node refuses is not failed while an earlier broadcast may be mined; fee
bumps stop at their cap; a chain that lost transactions the database records stops its sender
with a clear error; one row whose key cannot be had does not hold up the others; replacements
come only from the address that signed the row; a second pass cannot take a row a pass holds
after committing; database errors are stored without their SQL."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from eth_account import Account
from flask import Flask
from sqlalchemy.exc import OperationalError
from web3 import Web3

from backend.chain import runtime, transactions
from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus
from backend.models.types import utcnow
from tests.outbox_fixtures import (
    Mining,
    OutboxChain,
    Participants,
    queue_mint,
    queue_registration,
    rows_by_id,
    run_until_answered,
)
from workers import outbox
from workers.celery_app import TransientError

Status = ChainTransactionStatus


@pytest.fixture
def fee_market(outbox_app: Flask, mining: Mining) -> Iterator[Mining]:
    """Mining paused on a chain that charges a 1 gwei base fee, and every sent row stale at
    once for the watcher; afterwards gas is free again and blocks come every second."""
    mining.pause()
    try:
        mining._call("anvil_setNextBlockBaseFeePerGas", [hex(Web3.to_wei(1, "gwei"))])
        mining._call("evm_mine", [])
        outbox_app.config["OUTBOX_REBROADCAST_SECONDS"] = 0
        yield mining
    finally:
        mining._call("anvil_setNextBlockBaseFeePerGas", ["0x0"])
        mining.resume()


def committed_id(row: ChainTransaction) -> int:
    db.session.commit()
    return row.id


def sent_mint(app: Flask, participants: Participants) -> ChainTransaction:
    """An operator mint, signed and broadcast (not mined while mining is paused)."""
    row_id = committed_id(queue_mint(participants.financier))
    assert outbox.submit_queued_once(app).sent == 1
    (sent,) = rows_by_id([row_id])
    assert sent.status == Status.SENT
    return sent


def test_a_refused_fee_bump_of_a_sent_write_leaves_it_waiting_and_the_earlier_broadcast_is_mined(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants, fee_market: Mining):
    w3, operator = outbox_chain.ledger.w3, outbox_chain.operator.address
    sent = sent_mint(outbox_app, participants)
    first_hash, row_id = sent.tx_hash, sent.id
    balance = w3.eth.get_balance(operator)
    fee_market._call("anvil_setBalance", [operator, "0x0"])  # the bump cannot be paid for
    try:
        report = outbox.rebroadcast_stale_once(outbox_app)
    finally:
        fee_market._call("anvil_setBalance", [operator, hex(balance)])

    (waiting,) = rows_by_id([row_id])
    assert (report.failed, report.replaced, report.rebroadcast) == (0, 1, 0)
    assert waiting.status == Status.SENT, waiting.error  # not FAILED: the first broadcast is in the pool
    assert "refused a re-broadcast" in waiting.error and "insufficient funds" in waiting.error
    assert waiting.replaced_tx_hashes == [first_hash] and waiting.next_attempt_at > utcnow()
    assert fee_market.pool_has(first_hash)

    fee_market._call("anvil_setNextBlockBaseFeePerGas", ["0x0"])
    fee_market.resume()
    (mined,) = run_until_answered(outbox_app, [row_id])
    assert mined.status == Status.MINED and mined.tx_hash == first_hash and mined.error is None


def test_fee_bumps_stop_at_the_cap_and_the_last_bytes_are_sent_again(
        outbox_app: Flask, participants: Participants, fee_market: Mining, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(outbox, "MAX_FEE_BUMPS", 2)
    row_id = sent_mint(outbox_app, participants).id

    reports = [outbox.rebroadcast_stale_once(outbox_app) for _ in range(3)]

    assert [(r.replaced, r.rebroadcast) for r in reports] == [(1, 1), (1, 1), (0, 1)]
    (row,) = rows_by_id([row_id])
    assert len(row.replaced_tx_hashes) == 2 and fee_market.pool_has(row.tx_hash)
    fee_market._call("anvil_setNextBlockBaseFeePerGas", ["0x0"])
    fee_market.resume()
    (mined,) = run_until_answered(outbox_app, [row_id])
    assert mined.status == Status.MINED


def test_a_chain_that_lost_recorded_transactions_stops_their_sender_with_a_clear_error_and_others_go_on(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants, mining: Mining):
    snapshot = mining._call("evm_snapshot", [])
    (mined,) = run_until_answered(outbox_app, [committed_id(queue_mint(participants.financier))])
    assert mined.status == Status.MINED
    mining._call("evm_revert", [snapshot])  # the devnet rolled back: the mint is gone
    assert outbox_chain.ledger.w3.eth.get_transaction_count(mined.sender, "pending") == mined.nonce
    mint = queue_mint(participants.financier)
    registration = queue_registration(participants.suppliers[0], participants.buyer)
    db.session.commit()
    mint_id, registration_id = mint.id, registration.id

    report = outbox.submit_queued_once(outbox_app)

    mint, registration = rows_by_id([mint_id, registration_id])
    assert mint.status == Status.QUEUED and mint.nonce is None and mint.next_attempt_at > utcnow()
    assert f"next nonce of {mined.sender} is {mined.nonce}" in mint.error
    assert "reset or rolled back" in mint.error
    assert registration.status == Status.SENT and report.sent == 1  # another signer is not held up


def test_a_row_whose_key_cannot_be_had_waits_and_the_rows_behind_it_go_out(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants):
    supplier, key = participants.suppliers[0], outbox_chain.suppliers[0]
    stranded_id = committed_id(queue_registration(supplier, participants.buyer))
    with outbox_app.app_context():
        assert outbox.sign_queued(runtime.ledger(outbox_app.config), outbox.OutboxReport())
    (stranded,) = rows_by_id([stranded_id])
    # Bytes the node refuses for good (its nonce must be filled), and a key sealed under another
    # master secret: the filler cannot be signed.
    refused = transactions.sign(key, {"to": key.address, "value": 0, "gas": 20_000, "gasPrice": 0,
                                      "nonce": stranded.nonce, "chainId": stranded.chain_id})
    stranded.raw_tx, stranded.tx_hash = "0x" + refused.hex(), Web3.keccak(refused).to_0x_hex()
    supplier.signing_key.keystore_json = json.dumps(
        Account.encrypt(key.key, "another master secret", kdf="scrypt", iterations=2))
    mint_id = committed_id(queue_mint(participants.financier))

    report = outbox.submit_queued_once(outbox_app)

    stranded, mint = rows_by_id([stranded_id, mint_id])
    assert stranded.status == Status.SIGNED and "cannot decrypt the signing key" in stranded.error
    assert stranded.next_attempt_at > utcnow()
    assert mint.status == Status.SENT and report.sent == 1


def test_a_replacement_is_never_signed_by_another_address_than_the_row_s(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants, fee_market: Mining):
    w3 = outbox_chain.ledger.w3
    sent = sent_mint(outbox_app, participants)
    row_id, first_hash = sent.id, sent.tx_hash
    new_operator = outbox_chain.node.accounts[2]
    new_operator_nonce = w3.eth.get_transaction_count(new_operator.address, "pending")
    outbox_app.config["OPERATOR_PRIVATE_KEY"] = new_operator.key.to_0x_hex()  # the key changed meanwhile

    report = outbox.rebroadcast_stale_once(outbox_app)

    (row,) = rows_by_id([row_id])
    assert (report.replaced, report.rebroadcast) == (0, 0)
    assert row.status == Status.SENT and row.tx_hash == first_hash and row.replaced_tx_hashes == []
    assert f"signed by {sent.sender}" in row.error and row.next_attempt_at > utcnow()
    assert w3.eth.get_transaction_count(new_operator.address, "pending") == new_operator_nonce


def test_a_row_a_pass_holds_after_a_commit_is_not_replaced_by_a_second_pass_too(
        outbox_app: Flask, participants: Participants, fee_market: Mining, monkeypatch: pytest.MonkeyPatch):
    if db.engine.url.get_backend_name() == "sqlite":
        pytest.skip("on SQLite one outbox pass runs at a time (the outbox lock)")
    first_id = sent_mint(outbox_app, participants).id
    second = sent_mint(outbox_app, participants)
    second_id, second_hash = second.id, second.tx_hash
    send = outbox._send
    concurrent: list[outbox.OutboxReport] = []

    def send_then_let_another_pass_run(w3, row, report):
        sent = send(w3, row, report)
        if not concurrent:  # after the first row's commits: the claim's locks are gone
            concurrent.append(outbox.OutboxReport())
            concurrent[0] = outbox.rebroadcast_stale_once(outbox_app)  # its own app context and session
        return sent

    monkeypatch.setattr(outbox, "_send", send_then_let_another_pass_run)
    report = outbox.rebroadcast_stale_once(outbox_app)

    assert concurrent[0].replaced == 1  # the second row only: the first is locked by the pass
    assert report.replaced == 1  # the first row only: the second changed since it was claimed
    first, second = rows_by_id([first_id, second_id])
    assert len(first.replaced_tx_hashes) == 1 and second.replaced_tx_hashes == [second_hash]


def test_a_database_error_is_stored_on_the_row_without_its_sql(
        outbox_app: Flask, participants: Participants, monkeypatch: pytest.MonkeyPatch):
    row_id = committed_id(queue_mint(participants.financier))

    def failing_lock(*_):
        raise OperationalError("SELECT next_nonce FROM sender_nonces WHERE address = %(address)s",
                               {"address": "0xSECRET"}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(outbox, "_lock_nonce", failing_lock)
    with pytest.raises(TransientError):
        outbox.submit_queued_once(outbox_app)

    (row,) = rows_by_id([row_id])
    assert row.status == Status.QUEUED and row.error == "OperationalError: a database error"
