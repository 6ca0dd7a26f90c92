"""Crash tests: a real Celery worker (`celery -A workers.worker_app worker`) on a real Redis,
killed with SIGKILL between signing and sending, and after sending before the receipt. After
a new worker takes over, every intent has exactly one transaction on the chain.

Between signing and sending is made deterministic with a JSON-RPC proxy in front of anvil that
answers everything except eth_sendRawTransaction, which it holds and never forwards: the worker
signs, stores and commits, then waits on its broadcast, and is killed there. After sending is
made deterministic by pausing anvil's block production while the first worker runs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
from celery import Celery
from flask import Flask

from backend.chain.connection import RPC_TIMEOUT_SECONDS
from backend.extensions import db
from backend.models import ChainTransactionStatus
from backend.security.keystore import MASTER_SECRET_ENV
from tests.outbox_fixtures import (
    TEST_MASTER_SECRET,
    Mining,
    OutboxChain,
    Participants,
    queue_mint,
    queue_registration,
    rows_by_id,
    wait_until,
)
from workers import redis_server
from workers.celery_app import QUEUE

Status = ChainTransactionStatus
WORKER_START_TIMEOUT_SECONDS = 60.0


class HoldingProxy(ThreadingHTTPServer):
    """Forwards JSON-RPC to `upstream`, except eth_sendRawTransaction: that request is held
    unanswered (and never forwarded) until `release` is set, and `held` tells it came."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.held = threading.Event()
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: HoldingProxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if b"eth_sendRawTransaction" in body:
            self.server.held.set()
            self.server.release.wait(RPC_TIMEOUT_SECONDS * 4)
            return  # no answer: the connection closes
        answer = requests.post(self.server.upstream, data=body, headers={"Content-Type": "application/json"},
                               timeout=RPC_TIMEOUT_SECONDS).content
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def holding_proxy(outbox_chain: OutboxChain) -> Iterator[HoldingProxy]:
    proxy = HoldingProxy(outbox_chain.node.rpc_url)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.release.set()
    proxy.shutdown()
    proxy.server_close()


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with redis_server.temporary() as server:
        yield server.url


class Workers:
    """Starts real Celery workers for the test's application and kills them."""

    def __init__(self, app: Flask, chain: OutboxChain, broker_url: str, folder: Path) -> None:
        self.app, self.chain, self.broker_url, self.folder = app, chain, broker_url, folder
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, rpc_url: str) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.started)}.log"
        environment = {
            **os.environ,
            "DATABASE_URL": self.app.config["DATABASE_URL"],
            "ETH_RPC_URL": rpc_url,
            "REDIS_URL": self.broker_url,
            "ANCHORLINE_DEPLOYMENTS": str(self.chain.deployments_dir),
            "ANCHORLINE_INSTANCE": self.app.instance_path,
            MASTER_SECRET_ENV: TEST_MASTER_SECRET,
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.worker_app", "worker", "--pool", "solo",
             "--queues", QUEUE, "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--loglevel", "INFO", "--logfile", str(log), "--hostname", f"crash-test-{len(self.started)}@%h"],
            env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        wait_until(lambda: log.exists() and " ready." in log.read_text() or process.poll() is not None,
                   timeout=WORKER_START_TIMEOUT_SECONDS, what="the worker to start")
        assert process.poll() is None, log.read_text()
        return process

    def run(self, task: str) -> None:
        """Queue `task` for the workers, through Redis."""
        Celery(broker=self.broker_url).send_task(task, queue=QUEUE)

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers(outbox_app: Flask, outbox_chain: OutboxChain, broker_url: str, tmp_path: Path) -> Iterator[Workers]:
    redis.Redis.from_url(broker_url).flushdb()  # no task of an earlier test is left
    started = Workers(outbox_app, outbox_chain, broker_url, tmp_path)
    yield started
    started.stop_all()


def queue_intents(participants: Participants) -> list[int]:
    """Two registrations of one supplier (batched into one transaction) and an operator mint."""
    supplier = participants.suppliers[2]
    rows = [queue_registration(supplier, participants.buyer), queue_registration(supplier, participants.buyer),
            queue_mint(participants.financier)]
    db.session.commit()
    return [row.id for row in rows]


def sent_transactions(chain: OutboxChain, rows: list) -> dict[str, int]:
    """How many transactions each sender has on the chain now."""
    return {row.sender: chain.ledger.w3.eth.get_transaction_count(row.sender) for row in rows if row.sender}


def assert_one_transaction_per_intent(chain: OutboxChain, ids: list[int], counts_before: dict[str, int]) -> None:
    rows = rows_by_id(ids)
    carriers = {row.carried_by for row in rows if row.carried_by is not None}
    senders = [row for row in (*rows, *carriers) if row.tx_hash is not None]
    assert all(row.status == Status.MINED for row in senders), senders
    assert all(row.status in (Status.MINED, Status.BATCHED) for row in rows), rows
    for sender, before in counts_before.items():
        own = [row for row in senders if row.sender == sender]
        # Exactly as many transactions as intents of this sender: nothing signed twice.
        assert chain.ledger.w3.eth.get_transaction_count(sender) == before + len(own)
        assert sorted(row.nonce for row in own) == list(range(before, before + len(own)))
    for row in senders:
        receipt = chain.ledger.w3.eth.get_transaction_receipt(row.tx_hash)
        assert receipt["status"] == 1 and receipt["blockNumber"] == row.block_number


