"""The transaction outbox sender: queued ledger writes become signed, sent and answered
transactions, each intent exactly once.

One submitter pass (`submit_pass`, the task `submit_queued`):
1. re-sends rows left SIGNED by a worker that died between storing and sending them (the same
   bytes: a node that already has them answers "already known" or "nonce too low", and the
   receipt decides);
2. batches queued `ReceivableRegistry.register` rows of one signer into one `registerBatch`
   carrier row (members BATCHED, `carried_by` the carrier), at most OUTBOX_BATCH_MAX a batch;
3. claims queued rows, oldest first, one signer at a time: encodes the JSON arguments by the
   function's ABI, estimates gas (a revert there makes the row REVERTED with the decoded error,
   and no nonce is taken), then locks the sender's `SenderNonce` row, signs with eth-account,
   stores raw_tx, tx_hash, nonce, sender and chain id (SIGNED) and moves next_nonce on, all in
   one commit; only then broadcasts and marks the rows SENT.

Claims are `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so several workers share the
queue without taking a row twice; the nonce row's lock makes nonces of one sender consecutive.
SQLite has no row locks: there every outbox pass of every process takes an exclusive `flock` on
a file next to the database (`<database>.outbox-lock`) and a pass that finds it taken does
nothing, since the holder is doing the same work.

The receipt tracker (`track_pass`) reads receipts of SENT rows (any of their hashes, fee bumps
included) and, CONFIRMATION_DEPTH blocks deep, marks them MINED or REVERTED (the revert's custom
error decoded by replaying the call on the block before). A carrier's members follow it: mined,
they keep BATCHED with the block number; refused, each is queued again on its own (a row tried
once is never batched again), so every invoice ends up registered or refused with its own
error. A refusal fails the repayment or token operation it carried and sends the signer the
`transaction.reverted` webhook (`backend.services.transactions.ledger_refused`).

The watcher (`rebroadcast_pass`) sends again what has no receipt OUTBOX_REBROADCAST_SECONDS after
its last broadcast: the same bytes where gas is free, or a replacement at the same nonce with
fees 12.5 % higher where the chain charges a base fee (the old hash kept in replaced_tx_hashes),
at most MAX_FEE_BUMPS times a row. A transaction the node refuses for good (not a fee or pool
problem) before any broadcast of the row was taken can never be mined, and later nonces would
wait behind it forever: its nonce is filled with a zero-value transfer to itself, and the row is
FAILED; its tx_hash is then that filler's, tracked until mined. A row broadcast before is never
failed so: the earlier broadcast may still be mined, so the refusal is logged and the row waits.
Rows in flight longer than OUTBOX_STUCK_SECONDS are logged and listed by `stuck_rows()`.

The re-send and watcher paths commit row by row, and on PostgreSQL a commit releases the locks
the claim took: each row is locked again (SKIP LOCKED) at its turn and left alone if another
pass holds it or changed it meanwhile (`_relock`).

Node and database hiccups raise `TransientError` (the Celery task retries with backoff), and the
rows involved wait `2 ** attempts` seconds (`next_attempt_at`) before they are tried again. Any
other error of one row or signer's group (a key that cannot be had, a node refusing an estimate
for a reason other than a revert) is logged and stored on its rows, which wait the same way,
and the pass goes on with the others.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak, to_checksum_address, to_hex
from flask import Flask, current_app
from hexbytes import HexBytes
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from backend.chain import runtime, transactions
from backend.chain.client import LedgerClient
from backend.chain.connection import ChainError, deployer_account
from backend.chain.transactions import TransactionReverted
from backend.extensions import db
from backend.models import ChainTransaction, ChainTransactionStatus, ContractName, SenderNonce
from backend.models.types import utcnow
from backend.security.keystore import KeystoreError, load_master_secret, unseal
from backend.services.invoices import BATCH_SUBJECT
from backend.services.transactions import ledger_refused
from workers.celery_app import TransientError, send_follow_up, send_nudge, worker_task

log = logging.getLogger(__name__)

Status = ChainTransactionStatus
Row = ChainTransaction

REGISTER, REGISTER_BATCH = "register", "registerBatch"
INDEXER_TASK = "workers.indexer.index_new_blocks"
SUBMIT_TASK = "workers.outbox.submit_queued"
TRACK_TASK = "workers.outbox.track_receipts"
# While sent transactions await their receipts, they are looked for again this soon rather than
# at the next beat (a second): with one-second blocks, the wait for the receipt pass is most of
# a write's time from the API call to its indexed state after the wait for the block itself.
RECEIPT_FOLLOW_UP_SECONDS = 0.2
# A pass that finds another holding the SQLite outbox lock tries again this soon: the holder may
# be a receipt pass, which sends nothing, or a submit pass that claimed its rows before this
# pass's rows were committed.
BUSY_FOLLOW_UP_SECONDS = 0.1
# Rows one claim takes; a pass claims again until the queue is empty or its time is up.
CLAIM_LIMIT = 200
# A pass stops claiming after this long, so one task never holds a worker for long.
PASS_BUDGET_SECONDS = 20.0
# After an RPC error a row waits 2 ** attempts seconds, at most this long.
MAX_ROW_BACKOFF_SECONDS = 300
# A fee bump multiplies both fee fields by 9/8 (rounded up): nodes replace a pending
# transaction only for at least 10 % more.
FEE_BUMP_NUMERATOR, FEE_BUMP_DENOMINATOR = 9, 8
# A row's transaction is replaced with higher fees at most this often (fees then at most
# (9/8) ** 8, about 2.6 times the first): past that, a transaction still not mined is not
# underpriced but stuck, and further bumps would only spend the sender's funds until the node
# refuses them. The watcher then sends the last bytes again and lists the row as stuck.
MAX_FEE_BUMPS = 8
# The gas of a plain transfer: what the zero-value filler of a dead nonce needs.
TRANSFER_GAS = 21_000
SQLITE_LOCK_SUFFIX = ".outbox-lock"

# What nodes (anvil, geth, Besu, GoQuorum) answer to a broadcast, lower-cased with "_" as " ".
# The node has these bytes (or, for a fee complaint, will take a replacement the watcher sends):
_IN_POOL = ("already known", "already imported", "known transaction", "underpriced", "less than block base fee",
            "fee too low", "gas price too low")
# A transaction at this nonce has been mined: ours (then there is a receipt) or someone else's.
_NONCE_USED = ("nonce too low", "nonce is too low")
# Try again later.
_BUSY = ("txpool is full", "transaction pool is full", "too many requests", "rate limit", "try again", "timeout",
         "temporarily", "busy")


class RowProblem(Exception):
    """The row cannot become a transaction as it stands (its function or arguments do not fit
    the contract's ABI): it fails without taking a nonce."""


class SignerUnavailable(Exception):
    """The key that signs the row cannot be had right now (keystore or master secret wrong,
    operator key missing, or a key of another address than the one that signed the row's
    first transaction): the row waits, and the error is logged and stored on it."""


class ChainBehind(Exception):
    """The chain has fewer transactions of a sender than the outbox recorded (the devnet was
    reset or rolled back): a new nonce would leave a gap that never closes, so nothing more of
    that sender is signed until the database and the chain agree again."""


# Errors whose message says all there is: logged without a traceback.
_EXPLAINED = (SignerUnavailable, ChainBehind, Web3RPCError)


@dataclass
class OutboxReport:
    """What one pass did."""

    skipped: bool = False  # another process held the SQLite outbox lock
    batched: int = 0  # rows put into carriers
    signed: int = 0
    sent: int = 0
    mined: int = 0
    reverted: int = 0
    failed: int = 0
    rebroadcast: int = 0
    replaced: int = 0  # fee bumps
    stuck: int = 0


# ---------------------------------------------------------------- passes (no Celery)


def submit_queued_once(app: Flask) -> OutboxReport:
    """One submitter pass in `app`'s context (tests, benchmarks)."""
    with app.app_context():
        return submit_pass()


def track_receipts_once(app: Flask) -> OutboxReport:
    with app.app_context():
        return track_pass()


def rebroadcast_stale_once(app: Flask) -> OutboxReport:
    with app.app_context():
        return rebroadcast_pass()


def submit_pass() -> OutboxReport:
    """Send what is queued (see the module docstring); returns what it did."""
    report = OutboxReport()
    app = current_app._get_current_object()
    with _outbox_turn() as ours:
        if not ours:
            send_follow_up(app, SUBMIT_TASK, BUSY_FOLLOW_UP_SECONDS)
            return OutboxReport(skipped=True)
        client = _ledger()
        _resend_signed(client.w3, report)
        _form_batches(current_app.config["OUTBOX_BATCH_MAX"], report)
        deadline = time.monotonic() + PASS_BUDGET_SECONDS
        while time.monotonic() < deadline:
            signed_ids = sign_queued(client, report)
            if signed_ids is None:
                break
            _broadcast(client.w3, signed_ids, report)
    if report.sent:
        send_follow_up(app, TRACK_TASK, RECEIPT_FOLLOW_UP_SECONDS)
    return report


def track_pass() -> OutboxReport:
    """Record the receipts of sent transactions that are deep enough."""
    report = OutboxReport()
    app = current_app._get_current_object()
    with _outbox_turn() as ours:
        if not ours:  # the pass holding the outbox may be about to send: look again soon
            send_follow_up(app, TRACK_TASK, RECEIPT_FOLLOW_UP_SECONDS)
            return OutboxReport(skipped=True)
        w3 = _ledger().w3
        depth = current_app.config["CONFIRMATION_DEPTH"]
        rows = _claim(select(Row).where(_awaiting_receipt()).order_by(Row.id).limit(CLAIM_LIMIT * 5))
        waiting = 0
        try:
            latest = w3.eth.block_number
            for row in rows:
                receipt = _receipt(w3, row)
                if receipt is not None and receipt["blockNumber"] + depth <= latest:
                    _settle(w3, row, receipt, report)
                else:
                    waiting += 1
        except Exception as exc:
            if not _transient(exc):
                raise
            db.session.commit()  # what was settled stays settled
            raise TransientError(_describe(exc)) from exc
        db.session.commit()
    if report.mined:
        send_nudge(app, INDEXER_TASK)
    if waiting:
        send_follow_up(app, TRACK_TASK, RECEIPT_FOLLOW_UP_SECONDS)
    return report


def rebroadcast_pass() -> OutboxReport:
    """Send again what has waited too long for a receipt; log what is stuck."""
    report = OutboxReport()
    with _outbox_turn() as ours:
        if not ours:
            return OutboxReport(skipped=True)
        w3 = _ledger().w3
        cutoff = utcnow() - timedelta(seconds=current_app.config["OUTBOX_REBROADCAST_SECONDS"])
        rows = _claim(
            select(Row)
            .where(_awaiting_receipt(), _due(), or_(Row.sent_at.is_(None), Row.sent_at <= cutoff))
            .order_by(Row.sender, Row.nonce)
            .limit(CLAIM_LIMIT)
        )
        try:
            charges_fees = bool(w3.eth.get_block("latest").get("baseFeePerGas"))
        except Exception as exc:
            if not _transient(exc):
                raise
            db.session.rollback()
            raise TransientError(_describe(exc)) from exc
        for row_id, status, tx_hash in _as_claimed(rows):
            row = _relock(row_id, status, tx_hash)
            if row is None:
                continue
            try:
                if _receipt(w3, row) is not None:
                    continue  # the tracker records it
                if charges_fees and len(row.replaced_tx_hashes) < MAX_FEE_BUMPS:
                    row = _replace_with_higher_fees(w3, row)
                    if row is None:
                        continue
                    report.replaced += 1
                if _send(w3, row, report):
                    report.rebroadcast += 1
                db.session.commit()
            except Exception as exc:
                if _transient(exc):
                    db.session.rollback()
                    raise TransientError(_describe(exc)) from exc
                _set_aside([row_id], exc)
        db.session.commit()
        stuck = stuck_rows()
        for row in stuck:
            log.warning("ledger write %s (%s, nonce %s of %s) has waited since %s without a receipt",
                        row.id, row.intent_key, row.nonce, row.sender, row.created_at.isoformat())
        report.stuck = len(stuck)
    return report


def stuck_rows() -> list[ChainTransaction]:
    """Ledger writes signed or sent more than OUTBOX_STUCK_SECONDS after they were queued and
    still without a receipt (and failed rows whose nonce filler is not mined yet), oldest first:
    what `anchorline status` reports as stuck."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["OUTBOX_STUCK_SECONDS"])
    return list(db.session.scalars(
        select(Row)
        .where(or_(Row.status == Status.SIGNED, _awaiting_receipt()), Row.created_at <= cutoff)
        .order_by(Row.created_at, Row.id)
    ))


# ---------------------------------------------------------------- submitting


def sign_queued(client: LedgerClient, report: OutboxReport) -> list[int] | None:
    """Claim the due queued rows of one signer, oldest first, and sign and store them in one
    commit (nothing is broadcast here). Returns the ids signed, or None when nothing was due."""
    rows = _claim(select(Row).where(Row.status == Status.QUEUED, _due()).order_by(Row.created_at, Row.id)
                  .limit(CLAIM_LIMIT))
    if not rows:
        db.session.rollback()
        return None
    group = [row for row in rows if row.signer_id == rows[0].signer_id]
    group_ids = [row.id for row in group]
    try:
        signed = _sign_group(client, group, report)
    except Exception as exc:
        if not _transient(exc):
            _set_aside(group_ids, exc)  # the signer's rows wait; the other signers' go on
            return []
        _back_off(group_ids, _describe(exc))
        raise TransientError(_describe(exc)) from exc
    db.session.commit()
    return signed


def _sign_group(client: LedgerClient, group: list[Row], report: OutboxReport) -> list[int]:
    w3 = client.w3
    account = _signer_account(group[0], w3)
    chain_id = w3.eth.chain_id
    fees = transactions.fee_fields(w3)
    ready: list[tuple[Row, dict[str, Any]]] = []
    for row in group:
        try:
            call = {**_call(client, row), "from": account.address}
        except RowProblem as exc:
            _refuse(row, Status.FAILED, None, str(exc))
            report.failed += 1
            continue
        try:  # before a nonce is taken: a doomed write must not take one
            gas = transactions.estimate_gas(w3, call)
        except TransactionReverted as exc:
            _refuse(row, Status.REVERTED, exc.error.name if exc.error else None,
                    f"refused at its gas estimate: {exc.error or exc}")
            report.reverted += 1
            continue
        except Exception as exc:
            if _transient(exc):
                raise
            # Not the contract's answer (say, insufficient funds for gas): the row may go later.
            log.error("gas estimate of ledger write %s (%s) failed: %s", row.id, row.intent_key, _describe(exc))
            _postpone(row, f"its gas estimate failed: {_describe(exc)}")
            continue
        ready.append((row, {**call, **fees, "gas": gas, "chainId": chain_id}))
    if not ready:
        return []
    nonces = _lock_nonce(w3, chain_id, account.address)
    for row, fields in ready:
        _store_signed(row, transactions.sign(account, {**fields, "nonce": nonces.next_nonce}))
        row.nonce, row.sender, row.chain_id = nonces.next_nonce, account.address, chain_id
        row.status = Status.SIGNED
        row.attempts += 1
        row.error = row.error_name = row.next_attempt_at = None
        nonces.next_nonce += 1
    report.signed += len(ready)
    return [row.id for row, _ in ready]


def _lock_nonce(w3: Web3, chain_id: int, address: str) -> SenderNonce:
    """The sender's nonce row, locked until the commit; made from the node's pending count the
    first time. A count above the stored one (the key was used outside Anchorline) wins: those
    nonces are taken on the chain already. A count below it is the outbox's rows signed but not
    yet in the node's pool; if rows in flight do not hold every nonce in between, the chain lost
    transactions the database records as mined (ChainBehind): re-aligning would hand out nonces
    those rows hold, and signing on would leave a gap that never closes."""
    def locked() -> SenderNonce | None:
        return db.session.scalar(select(SenderNonce).where(SenderNonce.chain_id == chain_id,
                                                           SenderNonce.address == address).with_for_update())

    pending = w3.eth.get_transaction_count(address, "pending")
    nonces = locked()
    if nonces is None:
        try:
            with db.session.begin_nested():
                db.session.add(SenderNonce(chain_id=chain_id, address=address, next_nonce=pending))
        except IntegrityError:
            pass  # another worker made it first; its row is the one to lock
        nonces = locked()
        if nonces is None:
            raise RuntimeError(f"the nonce row of {address} on chain {chain_id} vanished while it was made")
    if nonces.next_nonce > pending:
        in_flight = db.session.scalar(
            select(func.count()).select_from(Row).where(
                Row.chain_id == chain_id, Row.sender == address, Row.nonce >= pending,
                Row.nonce < nonces.next_nonce, or_(Row.status == Status.SIGNED, _awaiting_receipt())))
        if in_flight < nonces.next_nonce - pending:
            raise ChainBehind(
                f"the chain's next nonce of {address} is {pending}, but the outbox has used nonces up to "
                f"{nonces.next_nonce - 1} on chain {chain_id} and {nonces.next_nonce - pending - in_flight} of them "
                "are in no pending transaction: the chain was reset or rolled back; nothing more is signed for "
                "this address until the database and the chain agree again")
    nonces.next_nonce = max(nonces.next_nonce, pending)
    return nonces


def _resend_signed(w3: Web3, report: OutboxReport) -> None:
    """Broadcast rows stored as SIGNED whose sending did not happen (or was not recorded)."""
    rows = _claim(select(Row).where(Row.status == Status.SIGNED, _due()).order_by(Row.sender, Row.nonce)
                  .limit(CLAIM_LIMIT))
    _send_each(w3, rows, report)


def _broadcast(w3: Web3, row_ids: list[int], report: OutboxReport) -> None:
    if row_ids:
        rows = _claim(select(Row).where(Row.id.in_(row_ids), Row.status == Status.SIGNED).order_by(Row.nonce))
        _send_each(w3, rows, report)


def _send_each(w3: Web3, rows: list[Row], report: OutboxReport) -> None:
    """Broadcast the claimed rows one by one, each in a transaction of its own."""
    claimed = _as_claimed(rows)
    for position, (row_id, status, tx_hash) in enumerate(claimed):
        row = _relock(row_id, status, tx_hash)
        if row is None:
            continue
        try:
            _send(w3, row, report)
            db.session.commit()
        except Exception as exc:
            if not _transient(exc):
                _set_aside([row_id], exc)
                continue
            _back_off([left for left, _, _ in claimed[position:]], _describe(exc))
            raise TransientError(_describe(exc)) from exc


def _send(w3: Web3, row: Row, report: OutboxReport) -> bool:
    """Broadcast the row's stored bytes: it is SENT, or, when they can never be mined, FAILED
    (with its nonce filled). Returns whether the node has them. Transient errors propagate."""
    try:
        w3.eth.send_raw_transaction(row.raw_tx)
    except Web3RPCError as exc:
        if _transient(exc):
            raise
        said = _said(exc)
        if any(phrase in said for phrase in _NONCE_USED):
            if _receipt(w3, row) is None:
                _nonce_taken_elsewhere(row)
                report.failed += 1
                return False
        elif not any(phrase in said for phrase in _IN_POOL):
            if _never_broadcast(row):
                _fill_nonce(w3, row, said, report)
            else:
                _refused_again(row, said)
            return False
    if row.status == Status.SIGNED:
        row.status = Status.SENT
        report.sent += 1
    row.sent_at = utcnow()
    return True


def _never_broadcast(row: Row) -> bool:
    """No transaction of the row ever reached a node: only then does a refusal of its bytes
    mean its nonce can never be used by it."""
    return row.status == Status.SIGNED and row.sent_at is None and not row.replaced_tx_hashes


def _refused_again(row: Row, reason: str) -> None:
    """A node refused the row's bytes (or its fee bump) after an earlier broadcast of it was
    taken: that one may still be mined, so the row is neither failed nor its nonce filled; it
    waits, backing off (listed by `stuck_rows()` if it is never mined)."""
    log.error("the node refused ledger write %s (%s, nonce %s of %s) again (%s); an earlier broadcast of it "
              "may still be mined, so it waits", row.id, row.intent_key, row.nonce, row.sender, reason)
    if row.status == Status.SENT:  # a FAILED row's error says why it failed
        _postpone(row, f"the node refused a re-broadcast ({reason}); an earlier broadcast may still be mined")


def _nonce_taken_elsewhere(row: Row) -> None:
    """The chain has a transaction at the row's nonce that is none of ours: this write can never
    be mined, and nothing of it reached the ledger."""
    row.replaced_tx_hashes = [*row.replaced_tx_hashes, row.tx_hash]
    row.raw_tx = row.tx_hash = None
    _refuse(row, Status.FAILED, None,
            f"nonce {row.nonce} of {row.sender} was used by a transaction Anchorline did not sign")
    log.error("ledger write %s (%s): %s", row.id, row.intent_key, row.error)


def _fill_nonce(w3: Web3, row: Row, reason: str, report: OutboxReport) -> None:
    """The node refused the row's transaction for good: sign a zero-value transfer to the
    sender at the same nonce, store it (the row FAILED, its tx_hash the filler's), commit, and
    only then broadcast it, so later nonces are not blocked."""
    account = _same_signer(row, w3)
    old = _unsigned_fields(row.raw_tx, row.chain_id)
    filler = {"to": row.sender, "value": 0, "data": b"", "gas": TRANSFER_GAS, "nonce": row.nonce,
              "chainId": row.chain_id, **_bumped_fees(w3, old)}
    _store_replacement(row, transactions.sign(account, filler))
    _refuse(row, Status.FAILED, None,
            f"the node refused the transaction ({reason}); nonce {row.nonce} is filled by a no-op transfer")
    report.failed += 1
    log.error("ledger write %s (%s): %s", row.id, row.intent_key, row.error)
    db.session.commit()
    try:
        w3.eth.send_raw_transaction(row.raw_tx)
        row.sent_at = utcnow()
    except Exception as exc:  # the watcher sends it again
        log.error("could not broadcast the nonce filler of ledger write %s: %s", row.id, _describe(exc))


def _replace_with_higher_fees(w3: Web3, row: Row) -> Row | None:
    """Re-sign the row's transaction at the same nonce with higher fees, and store it before it
    is sent; the old hash may still be the one mined, so it is kept. Returns the row locked
    again after that commit, or None if another pass took it meanwhile."""
    account = _same_signer(row, w3)
    old = _unsigned_fields(row.raw_tx, row.chain_id)
    fee_keys = ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")
    _store_replacement(row, transactions.sign(
        account, {**{k: v for k, v in old.items() if k not in fee_keys}, **_bumped_fees(w3, old)}))
    row_id, status, tx_hash = row.id, row.status, row.tx_hash
    db.session.commit()
    return _relock(row_id, status, tx_hash)


def _bumped_fees(w3: Web3, old: dict[str, Any]) -> dict[str, int]:
    """Fees for a replacement of `old`: each old fee raised by the bump, and no less than the
    chain asks now."""
    def bump(value: int) -> int:
        return -(-value * FEE_BUMP_NUMERATOR // FEE_BUMP_DENOMINATOR)

    now = transactions.fee_fields(w3)
    if "maxFeePerGas" in old:
        now_max = now.get("maxFeePerGas", now.get("gasPrice", 0))
        now_priority = now.get("maxPriorityFeePerGas", now.get("gasPrice", 0))
        priority = max(bump(old["maxPriorityFeePerGas"]), now_priority)
        return {"maxFeePerGas": max(bump(old["maxFeePerGas"]), now_max, priority), "maxPriorityFeePerGas": priority}
    return {"gasPrice": max(bump(old["gasPrice"]), now.get("gasPrice", now.get("maxFeePerGas", 0)))}


def _unsigned_fields(raw_tx: str, chain_id: int) -> dict[str, Any]:
    """The fields a stored signed transaction was made from."""
    raw = HexBytes(raw_tx)
    if raw[0] < 0x7F:  # EIP-2718 typed transaction
        fields = TypedTransaction.from_bytes(raw).as_dict()
    else:
        fields = {**LegacyTransaction.from_bytes(raw).as_dict(), "chainId": chain_id}
    for signature_part in ("v", "r", "s", "type"):
        fields.pop(signature_part, None)
    fields["to"] = to_checksum_address(fields["to"])
    return fields


# ---------------------------------------------------------------- batching


def _form_batches(batch_max: int, report: OutboxReport) -> None:
    """Put due queued `register` rows of one signer, never tried before, into registerBatch
    carrier rows of up to `batch_max` registrations, in one commit. A lone row goes as it is."""
    if batch_max < 2:
        return
    rows = _claim(
        select(Row)
        .where(Row.status == Status.QUEUED, Row.contract == ContractName.RECEIVABLE_REGISTRY,
               Row.function == REGISTER, Row.attempts == 0, _due())
        .order_by(Row.signer_id, Row.id)
        .limit(batch_max * 10)
    )
    by_signer: dict[int | None, list[Row]] = {}
    for row in rows:
        by_signer.setdefault(row.signer_id, []).append(row)
    for signer_id, members in by_signer.items():
        for start in range(0, len(members), batch_max):
            chunk = members[start:start + batch_max]
            if len(chunk) < 2:
                continue
            carrier = Row(
                intent_key=f"carrier:register:{chunk[0].id}-{chunk[-1].id}",
                signer_id=signer_id,
                contract=ContractName.RECEIVABLE_REGISTRY,
                function=REGISTER_BATCH,
                args=[[member.args[0] for member in chunk]],
                subject_type=BATCH_SUBJECT,
                subject_id=chunk[0].invoice_id,
            )
            db.session.add(carrier)
            db.session.flush()
            for member in chunk:
                member.status = Status.BATCHED
                member.carried_by_id = carrier.id
            report.batched += len(chunk)
    db.session.commit()


def _requeue_members(carrier: Row) -> None:
    """A refused batch's registrations are queued again one by one, so each is registered or
    refused with its own error."""
    for member in db.session.scalars(select(Row).where(Row.carried_by_id == carrier.id)):
        member.status = Status.QUEUED
        member.carried_by_id = None
        member.attempts += 1
        member.next_attempt_at = None
        member.error_name = carrier.error_name
        member.error = f"its batch (ledger write {carrier.id}) was refused: {carrier.error}; sent again on its own"


# ---------------------------------------------------------------- receipts


def _settle(w3: Web3, row: Row, receipt: TxReceipt, report: OutboxReport) -> None:
    mined_hash = to_hex(receipt["transactionHash"])
    block = receipt["blockNumber"]
    if row.status == Status.FAILED and mined_hash == row.tx_hash:
        row.block_number, row.mined_at = block, utcnow()  # the nonce filler: the nonce is used
        return
    # Asked before anything changes, so an RPC error leaves the row as it was.
    error = transactions.mined_revert_error(w3, receipt) if receipt["status"] != 1 else None
    if mined_hash != row.tx_hash:  # an earlier broadcast at the same nonce won
        row.replaced_tx_hashes = [h for h in (*row.replaced_tx_hashes, row.tx_hash) if h and h != mined_hash]
        row.tx_hash = mined_hash
    row.block_number, row.mined_at = block, utcnow()
    if receipt["status"] == 1:
        row.status = Status.MINED
        row.error = row.error_name = None
        for member in db.session.scalars(select(Row).where(Row.carried_by_id == row.id)):
            member.block_number, member.mined_at = block, row.mined_at
        report.mined += 1
        return
    _refuse(row, Status.REVERTED, error.name if error else None,
            f"reverted in block {block}: {error}" if error else
            f"reverted in block {block} without a custom error (out of gas, or a failed call)")
    report.reverted += 1


def _receipt(w3: Web3, row: Row) -> TxReceipt | None:
    """The receipt of whichever of the row's transactions was mined, if one was."""
    for tx_hash in (row.tx_hash, *reversed(row.replaced_tx_hashes or [])):
        if tx_hash is None:
            continue
        try:
            return w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            continue
    return None


def _refuse(row: Row, status: ChainTransactionStatus, error_name: str | None, error: str) -> None:
    """The ledger refused the row for good: record why, and what follows for its subject."""
    row.status, row.error_name, row.error = status, error_name, error
    ledger_refused(row)
    if row.function == REGISTER_BATCH:
        _requeue_members(row)


# ---------------------------------------------------------------- encoding and keys


def _call(client: LedgerClient, row: Row) -> dict[str, Any]:
    """`to`, `data` and `value` of the row's contract call, its JSON arguments encoded by the
    function's ABI."""
    contract = _contract(client, row.contract)
    entries = [entry for entry in contract.abi if entry.get("type") == "function" and entry["name"] == row.function]
    if len(entries) != 1:
        raise RowProblem(f"{row.contract} has {'no' if not entries else 'more than one'} function {row.function!r}")
    inputs = entries[0]["inputs"]
    if not isinstance(row.args, list) or len(row.args) != len(inputs):
        raise RowProblem(f"{row.contract}.{row.function} takes {len(inputs)} argument(s); the row has {row.args!r}")
    values = [abi_value(param, value, param.get("name") or f"argument {index + 1}")
              for index, (param, value) in enumerate(zip(inputs, row.args))]
    try:
        data = contract.encode_abi(row.function, args=values)
    except Exception as exc:  # web3 and eth-abi raise several types for a value out of range
        raise RowProblem(f"{row.contract}.{row.function}: {exc}") from None
    return {"to": contract.address, "data": data, "value": 0}


def _contract(client: LedgerClient, name: ContractName) -> Contract:
    return {
        ContractName.SETTLEMENT_TOKEN: client.token,
        ContractName.RECEIVABLE_REGISTRY: client.registry,
        ContractName.FINANCING: client.financing,
    }[name]


def abi_value(param: dict[str, Any], value: Any, where: str) -> Any:
    """One JSON argument as web3 encodes ABI type `param["type"]`: integers as numbers or
    0x-hex strings, bytes as 0x-hex strings, structs and arrays as lists. RowProblem names
    `where` when it does not fit."""
    kind = param["type"]
    if kind.endswith("]"):
        if not isinstance(value, list):
            raise RowProblem(f"{where}: expected a list for {kind}, not {value!r}")
        element = {**param, "type": kind[:kind.rindex("[")]}
        return [abi_value(element, item, f"{where}[{index}]") for index, item in enumerate(value)]
    if kind == "tuple":
        components = param["components"]
        if not isinstance(value, list) or len(value) != len(components):
            raise RowProblem(f"{where}: expected a list of {len(components)} fields, not {value!r}")
        return tuple(abi_value(component, item, f"{where}.{component.get('name') or index}")
                     for index, (component, item) in enumerate(zip(components, value)))
    if kind.startswith(("uint", "int")):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.startswith("0x"):
            try:
                return int(value, 16)
            except ValueError:
                pass
        raise RowProblem(f"{where}: expected an integer or 0x-hex string for {kind}, not {value!r}")
    if kind == "address":
        try:
            return to_checksum_address(value)
        except (TypeError, ValueError):
            raise RowProblem(f"{where}: not an address: {value!r}") from None
    if kind.startswith("bytes"):
        if isinstance(value, str) and value.startswith("0x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                pass
        raise RowProblem(f"{where}: expected 0x-hex bytes for {kind}, not {value!r}")
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    raise RowProblem(f"{where}: {value!r} does not fit {kind}")


# Unsealed keys, per process: scrypt makes unsealing slow. Keyed by a digest of the sealed
# keystore (or of the operator key), so a rotated key is unsealed afresh.
_accounts: dict[str, LocalAccount] = {}


def _signer_account(row: Row, w3: Web3) -> LocalAccount:
    """The key that signs `row`: its organisation's, or the operator's."""
    if row.signer is None:
        return _operator_account(w3)
    sealed = row.signer.signing_key
    if sealed is None:
        raise SignerUnavailable(f"{row.signer.name} has no signing key")
    cache_key = hashlib.sha256(sealed.keystore_json.encode()).hexdigest()
    account = _accounts.get(cache_key)
    if account is None:
        try:
            account = unseal(load_master_secret(Path(current_app.instance_path)), sealed.keystore_json)
        except KeystoreError as exc:
            raise SignerUnavailable(str(exc)) from None
        _accounts[cache_key] = account
    return account


def _same_signer(row: Row, w3: Web3) -> LocalAccount:
    """The key for a replacement or nonce filler of `row`: it must be the address that signed
    the row, or it would be another account's transaction (at a nonce not its own)."""
    account = _signer_account(row, w3)
    if account.address != row.sender:
        raise SignerUnavailable(f"ledger write {row.id} was signed by {row.sender}, but its signer's key is now "
                                f"{account.address}: its nonce can only be replaced or filled with the old key")
    return account


def _operator_account(w3: Web3) -> LocalAccount:
    """OPERATOR_PRIVATE_KEY, else the deployer's key (backend.chain.connection)."""
    key = current_app.config.get("OPERATOR_PRIVATE_KEY")
    if not key:
        try:
            return deployer_account(w3)
        except ChainError as exc:
            raise SignerUnavailable(str(exc)) from None
    cache_key = hashlib.sha256(key.encode()).hexdigest()
    account = _accounts.get(cache_key)
    if account is None:
        try:
            account = Account.from_key(key)
        except ValueError:
            # Not chained: the underlying message may quote the key.
            raise SignerUnavailable("OPERATOR_PRIVATE_KEY is not a valid private key (64 hex digits)") from None
        _accounts[cache_key] = account
    return account


# ---------------------------------------------------------------- plumbing


def _ledger() -> LedgerClient:
    try:
        return runtime.ledger(current_app.config)
    except ChainError as exc:
        raise TransientError(str(exc)) from exc


@contextmanager
def _outbox_turn() -> Iterator[bool]:
    """Whether this pass may run: always on PostgreSQL (row locks share the work); on SQLite
    only while it holds the exclusive lock on `<database>.outbox-lock`, one pass at a time."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield True
        return
    with open(url.database + SQLITE_LOCK_SUFFIX, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _claim(statement: Select[Any]) -> list[Row]:
    """The rows `statement` selects, locked for this transaction; rows another worker holds are
    skipped (PostgreSQL; SQLite renders no lock and relies on `_outbox_turn`)."""
    return list(db.session.scalars(statement.with_for_update(skip_locked=True, of=Row)))


def _as_claimed(rows: list[Row]) -> list[tuple[int, ChainTransactionStatus, str | None]]:
    """Id, status and tx hash of each claimed row, read before any commit expires them."""
    return [(row.id, row.status, row.tx_hash) for row in rows]


def _relock(row_id: int, status: ChainTransactionStatus, tx_hash: str | None) -> Row | None:
    """Row `row_id` locked again for this transaction and read afresh, if no other worker holds
    it and it still has the `status` and `tx_hash` this pass last saw; else None. Passes that
    commit row by row lose the locks of their claim at the first commit (PostgreSQL), and a
    second pass may have claimed, replaced or settled the row since."""
    same_hash = Row.tx_hash.is_(None) if tx_hash is None else Row.tx_hash == tx_hash
    return db.session.scalar(
        select(Row).where(Row.id == row_id, Row.status == status, same_hash)
        .with_for_update(skip_locked=True, of=Row)
        .execution_options(populate_existing=True))


def _due() -> ColumnElement[bool]:
    return or_(Row.next_attempt_at.is_(None), Row.next_attempt_at <= utcnow())


def _awaiting_receipt() -> ColumnElement[bool]:
    """Sent rows, and failed rows whose nonce filler is not yet mined."""
    return or_(Row.status == Status.SENT,
               and_(Row.status == Status.FAILED, Row.tx_hash.is_not(None), Row.mined_at.is_(None)))


def _back_off(row_ids: list[int], reason: str) -> None:
    """What this transaction did is rolled back, and the rows wait 2 ** attempts seconds before
    they are tried again (nothing else changes)."""
    db.session.rollback()
    for row in db.session.scalars(select(Row).where(Row.id.in_(row_ids))):
        _postpone(row, reason)
    db.session.commit()


def _postpone(row: Row, reason: str) -> None:
    """The row waits 2 ** attempts seconds (at most MAX_ROW_BACKOFF_SECONDS), `reason` its error."""
    row.attempts += 1
    row.next_attempt_at = utcnow() + timedelta(seconds=min(2 ** row.attempts, MAX_ROW_BACKOFF_SECONDS))
    row.error = reason


def _set_aside(row_ids: list[int], exc: Exception) -> None:
    """An error that is neither transient nor the ledger's answer to the rows (a key that cannot
    be had, a chain behind the database, a bug): it is logged and stored on the rows, which wait
    as after a transient one, and the pass goes on with the others."""
    reason = str(exc) if isinstance(exc, (SignerUnavailable, ChainBehind)) else _describe(exc)
    log.error("ledger writes %s wait: %s", row_ids, reason, exc_info=None if isinstance(exc, _EXPLAINED) else exc)
    _back_off(row_ids, reason)


def _transient(exc: BaseException) -> bool:
    """An error worth retrying: the node or the database unreachable or busy."""
    if isinstance(exc, (requests.RequestException, ConnectionError, TimeoutError, ChainError, OperationalError)):
        return True
    return isinstance(exc, Web3RPCError) and any(phrase in _said(exc) for phrase in _BUSY)


def _said(exc: Exception) -> str:
    """What the node said, lower-cased, with Besu's ENUM_NAMES spelled as words."""
    response = getattr(exc, "rpc_response", None)
    error = response.get("error") if isinstance(response, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or exc).lower().replace("_", " ")


def _describe(exc: Exception) -> str:
    """An error for the row (which the API and the `transaction.reverted` webhook show) and the
    log: requests' messages quote the node's URL, which may carry credentials, and SQLAlchemy's
    quote the SQL with its bound values, so for those only the kind of failure is given."""
    if isinstance(exc, requests.RequestException):
        return f"the ledger node could not be reached ({type(exc).__name__})"
    if isinstance(exc, SQLAlchemyError):
        return f"{type(exc).__name__}: a database error"
    return f"{type(exc).__name__}: {exc}"


def _store_signed(row: Row, raw: bytes) -> None:
    """The signed bytes and their hash on the row (stored before they are ever broadcast)."""
    row.raw_tx, row.tx_hash = to_hex(raw), to_hex(keccak(raw))


def _store_replacement(row: Row, raw: bytes) -> None:
    """A replacement at the row's nonce; the hash it replaces may still be the one mined."""
    row.replaced_tx_hashes = [*row.replaced_tx_hashes, row.tx_hash]
    _store_signed(row, raw)


# ---------------------------------------------------------------- Celery


@worker_task()
def submit_queued() -> None:
    """One submitter pass (beat: every second; also nudged by each commit that queues writes)."""
    submit_pass()


@worker_task()
def track_receipts() -> None:
    track_pass()


@worker_task()
def rebroadcast_stale() -> None:
    rebroadcast_pass()


def periodic_tasks(config: Any) -> dict[str, dict[str, Any]]:
    """Submit and track every second, re-broadcast every ten; a beat nobody took within a few
    periods expires, since the next one does the same work."""
    return {
        "outbox-submit": {"task": "workers.outbox.submit_queued", "schedule": 1.0, "options": {"expires": 10}},
        "outbox-receipts": {"task": "workers.outbox.track_receipts", "schedule": 1.0, "options": {"expires": 10}},
        "outbox-rebroadcast": {"task": "workers.outbox.rebroadcast_stale", "schedule": 10.0,
                               "options": {"expires": 60}},
    }
