"""Factories for ledger objects and a small facade over a deployed Anchorline, shared by the
contract tests on eth-tester and on anvil.

Every transaction goes through `backend.chain.transactions.send`, the same signing path the
product uses, so a revert surfaces as `TransactionReverted` with the decoded custom error.
"""
from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from backend.chain import client
from backend.chain.client import AUDITOR, BUYER, DAY, FINANCIER, SUPPLIER, LedgerClient  # noqa: F401 (re-exported to the tests)
from backend.chain.compiler import load_artifact
from backend.chain.transactions import TransactionReverted

CNY = b"CNY"
HOLDER = SUPPLIER | FINANCIER  # who may hold a receivable (Roles.HOLDER)
ANY_ROLE = 0  # the role mask every active participant satisfies (Roles.ANY)
DEFAULT_ADMIN_ROLE = b"\x00" * 32
OPERATOR_ROLE = Web3.keccak(text="OPERATOR_ROLE")
ZERO_ADDRESS = "0x" + "00" * 20

# Receivable statuses and other enums, as the contracts number them.
STATUS = {name: i for i, name in enumerate(["None", "Registered", "Confirmed", "Disputed", "Cancelled", "Split", "Repaid"])}
REQUEST_STATUS = {name: i for i, name in enumerate(["None", "Open", "Funded", "Cancelled", "Expired", "Unwound"])}
DELINQUENCY = {name: i for i, name in enumerate(["None", "Overdue", "Defaulted"])}

_invoice_numbers = itertools.count(1)
# Deposit references must never repeat on a chain; counted for the whole session, since ledgers
# of a module and of its tests share one chain.
_deposit_refs = itertools.count(1)


def invoice_number_hash(number: str | None = None) -> bytes:
    """The hash of `number`, or of a fresh invoice number when none is given."""
    return client.invoice_number_hash(number or f"INV-{next(_invoice_numbers):06d}")


def registration(
    buyer: str,
    *,
    amount: int = 1_000_000,
    issue_date: int,
    due_date: int,
    currency: bytes = CNY,
    number: str | None = None,
    document: bytes | None = None,
) -> tuple[Any, ...]:
    """A `ReceivableRegistry.Registration` tuple, for a fresh invoice number unless one is given.
    The currency is raw bytes so tests can also state malformed ones."""
    number = number or f"INV-{next(_invoice_numbers):06d}"
    entry = client.registration(
        buyer,
        amount=amount,
        currency="CNY",
        issue_date=issue_date,
        due_date=due_date,
        invoice_number=number,
        document_sha256=hashlib.sha256(document or number.encode()).digest(),
    )
    return (entry[0], entry[1], currency, *entry[3:])


@contextmanager
def reverts(error_name: str) -> Iterator[dict[str, Any]]:
    """Expect a transaction to revert with the custom error `error_name`; yields a dict that
    holds the decoded error's arguments under "args" afterwards."""
    caught: dict[str, Any] = {}
    with pytest.raises(TransactionReverted) as info:
        yield caught
    assert info.value.error is not None, f"reverted without a known custom error: {info.value}"
    assert info.value.error.name == error_name, f"expected {error_name}, got {info.value.error}"
    caught["args"] = info.value.error.args


