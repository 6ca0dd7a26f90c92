"""A handle on one Anchorline deployment: its contracts and the calls every user of them makes.

The one place that knows how an invoice becomes a `Registration` (the invoice number only ever
leaves as its SHA-256, a date as the Unix seconds of its 00:00 UTC) and how a receivable id is
derived, so the back end, the benchmarks and the tests agree with the contract byte for byte.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from backend.chain import transactions
from backend.chain.deploy import DAY, Deployment

__all__ = ["DAY", "SUPPLIER", "BUYER", "FINANCIER", "AUDITOR", "LedgerClient", "child_receivable_id",
           "invoice_number_hash", "ledger_date", "receivable_id", "registration"]

# Participant role bits, as contracts/interfaces/IParticipantRegistry.sol's `Roles` numbers them.
SUPPLIER, BUYER, FINANCIER, AUDITOR = 1, 2, 4, 8


def invoice_number_hash(invoice_number: str) -> bytes:
    """What the ledger stores of an invoice number: its SHA-256, never the number itself."""
    return hashlib.sha256(invoice_number.strip().encode()).digest()


def ledger_date(day: date) -> int:
    """A date as the ledger holds it (a receivable's issue and due dates): the Unix seconds of
    its 00:00 UTC. A receivable is due from that second on."""
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


def registration(
    buyer: str,
    *,
    amount: int,
    currency: str,
    issue_date: int,
    due_date: int,
    invoice_number: str,
    document_sha256: bytes,
) -> tuple[Any, ...]:
    """A `ReceivableRegistry.Registration` tuple (amount in the currency's minor units)."""
    return (
        to_checksum_address(buyer),
        amount,
        currency.encode("ascii"),
        issue_date,
        due_date,
        invoice_number_hash(invoice_number),
        document_sha256,
    )


def receivable_id(supplier: str, buyer: str, number_hash: bytes) -> int:
    """The id `ReceivableRegistry.receivableId` derives, computed locally (no call needed)."""
    return int.from_bytes(keccak(encode(["address", "address", "bytes32"], [supplier, buyer, number_hash])), "big")


def child_receivable_id(parent_id: int, index: int) -> int:
    """The id `ReceivableRegistry.childId` gives part `index` (from 0) of a split of `parent_id`."""
    return int.from_bytes(keccak(encode(["uint256", "uint256"], [parent_id, index])), "big")


@dataclass
class LedgerClient:
    """The deployed contracts on a connected chain."""

    w3: Web3
    deployment: Deployment
    participants: Contract = field(init=False)
    token: Contract = field(init=False)
    registry: Contract = field(init=False)
    financing: Contract = field(init=False)

    def __post_init__(self) -> None:
        contracts = self.deployment.contracts(self.w3)
        self.token = contracts["SettlementToken"]
        self.registry = contracts["ReceivableRegistry"]
        self.financing = contracts["Financing"]
        # Financing is also the platform's participant registry.
        self.participants = self.financing

    def send(self, account: LocalAccount, call: Any) -> TxReceipt:
        """Sign and send a contract call (or plain transaction fields); raise if it reverts."""
        return transactions.send(self.w3, account, call)

    def now(self) -> int:
        """The latest block's timestamp: the clock the contracts judge dates by."""
        return self.w3.eth.get_block("latest")["timestamp"]

    def onboard_participant(self, operator: LocalAccount, account: str, roles: int, organisation_ref: bytes) -> TxReceipt:
        return self.send(operator, self.participants.functions.onboard(account, roles, organisation_ref))

    def mint_tokens(self, operator: LocalAccount, account: str, amount: int, deposit_ref: bytes) -> TxReceipt:
        return self.send(operator, self.token.functions.mint(account, amount, deposit_ref))
