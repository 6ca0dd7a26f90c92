"""What both benchmarks share: a private anvil, a fresh deployment, participants, invoices,
and a plain JSON-RPC client for the hot paths.

Standard Ethereum JSON-RPC only (eth_*, net_*): no node-specific methods, so the same code
could be pointed at a Besu or GoQuorum network.
"""
from __future__ import annotations

import hashlib
import itertools
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from backend.chain import devnet, transactions
from backend.chain.connection import connect
from backend.chain.deploy import DeploySettings, Deployment, deploy_contracts

SUPPLIER, BUYER, FINANCIER = 1, 2, 4
DAY = 86_400
CNY = b"CNY"
# Periods of zero, so a receivable can be marked overdue and defaulted a few real seconds
# after its due date; no admin-transfer delay either (nothing here hands the admin role over).
BENCH_SETTINGS = DeploySettings(grace_period=0, default_period=0, admin_transfer_delay=0)


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Chain:
    w3: Web3
    rpc_url: str
    config: devnet.DevnetConfig


@contextmanager
def private_chain() -> Iterator[Chain]:
    """An anvil of our own (the devnet's settings, a temporary directory, a free port),
    stopped when the block exits, whatever happens in it."""
    config = devnet.load_config()
    with tempfile.TemporaryDirectory(prefix="anchorline-bench-") as tmp:
        directory = Path(tmp)
        running, _ = devnet.start(directory, port=free_port(config.host), config=config)
        try:
            yield Chain(connect(running.rpc_url), running.rpc_url, config)
        finally:
            devnet.stop(directory)


@dataclass
class Platform:
    """A fresh Anchorline deployment and the operator who runs it."""

    w3: Web3
    deployment: Deployment
    operator: LocalAccount
    participants: Contract = field(init=False)
    token: Contract = field(init=False)
    registry: Contract = field(init=False)
    financing: Contract = field(init=False)

    def __post_init__(self) -> None:
        self.participants = self.deployment.contract(self.w3, "ParticipantRegistry")
        self.token = self.deployment.contract(self.w3, "SettlementToken")
        self.registry = self.deployment.contract(self.w3, "ReceivableRegistry")
        self.financing = self.deployment.contract(self.w3, "Financing")
        self._refs = itertools.count(1)
        self._invoices = itertools.count(1)

    @classmethod
    def deploy(cls, w3: Web3, operator: LocalAccount) -> Platform:
        return cls(w3, deploy_contracts(w3, operator, BENCH_SETTINGS), operator)

    def send(self, account: LocalAccount, call: Any) -> TxReceipt:
        return transactions.send(self.w3, account, call)

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def onboard(self, account: LocalAccount, roles: int) -> None:
        self.send(self.operator, self.participants.functions.onboard(account.address, roles, b"\x01" * 32))

    def mint(self, account: LocalAccount, amount: int) -> None:
        ref = hashlib.sha256(f"bench-deposit-{next(self._refs)}".encode()).digest()
        self.send(self.operator, self.token.functions.mint(account.address, amount, ref))

    def registration(
        self, buyer: LocalAccount, *, amount: int = 1_000_000, due_date: int | None = None, now: int | None = None
    ) -> tuple[Any, ...]:
        """A `ReceivableRegistry.Registration` tuple for a new, unique invoice."""
        now = self.now() if now is None else now
        number = f"BENCH-{next(self._invoices):07d}"
        number_hash = hashlib.sha256(number.encode()).digest()
        document_hash = hashlib.sha256(b"document of " + number.encode()).digest()
        due = now + 90 * DAY if due_date is None else due_date
        return (buyer.address, amount, CNY, now - DAY, due, number_hash, document_hash)

    def receivable_id(self, supplier: LocalAccount, entry: tuple[Any, ...]) -> int:
        return self.registry.functions.receivableId(supplier.address, entry[0], entry[5]).call()


class Rpc:
    """A keep-alive JSON-RPC client that can send many calls in one HTTP request (JSON-RPC
    2.0 batches), for the loops where web3's one-call-per-request path is the bottleneck."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.url = url
        self.timeout = timeout
        self.session = requests.Session()
        self._ids = itertools.count(1)

    def call(self, method: str, params: list[Any]) -> Any:
        return self.batch([(method, params)])[0]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """The results of `calls`, in order; raises on any error."""
        payload = [{"jsonrpc": "2.0", "id": next(self._ids), "method": m, "params": p} for m, p in calls]
        response = self.session.post(self.url, json=payload, timeout=self.timeout)
        response.raise_for_status()
        answers = {answer["id"]: answer for answer in response.json()}
        results = []
        for request in payload:
            answer = answers[request["id"]]
            if "error" in answer:
                raise RuntimeError(f"{request['method']} failed: {answer['error']}")
            results.append(answer["result"])
        return results

    def close(self) -> None:
        self.session.close()


def wait_for_timestamp_after(w3: Web3, timestamp: int, *, timeout: float = 60) -> int:
    """Poll the latest block until its timestamp is past `timestamp`; returns it.

    Real time only: the chain's clock is never moved. On a chain that mines only when a
    transaction arrives, the latest block can lag, so once the wall clock is two seconds past
    `timestamp` the next block is bound to be later and this returns anyway.
    """
    deadline = time.monotonic() + timeout
    while True:
        latest = w3.eth.get_block("latest")["timestamp"]
        if latest > timestamp or time.time() > timestamp + 2:
            return latest
        if time.monotonic() > deadline:
            raise TimeoutError(f"the chain's clock did not pass {timestamp} within {timeout:.0f}s")
        time.sleep(0.2)
