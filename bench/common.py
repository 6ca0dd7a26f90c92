"""What both benchmarks share: a private anvil, a fresh deployment, participants, invoices,
and a plain JSON-RPC client for the hot paths.

Standard Ethereum JSON-RPC only (eth_*, net_*): no node-specific methods, so the same code
could be pointed at a Besu or GoQuorum network.
"""
from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from eth_account.signers.local import LocalAccount
from web3 import Web3

from backend.chain import client, devnet
from backend.chain.client import DAY, LedgerClient
from backend.chain.connection import connect
from backend.chain.deploy import DeploySettings, deploy_contracts

# Periods of zero, so a receivable can be marked overdue and defaulted a few real seconds
# after its due date; no admin-transfer delay either (nothing here hands the admin role over).
BENCH_SETTINGS = DeploySettings(grace_period=0, default_period=0, admin_transfer_delay=0)


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
    with devnet.temporary(config) as node:
        yield Chain(connect(node.rpc_url), node.rpc_url, config)


@dataclass
class Platform(LedgerClient):
    """A fresh Anchorline deployment and the operator who runs it."""

    operator: LocalAccount

    def __post_init__(self) -> None:
        super().__post_init__()
        self._refs = itertools.count(1)
        self._invoices = itertools.count(1)

    @classmethod
    def deploy(cls, w3: Web3, operator: LocalAccount) -> Platform:
        return cls(w3, deploy_contracts(w3, operator, BENCH_SETTINGS), operator)

    def onboard(self, account: LocalAccount, roles: int) -> None:
        self.onboard_participant(self.operator, account.address, roles, b"\x01" * 32)

    def mint(self, account: LocalAccount, amount: int) -> None:
        ref = hashlib.sha256(f"bench-deposit-{next(self._refs)}".encode()).digest()
        self.mint_tokens(self.operator, account.address, amount, ref)

    def registration(
        self, buyer: LocalAccount, *, amount: int = 1_000_000, due_date: int | None = None, now: int | None = None
    ) -> tuple[Any, ...]:
        """A `ReceivableRegistry.Registration` tuple for a new, unique invoice."""
        now = self.now() if now is None else now
        number = f"BENCH-{next(self._invoices):07d}"
        return client.registration(
            buyer.address,
            amount=amount,
            currency="CNY",
            issue_date=now - DAY,
            due_date=now + 90 * DAY if due_date is None else due_date,
            invoice_number=number,
            document_sha256=hashlib.sha256(b"document of " + number.encode()).digest(),
        )

    def receivable_id(self, supplier: LocalAccount, entry: tuple[Any, ...]) -> int:
        return client.receivable_id(supplier.address, entry[0], entry[5])


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