@dataclass
class Ledger(LedgerClient):
    """A deployed Anchorline and the accounts acting on it."""

    operator: LocalAccount
    funder: LocalAccount  # pays gas money to the accounts the tests create

    def new_account(self) -> LocalAccount:
        account = Account.create()
        self.send(self.funder, {"to": account.address, "value": Web3.to_wei(1, "ether")})
        return account

    def participant(self, roles: int) -> LocalAccount:
        """A new, funded account onboarded with `roles`."""
        account = self.new_account()
        self.onboard_participant(self.operator, account.address, roles, b"\x01" * 32)
        return account

    def mint(self, account: LocalAccount, amount: int) -> None:
        ref = Web3.keccak(text=f"test deposit {next(_deposit_refs)}")
        self.mint_tokens(self.operator, account.address, amount, ref)

    def balance(self, account: LocalAccount | str) -> int:
        return self.token.functions.balanceOf(getattr(account, "address", account)).call()

    # ------------------------------------------------------------------ receivables
    def registration(self, buyer: LocalAccount, **kwargs: Any) -> tuple[Any, ...]:
        now = self.now()
        kwargs.setdefault("issue_date", now - DAY)
        kwargs.setdefault("due_date", now + 90 * DAY)
        return registration(buyer.address, **kwargs)

    def register(self, supplier: LocalAccount, buyer: LocalAccount, **kwargs: Any) -> int:
        entry = self.registration(buyer, **kwargs)
        self.send(supplier, self.registry.functions.register(entry))
        return self.receivable_id(supplier, entry)

    def receivable_id(self, supplier: LocalAccount, entry: tuple[Any, ...]) -> int:
        return self.registry.functions.receivableId(supplier.address, entry[0], entry[5]).call()

    def confirmed(self, supplier: LocalAccount, buyer: LocalAccount, **kwargs: Any) -> int:
        receivable = self.register(supplier, buyer, **kwargs)
        self.send(buyer, self.registry.functions.confirm(receivable))
        return receivable

    def receivable(self, receivable_id: int) -> dict[str, Any]:
        names = ("buyer", "holder", "amount", "repaid", "due_date", "currency", "status", "delinquency", "parent_id")
        return dict(zip(names, self.registry.functions.getReceivable(receivable_id).call()))

    def status(self, receivable_id: int) -> str:
        return next(k for k, v in STATUS.items() if v == self.receivable(receivable_id)["status"])

    # ------------------------------------------------------------------ financing
    def request(self, seller: LocalAccount, receivable_id: int, asking: int, *, deadline_in: int = 30 * DAY, recourse: bool = False) -> None:
        self.send(seller, self.financing.functions.requestFinancing(receivable_id, asking, self.now() + deadline_in, recourse))

    def offer(self, financier: LocalAccount, receivable_id: int, advance: int, *, expiry_in: int = 20 * DAY) -> None:
        self.send(financier, self.financing.functions.makeOffer(receivable_id, advance, self.now() + expiry_in))

    def accept_offer(self, seller: LocalAccount, receivable_id: int, financier: LocalAccount) -> Any:
        """Accept `financier`'s offer at the advance it stands at now, as a seller who read it."""
        (advance, *_), _lapsed = self.financing.functions.getOffer(receivable_id, financier.address).call()
        return self.send(seller, self.financing.functions.acceptOffer(receivable_id, financier.address, advance))

    def get_request(self, receivable_id: int) -> dict[str, Any]:
        request, seller = self.financing.functions.getRequest(receivable_id).call()
        names = ("seller_id", "asking_advance", "outstanding", "deadline", "status", "recourse", "round")
        return {**dict(zip(names, request)), "seller": seller}

    # ------------------------------------------------------------------ operator's switches
    def suspend(self, account: LocalAccount, reason: bytes = b"\x01" * 32) -> LocalAccount:
        self.send(self.operator, self.participants.functions.suspend(account.address, reason))
        return account

    def pause(self) -> None:
        """Pause the whole platform (the participant registry is the switch)."""
        self.send(self.operator, self.participants.functions.pause())


# ---------------------------------------------------------------------- calls, events, deployments


def emitted(receipt: Any, event: Any) -> list[dict[str, Any]]:
    """The arguments of every `event` (such as `ledger.registry.events.ReceivableConfirmed`)
    that the event's own contract logged in `receipt`, in log order. (ERC-20 and ERC-721
    `Transfer` share a topic, so logs are matched by address before they are decoded.)"""
    own = {"logs": [log for log in receipt["logs"] if log["address"] == event.address]}
    return [dict(log["args"]) for log in event().process_receipt(own, errors=DISCARD)]


def deploy(ledger: Ledger, name: str, *args: Any) -> Contract:
    """Deploy one more instance of an Anchorline contract (constructor checks, admin rules);
    a reverting constructor raises `TransactionReverted`."""
    artifact = load_artifact(name)
    factory = ledger.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = ledger.send(ledger.operator, factory.constructor(*args))
    return ledger.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

