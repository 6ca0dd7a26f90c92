"""The ledger a running process (a worker, the web server, a command) talks to: the chain at
ETH_RPC_URL (by default the local devnet) and the Anchorline deployment recorded for it.

Workers, schedules and status reads all need the same pair; they get it here, once per process
and RPC URL, instead of connecting and reading deployments/<chain-id>.json each on their own.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from backend.chain.client import LedgerClient
from backend.chain.connection import ChainError, connect, rpc_url
from backend.chain.deploy import load_deployment

_lock = threading.Lock()
_ledgers: dict[str, LedgerClient] = {}


class NotDeployed(ChainError):
    """The connected chain has no recorded Anchorline deployment."""


def ledger(config: Mapping[str, Any]) -> LedgerClient:
    """The deployed contracts on the chain `config` names (ETH_RPC_URL, else the devnet).

    Raises ChainUnreachable when no node answers and NotDeployed when deployments/ has no record
    for the chain's id (run `anchorline deploy`). Cached per process and URL: a Web3 and its
    contract objects are safe to share between threads for reads and raw sends.
    """
    url = config.get("ETH_RPC_URL") or rpc_url()
    with _lock:
        cached = _ledgers.get(url)
        if cached is not None:
            return cached
        w3 = connect(url)
        chain_id = w3.eth.chain_id
        deployment = load_deployment(chain_id)
        if deployment is None:
            raise NotDeployed(f"no Anchorline deployment is recorded for chain {chain_id}; run `anchorline deploy`")
        client = LedgerClient(w3, deployment)
        _ledgers[url] = client
        return client


def forget() -> None:
    """Drop the cached ledgers (after a redeployment, and between tests)."""
    with _lock:
        _ledgers.clear()