def test_a_worker_killed_between_signing_and_sending_leaves_one_transaction_per_intent(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants, workers: Workers,
        holding_proxy: HoldingProxy):
    w3 = outbox_chain.ledger.w3
    counts_before = {participants.suppliers[2].chain_address: w3.eth.get_transaction_count(
        participants.suppliers[2].chain_address, "pending"),
        outbox_chain.operator.address: w3.eth.get_transaction_count(outbox_chain.operator.address, "pending")}
    ids = queue_intents(participants)

    first = workers.start(holding_proxy.url)  # its broadcasts never reach the chain
    workers.run("workers.outbox.submit_queued")
    assert holding_proxy.held.wait(WORKER_START_TIMEOUT_SECONDS), "the worker never tried to broadcast"
    signed = wait_until(lambda: [row for row in rows_by_id(ids) if row.status == Status.BATCHED]
                        and [row for row in _carriers_and_rows(ids) if row.status == Status.SIGNED],
                        what="rows stored as signed")
    workers.kill(first)  # between signing (committed) and sending (held at the node)
    stored = {row.id: (row.raw_tx, row.tx_hash, row.nonce) for row in _carriers_and_rows(ids) if row.raw_tx}
    assert signed and all(w3.eth.get_transaction_count(sender) == n for sender, n in counts_before.items())

    workers.start(outbox_chain.node.rpc_url)
    workers.run("workers.outbox.submit_queued")
    wait_until(lambda: all(row.status == Status.SENT or row.status == Status.MINED
                           for row in _carriers_and_rows(ids) if row.raw_tx), what="the stored bytes to be sent")
    wait_until_mined(workers, ids)

    again = {row.id: (row.raw_tx, row.tx_hash, row.nonce) for row in _carriers_and_rows(ids)}
    assert {row_id: again[row_id] for row_id in stored} == stored  # the same bytes, re-sent
    assert_one_transaction_per_intent(outbox_chain, ids, counts_before)


def test_a_worker_killed_after_sending_before_the_receipt_leaves_one_transaction_per_intent(
        outbox_app: Flask, outbox_chain: OutboxChain, participants: Participants, workers: Workers, mining: Mining):
    w3 = outbox_chain.ledger.w3
    counts_before = {participants.suppliers[2].chain_address: w3.eth.get_transaction_count(
        participants.suppliers[2].chain_address, "pending"),
        outbox_chain.operator.address: w3.eth.get_transaction_count(outbox_chain.operator.address, "pending")}
    ids = queue_intents(participants)
    mining.pause()

    first = workers.start(outbox_chain.node.rpc_url)
    workers.run("workers.outbox.submit_queued")
    # Every intent sent (its own transaction or its batch's): the pass signs signer by signer,
    # so some may be sent while others are still queued.
    wait_until(lambda: all(row.status == Status.SENT for row in _carriers_and_rows(ids)
                           if row.status != Status.BATCHED), what="every transaction to be sent")
    workers.kill(first)  # sent, no receipt yet: nothing is mined while mining is paused
    sent = {row.id: row.tx_hash for row in _carriers_and_rows(ids) if row.tx_hash}
    assert all(mining.pool_has(tx_hash) for tx_hash in sent.values())
    mining.resume()

    workers.start(outbox_chain.node.rpc_url)
    for task in ("workers.outbox.submit_queued", "workers.outbox.rebroadcast_stale", "workers.outbox.track_receipts"):
        workers.run(task)  # what the beat would run: nothing is signed or sent twice
    wait_until_mined(workers, ids)

    assert {row.id: row.tx_hash for row in _carriers_and_rows(ids) if row.tx_hash} == sent
    assert_one_transaction_per_intent(outbox_chain, ids, counts_before)


def wait_until_mined(workers: Workers, ids: list[int]) -> None:
    """Have the workers read receipts until every row (or its carrier) is mined."""
    def mined() -> bool:
        if _all_mined(ids):
            return True
        workers.run("workers.outbox.track_receipts")
        return False

    wait_until(mined, what="every transaction to be mined")


def _carriers_and_rows(ids: list[int]) -> list:
    rows = rows_by_id(ids)
    return [*rows, *{row.carried_by for row in rows if row.carried_by is not None}]


def _all_mined(ids: list[int]) -> bool:
    return all(row.status == Status.MINED for row in _carriers_and_rows(ids) if row.tx_hash or row.raw_tx) and all(
        row.status in (Status.MINED, Status.BATCHED) for row in rows_by_id(ids))
