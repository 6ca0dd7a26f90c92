"""The connection to the ledger and the keys that sign for Anchorline.

Everything goes over standard Ethereum JSON-RPC, and transactions are signed here, in the
process (eth_sendRawTransaction), never by the node: so the local anvil devnet, a Hyperledger
Besu or a GoQuorum QBFT network are interchangeable by setting ETH_RPC_URL (and, off the
devnet, DEPLOYER_PRIVATE_KEY). See docs/ledger-networks.md.
"""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from backend.chain.devnet import load_config

RPC_URL_ENV = "ETH_RPC_URL"
DEPLOYER_KEY_ENV = "DEPLOYER_PRIVATE_KEY"
# Long enough for eth_getLogs over a wide block range on a Besu node, short enough that a hung
# node surfaces as an error instead of a request that never returns.
RPC_TIMEOUT_SECONDS = 15.0


class ChainError(RuntimeError):
    """Base of the errors this module raises."""


class ChainUnreachable(ChainError):
    """No Ethereum JSON-RPC node answers at the configured URL."""


class DeployerKeyError(ChainError):
    """No usable deployer key for the connected chain."""


def rpc_url() -> str:
    """$ETH_RPC_URL, else the local devnet's URL from hardhat-free-devnet/devnet.json."""
    return os.environ.get(RPC_URL_ENV) or load_config().rpc_url


def connect(url: str | None = None, *, timeout: float = RPC_TIMEOUT_SECONDS) -> Web3:
    """A Web3 connected to `url` (default: rpc_url()), checked with one eth_chainId call.

    Raises ChainUnreachable, naming the URL (without credentials), when nothing answers there.
    """
    url = url or rpc_url()
    w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id
    except requests.exceptions.RequestException as exc:
        raise ChainUnreachable(
            f"no Ethereum JSON-RPC node answers at {redact_url(url)} ({type(exc).__name__}); start the local "
            f"devnet with `anchorline devnet start`, or set {RPC_URL_ENV} to your node's HTTP RPC URL"
        ) from None  # requests' message quotes the path and query string
    return w3


def redact_url(url: str) -> str:
    """`url` fit for messages: its scheme, host and port only. Node providers put credentials
    and API keys in the user:password@, the path (Infura's /v3/<key>), the query and the fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", ""))


def dev_accounts(n: int) -> list[LocalAccount]:
    """The first `n` accounts of the devnet mnemonic, derived exactly as anvil derives them.

    The mnemonic is public (see hardhat-free-devnet/README.md): these keys are for the local
    devnet and tests only. anvil funds the first `accounts` of them (devnet.json); on the
    devnet's free-gas chain the others can still send zero-priced transactions.
    """
    config = load_config()
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(config.mnemonic, account_path=f"{config.derivation_path}{index}")
        for index in range(n)
    ]


def deployer_account(w3: Web3) -> LocalAccount:
    """The account that deploys and administers the contracts on the chain `w3` is connected to.

    $DEPLOYER_PRIVATE_KEY if set; otherwise the devnet mnemonic's first account, but only on a
    chain whose id is the devnet's, so the public development key never signs for a real network.
    """
    key = os.environ.get(DEPLOYER_KEY_ENV)
    if key:
        try:
            return Account.from_key(key)
        except ValueError:
            # `from None`: the underlying message may quote the key.
            raise DeployerKeyError(
                f"{DEPLOYER_KEY_ENV} is not a valid private key (expected 32 bytes as 64 hex digits)"
            ) from None
    devnet_chain_id = load_config().chain_id
    chain_id = w3.eth.chain_id
    if chain_id != devnet_chain_id:
        raise DeployerKeyError(
            f"the connected chain (id {chain_id}) is not the local devnet (id {devnet_chain_id}); "
            f"set {DEPLOYER_KEY_ENV} to the deployer's private key for this network"
        )
    return dev_accounts(1)[0]
